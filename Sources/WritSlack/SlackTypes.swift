import WritExpr

/// Why a Slack call failed. Never an answer: a caller that acts only on a returned value fails
/// closed. Descriptions are one line for the log and never contain a token.
public enum SlackError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Slack answered `{"ok": false, "error": code}` (HTTP 200), e.g. `channel_not_found`.
    case api(method: String, code: String)
    /// HTTP 429 beyond what the caller's deadline allows waiting for; `retryAfter` in seconds.
    case rateLimited(method: String, retryAfter: Int)
    /// Any other HTTP status (5xx during an outage).
    case http(method: String, status: Int)
    /// No answer: connection refused or reset, TLS, DNS.
    case transport(method: String, message: String)
    /// The deadline passed.
    case timeout(method: String)
    /// An answer that is not what Slack documents.
    case malformed(method: String, message: String)
    /// Refused before sending (e.g. a plain-http URL that is not loopback).
    case configuration(String)

    public var description: String {
        switch self {
        case .api(let m, let code): "Slack \(m): \(code)"
        case .rateLimited(let m, let s): "Slack \(m): rate limited (HTTP 429, retry after \(s) s)"
        case .http(let m, let status): "Slack \(m): HTTP \(status)"
        case .transport(let m, let message): "Slack \(m): \(message)"
        case .timeout(let m): "Slack \(m): no answer in time"
        case .malformed(let m, let message): "Slack \(m): unexpected answer: \(message)"
        case .configuration(let message): "Slack: \(message)"
        }
    }

    /// Worth trying again later (an outage, a rate limit), as opposed to an answer that will not
    /// change (`channel_not_found`, `invalid_auth`).
    public var isTransient: Bool {
        switch self {
        case .rateLimited, .http, .transport, .timeout: true
        case .api(_, let code):
            ["internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"].contains(code)
        case .malformed, .configuration: false
        }
    }
}

/// A Slack user as `users.info` / `users.lookupByEmail` describe one: what writd needs to decide
/// whether a click may count.
public struct SlackUser: Sendable, Equatable {
    public var id: String
    public var teamID: String
    public var name: String
    public var realName: String
    public var email: String?
    public var deleted: Bool
    public var isBot: Bool
    /// `is_restricted` (multi-channel guest) or `is_ultra_restricted` (single-channel guest).
    public var isGuest: Bool

    public init(
        id: String,
        teamID: String,
        name: String = "",
        realName: String = "",
        email: String? = nil,
        deleted: Bool = false,
        isBot: Bool = false,
        isGuest: Bool = false
    ) {
        self.id = id
        self.teamID = teamID
        self.name = name
        self.realName = realName
        self.email = email
        self.deleted = deleted
        self.isBot = isBot
        self.isGuest = isGuest
    }
}

/// What the workspace says about the bot token (`auth.test`).
public struct SlackIdentity: Sendable, Equatable {
    public var teamID: String
    public var team: String
    public var userID: String
    public var botID: String?
    public var url: String

    public init(teamID: String, team: String, userID: String, botID: String?, url: String) {
        self.teamID = teamID
        self.team = team
        self.userID = userID
        self.botID = botID
        self.url = url
    }
}

/// Something a user did in Slack, as either transport (Socket Mode or HTTP mode) delivers it.
public enum SlackInbound: Sendable, Equatable {
    /// A slash command: the form fields Slack sends (`command`, `text`, `user_id`, `team_id`,
    /// `channel_id`, `trigger_id`, `response_url`, …).
    case slashCommand([String: String])
    /// An interaction (`block_actions`, `view_submission`, `view_closed`, `shortcut`): the
    /// `payload` JSON.
    case interactive(JSONValue)
    /// An Events API callback (`event_callback`), the whole payload.
    case event(JSONValue)
}

extension JSONValue {
    /// `self[key]` for an object, nil otherwise.
    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    /// The string, or nil.
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The bool, or nil.
    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    /// The integer (also from an integral number), or nil.
    public var intValue: Int64? {
        switch self {
        case .int(let i): i
        case .number(let d) where d == d.rounded() && abs(d) < 9e15: Int64(d)
        default: nil
        }
    }

    /// The array, or nil.
    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }
}
