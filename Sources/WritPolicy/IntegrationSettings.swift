import WritCore
import Yams

/// `/etc/writ/integrations.yaml`: the secrets and settings of writd's integrations (PagerDuty,
/// Slack). Root's, mode 0600: writd refuses a file anyone else can read. Every mistake is
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

    /// Slack: a bot token for the Web API, and either an app-level token (Socket Mode: writd
    /// connects out, no inbound port) or a signing secret and a listening address (HTTP mode).
    public struct Slack: Sendable, Equatable {
        public enum Mode: String, Sendable, Equatable {
            case socket
            case http
        }
        public var botToken: String
        public var appToken: String?
        public var signingSecret: String?
        public var mode: Mode
        /// `https://slack.com/api/` (ends with `/`).
        public var apiURL: String
        /// Where request cards go when the flow names no `slack_channel` (id or `#name`).
        public var channel: String?
        /// HTTP mode: the address to listen on (`127.0.0.1:3000`), and TLS files (PEM) when
        /// writd terminates TLS itself rather than a proxy in front of it.
        public var listenHost: String
        public var listenPort: Int
        public var tlsCertificate: String?
        public var tlsKey: String?
        /// Unix user → Slack user id, pinned by the admin (`U…`). Others are found by email once
        /// and pinned by writd.
        public var users: [String: String]
        /// Milliseconds a Web API call may take, retries after HTTP 429 included.
        public var timeoutMilliseconds: Int

        public init(
            botToken: String,
            appToken: String? = nil,
            signingSecret: String? = nil,
            mode: Mode = .socket,
            apiURL: String = "https://slack.com/api/",
            channel: String? = nil,
            listenHost: String = "127.0.0.1",
            listenPort: Int = 3000,
            tlsCertificate: String? = nil,
            tlsKey: String? = nil,
            users: [String: String] = [:],
            timeoutMilliseconds: Int = 10_000
        ) {
            self.botToken = botToken
            self.appToken = appToken
            self.signingSecret = signingSecret
            self.mode = mode
            self.apiURL = apiURL
            self.channel = channel
            self.listenHost = listenHost
            self.listenPort = listenPort
            self.tlsCertificate = tlsCertificate
            self.tlsKey = tlsKey
            self.users = users
            self.timeoutMilliseconds = timeoutMilliseconds
        }
    }

    public var pagerDuty: PagerDuty?
    public var slack: Slack?
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
                known: ["pagerduty", "slack", "identities"],
                example: "pagerduty: {token: …}"
            )
        else { return nil }
        var settings = IntegrationSettings(pagerDuty: nil, slack: nil, identities: IntegrationSettings.Identities())
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
        if let node = top["slack"] {
            settings.slack = slack(node, at: top.position(of: "slack"))
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
                if EmailAddress.folded(t.value) == nil {
                    report(
                        "'email_template' in identities is not plain ASCII: Writ matches addresses only in ASCII (a look-alike letter is another person's address)",
                        at: t.position
                    )
                } else if t.value.contains("{user}") && t.value.contains("@") {
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
                        guard EmailAddress.folded(email.value) != nil else {
                            report(
                                "\(LogText.escape(email.value, limit: 80)) in identities emails is not plain ASCII: Writ matches addresses only in ASCII (a look-alike letter is another person's address)",
                                at: email.position
                            )
                            continue
                        }
                        if let other = settings.identities.emails.first(where: {
                            EmailAddress.same($0.value, email.value)
                        })?.key {
                            report(
                                "\(email.value) in identities emails is \(other)'s already: one address names one user (Slack and PagerDuty find people by it)",
                                at: email.position
                            )
                            continue
                        }
                        settings.identities.emails[user.value] = email.value
                    }
                } else {
                    report("'emails' in identities must be a mapping of user: email", at: m)
                }
            }
        }
        return hasIssues ? nil : settings
    }

    /// The `slack:` section.
    mutating func slack(_ node: Node, at position: Position) -> IntegrationSettings.Slack? {
        let place = "in slack"
        guard
            let f = fields(
                node,
                named: "slack",
                in: "at the top level",
                at: position,
                keysIn: place,
                known: [
                    "bot_token", "app_token", "signing_secret", "mode", "api_url", "channel", "listen",
                    "tls_certificate",
                    "tls_key", "users", "timeout",
                ],
                example: "{bot_token: xoxb-…, app_token: xapp-…, channel: \"#writ-approvals\"}"
            )
        else { return nil }
        let bot = text(f, "bot_token", in: place)
        if bot == nil && f["bot_token"] == nil {
            reportMissing(
                "bot_token",
                in: f,
                "'bot_token' is missing in slack: the app's Bot User OAuth Token (xoxb-…)"
            )
        }
        if let bot, !bot.value.hasPrefix("xoxb-") {
            report(
                "'bot_token' in slack must be a bot token (xoxb-…), from the app's OAuth & Permissions page",
                at: bot.position
            )
        }
        let app = text(f, "app_token", in: place)
        if let app, !app.value.hasPrefix("xapp-") {
            report("'app_token' in slack must be an app-level token (xapp-…) with connections:write", at: app.position)
        }
        let secret = text(f, "signing_secret", in: place)
        // Socket Mode unless only a signing secret is given.
        var mode: IntegrationSettings.Slack.Mode = app == nil && secret != nil ? .http : .socket
        if let m = text(f, "mode", in: place) {
            if let known = IntegrationSettings.Slack.Mode(rawValue: m.value) {
                mode = known
            } else {
                report("'mode' in slack must be socket or http", at: m.position)
            }
        }
        if mode == .socket && app == nil && f["app_token"] == nil {
            reportMissing(
                "app_token",
                in: f,
                "'app_token' is missing in slack: Socket Mode needs an app-level token (xapp-…); or set mode: http with a signing_secret"
            )
        }
        if mode == .http && secret == nil && f["signing_secret"] == nil {
            reportMissing(
                "signing_secret",
                in: f,
                "'signing_secret' is missing in slack: HTTP mode verifies every request with it"
            )
        }
        var settings = IntegrationSettings.Slack(
            botToken: bot?.value ?? "",
            appToken: app?.value,
            signingSecret: secret?.value,
            mode: mode
        )
        if let url = text(f, "api_url", in: place) {
            if url.value.hasPrefix("https://") || url.value.hasPrefix("http://127.0.0.1") {
                settings.apiURL = url.value.hasSuffix("/") ? url.value : url.value + "/"
            } else {
                report(
                    "'api_url' in slack must be https:// (plain http only to 127.0.0.1, for tests): the token would travel in clear",
                    at: url.position
                )
            }
        }
        if let c = text(f, "channel", in: place) { settings.channel = c.value }
        if let l = text(f, "listen", in: place) {
            let parts = l.value.split(separator: ":")
            if parts.count == 2, let port = Int(parts[1]), (1...65535).contains(port), !parts[0].isEmpty {
                settings.listenHost = String(parts[0])
                settings.listenPort = port
            } else {
                report("'listen' in slack must be host:port, e.g. 127.0.0.1:3000", at: l.position)
            }
        }
        let cert = text(f, "tls_certificate", in: place)
        let key = text(f, "tls_key", in: place)
        if (cert == nil) != (key == nil), let one = cert ?? key {
            report(
                "'tls_certificate' and 'tls_key' in slack go together (PEM files), or neither (TLS ends at a proxy)",
                at: one.position
            )
        }
        settings.tlsCertificate = cert?.value
        settings.tlsKey = key?.value
        if f["timeout"] != nil, let t = duration(f, "timeout", in: place) {
            if t.value > 30 || t.value < 1 {
                report("'timeout' in slack is \(DurationText.format(t.value)): between 1s and 30s", at: t.position)
            }
            settings.timeoutMilliseconds = Int(t.value) * 1000
        }
        if let m = f["users"] {
            if case .mapping(let mapping) = m {
                for (k, v) in mapping {
                    guard let user = word(k, label: "a user name in 'users'"),
                        let id = word(
                            v,
                            label: "the Slack user id of \(LogText.escape(k.scalar?.string ?? "", limit: 40))"
                        )
                    else { continue }
                    guard id.value.first == "U" || id.value.first == "W", id.value.count >= 9,
                        id.value.allSatisfy({ $0.isASCII && ($0.isUppercase || $0.isNumber) })
                    else {
                        report(
                            "\(id.value) in slack users is not a Slack user id (U… or W…, from the user's profile: Copy member ID)",
                            at: id.position
                        )
                        continue
                    }
                    if user.value == "root" {
                        report(
                            "root in slack users: root is never mapped to a Slack account (it needs no approval)",
                            at: user.position
                        )
                        continue
                    }
                    if let other = settings.users.first(where: { $0.value == id.value })?.key {
                        report(
                            "\(id.value) in slack users is pinned to \(other) already: one Slack account speaks for one user",
                            at: id.position
                        )
                        continue
                    }
                    settings.users[user.value] = id.value
                }
            } else {
                report("'users' in slack must be a mapping of unix user: Slack user id", at: m)
            }
        }
        return settings
    }
}
