import CSQLite
import WritCore

/// The read-only view of the grant store used at login and sudo time: one connection opened with
/// `SQLITE_OPEN_READONLY` after the file checks, one indexed query, closed on `deinit`.
public final class GrantReader {
    let db: SQLiteDatabase

    /// Busy timeout for readers: a writer's commit holds the lock for a few milliseconds; a
    /// check that meets one waits instead of denying.
    public static let busyTimeoutMs: Int32 = 2000

    /// Opens the store at `path` after checking its ownership and modes.
    /// - Throws: a `StoreError` saying why the store cannot be trusted or read.
    public init(path: String) throws(StoreError) {
        let version = try StoreFile.verify(path: path)
        db = try SQLiteDatabase(path: path, readOnly: true, busyTimeoutMs: Self.busyTimeoutMs)
        if version == 0 { throw .uninitialized(path: path) }
        if version > StoreSchema.current {
            throw .newerSchema(path: path, found: version, supported: StoreSchema.current)
        }
    }

    /// Grants of `user` for `capability` that are neither revoked nor expired at `now` (active ones
    /// and ones not yet valid), newest expiry first. At most 64: more is a misuse, not a need.
    public func candidates(user: String, capability: Capability, now: Int64) throws(StoreError) -> [Grant] {
        let stmt = try db.prepare(
            """
            SELECT id, uid, host, runas, commands, not_before, expires_at FROM grants
            WHERE user = ?1 AND capability = ?2 AND revoked_at IS NULL AND expires_at > ?3
            ORDER BY expires_at DESC LIMIT 64
            """
        )
        try stmt.bind(1, user)
        try stmt.bind(2, capability.rawValue)
        try stmt.bind(3, now)
        var grants: [Grant] = []
        while try stmt.step() {
            let uid = stmt.int64(1)
            guard uid >= 0, uid <= Int64(UInt32.max) else { continue }
            var commands: [CommandPattern]? = nil
            if let text = stmt.optionalString(4) {
                do {
                    commands = try CommandList.decode(text)
                } catch {
                    // A command scope we cannot read must not become "any command".
                    throw .corrupt(path: db.path, detail: "grant \(stmt.string(0)) has a malformed command list")
                }
            }
            grants.append(
                Grant(
                    id: stmt.string(0),
                    user: user,
                    uid: UInt32(uid),
                    capability: capability,
                    host: stmt.string(2),
                    runas: stmt.string(3),
                    commands: commands,
                    notBefore: stmt.int64(5),
                    expiresAt: stmt.int64(6),
                    approvedBy: "",
                    createdAt: 0
                )
            )
        }
        return grants
    }
}
