/// One grant as stored: who may do what, where, as whom, and between which instants.
///
/// Times are absolute UTC seconds since the epoch, so a check compares them against the wall clock
/// at call time and stays exact even when writd is down.
public struct Grant: Sendable, Hashable {
    public var id: String
    public var user: String
    public var uid: UInt32
    public var capability: Capability
    /// Glob matched against the host's short name and its fully qualified name (`*` = any host).
    public var host: String
    /// Run-as user pattern (`root` by default; `*` = any user). Meaningful for `sudo` grants only.
    public var runas: String
    /// `nil`: any command. Otherwise the commands the grant allows.
    public var commands: [CommandPattern]?
    public var notBefore: Int64
    public var expiresAt: Int64
    public var revokedAt: Int64?
    public var revokedBy: String?
    public var reason: String
    public var approvedBy: String
    public var requestID: String?
    public var policyVersion: String?
    public var createdAt: Int64

    public init(
        id: String,
        user: String,
        uid: UInt32,
        capability: Capability,
        host: String = "*",
        runas: String = "root",
        commands: [CommandPattern]? = nil,
        notBefore: Int64,
        expiresAt: Int64,
        revokedAt: Int64? = nil,
        revokedBy: String? = nil,
        reason: String = "",
        approvedBy: String,
        requestID: String? = nil,
        policyVersion: String? = nil,
        createdAt: Int64
    ) {
        self.id = id
        self.user = user
        self.uid = uid
        self.capability = capability
        self.host = host
        self.runas = runas
        self.commands = commands
        self.notBefore = notBefore
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
        self.revokedBy = revokedBy
        self.reason = reason
        self.approvedBy = approvedBy
        self.requestID = requestID
        self.policyVersion = policyVersion
        self.createdAt = createdAt
    }

    /// Where the grant stands at `now`.
    public func state(at now: Int64) -> GrantState {
        if revokedAt != nil { return .revoked }
        if now >= expiresAt { return .expired }
        if now < notBefore { return .pending }
        return .active
    }

    /// A sudo grant is *scoped* when it is narrower than "any command as root": a command list, or a
    /// run-as user other than root / any. Only the sudo plugin can enforce such a scope; the PAM
    /// account stage sees neither the command nor the target user.
    public var isScoped: Bool {
        commands != nil || !(runas == "root" || runas == "*")
    }
}

/// The lifecycle state of a grant at a given instant.
public enum GrantState: String, Sendable {
    /// `not_before` lies in the future.
    case pending
    case active
    case expired
    case revoked
}
