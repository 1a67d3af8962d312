import WritCore
import WritStore

/// A grant as the engine issues it: it names a user, a host (pattern) and a scope, never a uid.
/// The host that enforces it fills in the uid when it writes its grants.db.
public struct EngineGrant: Sendable, Equatable, Codable {
    public var id: String
    /// The request that issued it (nil for grants an operator added by hand).
    public var requestID: String?
    public var user: String
    public var capability: String
    public var host: String
    public var runas: String
    public var commands: [String]?
    public var notBefore: Int64
    public var expiresAt: Int64
    public var approvedBy: String
    public var reason: String
    /// The policy that decided it (its hash), for the audit records.
    public var policyVersion: String?
    public var revokedAt: Int64?
    public var revokedBy: String?
    /// When the engine recorded its end (expiry or revocation), and why; nil while it runs.
    public var endedAt: Int64?
    public var endReason: String?

    public init(
        id: String = GrantID.generate(),
        requestID: String?,
        user: String,
        capability: String,
        host: String,
        runas: String,
        commands: [String]?,
        notBefore: Int64,
        expiresAt: Int64,
        approvedBy: String,
        reason: String,
        policyVersion: String? = nil
    ) {
        self.id = id
        self.requestID = requestID
        self.user = user
        self.capability = capability
        self.host = host
        self.runas = runas
        self.commands = commands
        self.notBefore = notBefore
        self.expiresAt = expiresAt
        self.approvedBy = approvedBy
        self.reason = reason
        self.policyVersion = policyVersion
    }

    public var document: String { EngineRequest.encodeJSON(self) }

    public init(document text: String) throws(EngineError) {
        guard let g = EngineRequest.decodeJSON(EngineGrant.self, text) else {
            throw .corrupt("a stored grant does not decode")
        }
        self = g
    }
}
