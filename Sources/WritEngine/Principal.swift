/// Who is asking the engine, and how that was established. Every call names one; nothing about
/// a call is kept on the engine between calls.
public struct Principal: Sendable, Equatable, CustomStringConvertible {
    public enum Route: Sendable, Equatable {
        /// A Unix account on a host, from the kernel (SO_PEERCRED on writd's socket): the host vouches.
        case host(String)
        /// A Slack member, mapped to `user` through the identities setting.
        case slack(member: String)
        /// The engine itself: expiry, escalation, timeouts.
        case engine
    }

    /// The account the principal acts as ("alice"; the engine's own name for `.engine`).
    public var user: String
    public var route: Route

    public init(user: String, route: Route) {
        self.user = user
        self.route = route
    }

    public static func host(_ user: String, on host: String) -> Principal { Principal(user: user, route: .host(host)) }

    public static let engine = Principal(user: "writ-engine", route: .engine)

    /// What the audit records beside the actor: `host:web-01`, `slack:U123`; nil for the engine.
    public var via: String? {
        switch route {
        case .host(let h): "host:\(h)"
        case .slack(let m): "slack:\(m)"
        case .engine: nil
        }
    }

    /// "alice on web-01", "alice (Slack U123)".
    public var description: String {
        switch route {
        case .host(let h): "\(user) on \(h)"
        case .slack(let m): "\(user) (Slack \(m))"
        case .engine: user
        }
    }
}
