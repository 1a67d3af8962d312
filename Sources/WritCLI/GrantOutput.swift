import FoundationEssentials
import WritCore

/// `writ grant list --json`: one object per grant, stable field names, times as UTC seconds.
enum GrantJSON {
    struct Row: Encodable {
        var id, user: String
        var uid: UInt32
        var capability, host, runas: String
        var commands: [String]?
        var not_before, expires_at: Int64
        var revoked_at: Int64?
        var revoked_by: String?
        var reason, approved_by, state: String
        var created_at: Int64
    }

    static func encode(_ grants: [Grant], now: Int64) -> String {
        let rows = grants.map {
            Row(
                id: $0.id,
                user: $0.user,
                uid: $0.uid,
                capability: $0.capability.rawValue,
                host: $0.host,
                runas: $0.runas,
                commands: $0.commands?.map(\.description),
                not_before: $0.notBefore,
                expires_at: $0.expiresAt,
                revoked_at: $0.revokedAt,
                revoked_by: $0.revokedBy,
                reason: $0.reason,
                approved_by: $0.approvedBy,
                state: $0.state(at: now).rawValue,
                created_at: $0.createdAt
            )
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(rows) else { return "[]" }
        return String(decoding: data, as: UTF8.self)
    }
}

/// The human table for `writ grant list`.
enum GrantTable {
    static func render(_ grants: [Grant], now: Int64, useColor: Bool) -> String {
        if grants.isEmpty { return "no grants" }
        let header = ["ID", "USER", "CAP", "HOST", "RUNAS", "STATE", "WHEN", "COMMANDS", "REASON"]
        var rows: [[String]] = []
        for g in grants {
            let state = g.state(at: now)
            let when: String =
                switch state {
                case .active: "\(DurationText.format(g.expiresAt - now)) left"
                case .pending: "starts in \(DurationText.format(g.notBefore - now))"
                case .expired: "ended \(DurationText.format(now - g.expiresAt)) ago"
                case .revoked: "revoked \(DurationText.format(now - (g.revokedAt ?? now))) ago"
                }
            rows.append([
                g.id, LogText.escape(g.user, limit: 32), g.capability.rawValue, LogText.escape(g.host, limit: 40),
                LogText.escape(g.runas, limit: 32), state.rawValue, when,
                g.commands.map { $0.map { LogText.escape($0.description, limit: 80) }.joined(separator: "; ") }
                    ?? "any",
                LogText.escape(g.reason, limit: 60),
            ])
        }
        return Table.render(header, rows, useColor: useColor)
    }
}
