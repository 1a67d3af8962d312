import WritCore
import Yams

/// `/etc/writ/integrations.yaml`: the secrets and settings of writd's integrations (PagerDuty;
/// Slack to come). Root's, mode 0600: writd refuses a file anyone else can read. Every mistake is
/// reported as `file:line:column`, as in the policy.
public struct IntegrationSettings: Sendable, Equatable {
    public struct PagerDuty: Sendable, Equatable {
        public var token: String
        public var apiURL: String
        public var timeoutMilliseconds: Int

        public init(token: String, apiURL: String, timeoutMilliseconds: Int) {
            self.token = token
            self.apiURL = apiURL
            self.timeoutMilliseconds = timeoutMilliseconds
        }
    }

    /// How a Unix account becomes an email address (PagerDuty and Slack find people by email):
    /// `emails` first, then `emailTemplate` with `{user}` replaced.
    public struct Identities: Sendable, Equatable {
        public var emails: [String: String]
        public var emailTemplate: String?

        public init(emails: [String: String] = [:], emailTemplate: String? = nil) {
            self.emails = emails
            self.emailTemplate = emailTemplate
        }

        /// The email of `user`, or nil when neither the map nor a template gives one.
        public func email(of user: String) -> String? {
            if let e = emails[user] { return e }
            guard let t = emailTemplate else { return nil }
            var out = ""
            var rest = Substring(t)
            while let r = rest.firstRange(of: "{user}") {
                out += rest[..<r.lowerBound] + user
                rest = rest[r.upperBound...]
            }
            return out + rest
        }
    }

    public var pagerDuty: PagerDuty?
    public var identities: Identities

    public static let defaultPath = "/etc/writ/integrations.yaml"

    /// Parses the file's text.
    public static func parse(_ text: String, file: String) throws(PolicyErrors) -> IntegrationSettings {
        var parser = PolicyParser(file: file)
        let settings = parser.integrations(from: text)
        guard !parser.hasIssues, let settings else {
            if !parser.hasIssues { parser.report("the integrations file could not be read", at: .start) }
            throw PolicyErrors(issues: parser.issues)
        }
        return settings
    }
}

extension PolicyParser {
    mutating func integrations(from text: String) -> IntegrationSettings? {
        lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard let root = compose(text) else { return nil }
        let place = "at the top level"
        guard
            let top = fields(
                root,
                named: "integrations",
                in: place,
                at: Position(root),
                known: ["pagerduty", "identities"],
                example: "pagerduty: {token: …}"
            )
        else { return nil }
        var settings = IntegrationSettings(pagerDuty: nil, identities: IntegrationSettings.Identities())
        if let node = top["pagerduty"],
            let pd = fields(
                node,
                named: "pagerduty",
                in: place,
                at: top.position(of: "pagerduty"),
                keysIn: "in pagerduty",
                known: ["token", "api_url", "timeout"],
                example: "{token: u+AbC…, timeout: 3s}"
            )
        {
            let token = self.text(pd, "token", in: "in pagerduty")
            if token == nil && pd["token"] == nil {
                reportMissing("token", in: pd, "'token' is missing in pagerduty: a REST API key (read-only is enough)")
            }
            var apiURL = "https://api.pagerduty.com"
            if let url = self.text(pd, "api_url", in: "in pagerduty") {
                if url.value.hasPrefix("https://") || url.value.hasPrefix("http://127.0.0.1")
                    || url.value.hasPrefix("http://localhost")
                {
                    apiURL = String(url.value.reversed().drop { $0 == "/" }.reversed())
                } else {
                    report(
                        "'api_url' in pagerduty must be https:// (plain http only to 127.0.0.1, for tests): the token would travel in clear",
                        at: url.position
                    )
                }
            }
            var timeout: Int64 = 3
            if pd["timeout"] != nil, let t = duration(pd, "timeout", in: "in pagerduty") {
                if t.value > 10 {
                    report(
                        "'timeout' in pagerduty is \(DurationText.format(t.value)): at most 10s — a requester is waiting",
                        at: t.position
                    )
                }
                timeout = t.value
            }
            if let token {
                settings.pagerDuty = .init(token: token.value, apiURL: apiURL, timeoutMilliseconds: Int(timeout) * 1000)
            }
        }
        if let node = top["identities"],
            let ids = fields(
                node,
                named: "identities",
                in: place,
                at: top.position(of: "identities"),
                keysIn: "in identities",
                known: ["emails", "email_template"],
                example: "{email_template: \"{user}@example.com\", emails: {alice: alice.smith@example.com}}"
            )
        {
            if let t = self.text(ids, "email_template", in: "in identities") {
                if t.value.contains("{user}") && t.value.contains("@") {
                    settings.identities.emailTemplate = t.value
                } else {
                    report(
                        "'email_template' in identities must contain {user} and @, e.g. \"{user}@example.com\"",
                        at: t.position
                    )
                }
            }
            if let m = ids["emails"] {
                if case .mapping(let mapping) = m {
                    for (k, v) in mapping {
                        guard let user = word(k, label: "a user name in 'emails'"),
                            let email = word(
                                v,
                                label: "the email of \(LogText.escape(k.scalar?.string ?? "", limit: 40))"
                            )
                        else { continue }
                        settings.identities.emails[user.value] = email.value
                    }
                } else {
                    report("'emails' in identities must be a mapping of user: email", at: m)
                }
            }
        }
        return hasIssues ? nil : settings
    }
}
