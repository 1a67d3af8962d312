import Testing
import WritCore

/// Shared fixtures for the WritCore tests: one fixed clock, one host, and builders for grants and
/// queries whose defaults describe a plain, currently active, unscoped sudo grant for alice.
enum Fixture {
    static let now: Int64 = 1_700_000_000
    static let host = HostIdentity(nodename: "web1.example.com")

    static func grant(
        id: String = "g_active",
        user: String = "alice",
        uid: UInt32 = 1000,
        capability: Capability = .sudo,
        host: String = "*",
        runas: String = "root",
        commands: [CommandPattern]? = nil,
        notBefore: Int64 = now - 60,
        expiresAt: Int64 = now + 3600,
        revokedAt: Int64? = nil
    ) -> Grant {
        Grant(
            id: id,
            user: user,
            uid: uid,
            capability: capability,
            host: host,
            runas: runas,
            commands: commands,
            notBefore: notBefore,
            expiresAt: expiresAt,
            revokedAt: revokedAt,
            revokedBy: revokedAt == nil ? nil : "admin",
            reason: "test",
            approvedBy: "cli:root",
            createdAt: notBefore
        )
    }

    static func query(
        user: String = "alice",
        uid: UInt32 = 1000,
        capability: Capability = .sudo,
        host: HostIdentity = host,
        runas: String? = nil,
        command: (path: String, arguments: [String])? = nil,
        scopeEnforcedLater: Bool = false,
        now: Int64 = now
    ) -> AccessQuery {
        AccessQuery(
            user: user,
            uid: uid,
            capability: capability,
            host: host,
            runas: runas,
            command: command,
            scopeEnforcedLater: scopeEnforcedLater,
            now: now
        )
    }

}
