import FoundationEssentials
import WritCore

/// The parts of PagerDuty's REST API v2 answers the client reads. Unknown fields are ignored;
/// missing required ones make the answer `.malformed`.
package enum PagerDutyWire {
    /// `GET /users`: classic pagination.
    package struct UsersPage: Decodable {
        package var users: [User]
        package var more: Bool?
    }

    /// A user; only the ID and e-mail matter.
    package struct User: Decodable {
        var id: String
        var email: String?
    }

    /// `GET /oncalls`: classic pagination.
    package struct OnCallsPage: Decodable {
        package var oncalls: [Entry]
        package var more: Bool?
    }

    /// One on-call entry.
    package struct Entry: Decodable {
        var user: Reference
        var escalationPolicy: Reference
        var schedule: Reference?
        var escalationLevel: Int
        var start: String?
        var end: String?

        enum CodingKeys: String, CodingKey {
            case user
            case escalationPolicy = "escalation_policy"
            case schedule
            case escalationLevel = "escalation_level"
            case start
            case end
        }
    }

    /// A reference (`…_reference`) or, with `include[]`, the full object: both have `id` and
    /// `summary`; full objects also have `name`.
    package struct Reference: Decodable {
        var id: String
        var summary: String?
        var name: String?

        /// The display name: `name` when present, else `summary`.
        var displayName: String? { name ?? summary }
    }

    /// `GET /abilities`.
    package struct Abilities: Decodable {
        var abilities: [String]
    }

    /// PagerDuty's error object: `{"error": {"message": …, "code": …, "errors": [...]}}`.
    package struct ErrorBody: Decodable {
        struct Detail: Decodable {
            var message: String?
            var code: Int?
            var errors: [String]?
        }
        var error: Detail
    }

    /// An answer of `path` decoded as `type`; `.malformed` naming the field when it does not fit.
    package static func decode<T: Decodable>(_ type: T.Type, path: String, body: [UInt8]) throws(PagerDutyError) -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(body))
        } catch {
            throw .malformed("\(path): \(describe(error))")
        }
    }

    /// A decoding failure in a few words, naming the JSON path (`oncalls[3].escalation_policy.id`).
    static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "the body is not JSON" }
        switch error {
        case .keyNotFound(let key, let context):
            return "no \"\(path(context.codingPath + [key]))\""
        case .typeMismatch(let type, let context):
            if context.codingPath.isEmpty { return "the body is not a JSON object" }
            return "\"\(path(context.codingPath))\" is not \(typeName(type))"
        case .valueNotFound(let type, let context):
            return "\"\(path(context.codingPath))\" is null, expected \(typeName(type))"
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty { return "the body is not JSON" }
            return "\"\(path(context.codingPath))\" is invalid"
        @unknown default:
            return "the body cannot be decoded"
        }
    }

    private static func path(_ keys: [any CodingKey]) -> String {
        var out = ""
        for key in keys {
            if let index = key.intValue {
                out += "[\(index)]"
            } else {
                out += (out.isEmpty ? "" : ".") + key.stringValue
            }
        }
        return out
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type: "an integer"
        case is Bool.Type: "a boolean"
        default: "the documented shape"
        }
    }
}

/// Building request URLs: the base URL checked, query values percent-encoded.
package enum PagerDutyURL {
    /// The scheme and authority of a checked base URL, for messages (`https://api.pagerduty.com`).
    package struct Base: Equatable {
        /// The base URL without a trailing slash.
        var url: String
        /// `host` or `host:port` (IPv6 in brackets), for messages.
        var authority: String
    }

    /// `apiURL` checked: `https://…` (or `http://` to a loopback address), a host, no user info,
    /// query or fragment. The error text says what is wrong and where to fix it.
    package static func base(_ apiURL: String) -> Result<Base, PagerDutyError> {
        func refuse(_ why: String) -> Result<Base, PagerDutyError> {
            .failure(.transport("not sent: pagerduty.api_url \(why); fix it in /etc/writ/integrations.yaml"))
        }
        let shown = "\"" + LogText.escape(apiURL, limit: 100) + "\""
        guard apiURL.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
            return refuse("holds spaces, control or non-ASCII characters")
        }
        var url = apiURL
        while url.hasSuffix("/") { url.removeLast() }
        let lower = url.lowercased()
        let isHTTPS = lower.hasPrefix("https://")
        guard isHTTPS || lower.hasPrefix("http://") else {
            return refuse("\(shown) does not start with https://")
        }
        guard !url.contains("?"), !url.contains("#") else {
            return refuse("\(shown) has a query or fragment")
        }
        let rest = url.dropFirst(isHTTPS ? 8 : 7)
        let authority = String(rest.prefix { $0 != "/" })
        guard !authority.isEmpty else { return refuse("\(shown) has no host") }
        guard !authority.contains("@") else {
            return refuse("holds user information (credentials belong in pagerduty.token)")
        }
        if !isHTTPS && !isLoopback(host(of: authority)) {
            return refuse("\(shown) uses plain http, which would send the API token in clear; use https://")
        }
        return .success(Base(url: url, authority: authority))
    }

    static func host(of authority: String) -> String { IntegrationHTTP.host(of: authority) }

    static func isLoopback(_ host: String) -> Bool { IntegrationHTTP.isLoopback(host) }

    /// `path` under `base` with the query: every byte but `A–Z a–z 0–9 - . _ ~` percent-encoded,
    /// in names too (`user_ids%5B%5D`), so `+` in an e-mail stays a plus.
    static func url(_ base: Base, path: String, query: [(String, String)]) -> String {
        var out = base.url + path
        for (index, (name, value)) in query.enumerated() {
            out += (index == 0 ? "?" : "&") + encode(name) + "=" + encode(value)
        }
        return out
    }

    /// Percent-encoding of everything outside RFC 3986's unreserved characters.
    static func encode(_ text: String) -> String { IntegrationHTTP.percentEncode(text) }
}
