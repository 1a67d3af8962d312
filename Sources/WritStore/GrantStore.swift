import CSQLite
import WritCore

#if canImport(Glibc)
import Glibc
#else
import CLibc  // Embedded Swift build of the module: no Glibc overlay
#endif

/// The writable grant store. Only one writer should exist on a host (writd once it runs; the
/// `writ` CLI as root when it does not). Opening it migrates the schema.
public final class GrantStore {
    let db: SQLiteDatabase
    public let path: String

    /// Opens an existing store for writing after the same ownership checks readers make.
    public init(path: String) throws(StoreError) {
        try StoreFile.verify(path: path, readHeader: false)
        self.path = path
        db = try SQLiteDatabase(path: path, readOnly: false, busyTimeoutMs: 5000)
        try Self.configure(db)
    }

    private init(path: String, db: SQLiteDatabase) {
        self.path = path
        self.db = db
    }

    /// Creates the store (directory 0700 root, file 0600 root) if it does not exist, then opens it.
    /// An existing store is checked and migrated, never replaced.
    public static func create(path: String) throws(StoreError) -> GrantStore {
        try StoreFile.createRootFile(path, what: "store path")
        let db = try SQLiteDatabase(path: path, readOnly: false, busyTimeoutMs: 5000)
        try configure(db)
        return GrantStore(path: path, db: db)
    }

    static func configure(_ db: SQLiteDatabase) throws(StoreError) {
        // Rollback journal, not WAL. Measured here (BENCHMARKS.md): a read-only WAL reader that is
        // the only connection must rebuild the -shm index on every open, and even with another
        // connection holding it pays the shm mapping and read marks: 195 µs and 134 µs per check,
        // against 81 µs with a rollback journal. Readers run in every sudo and ssh login; writes
        // are a few per hour, and a reader that meets one waits milliseconds in the busy handler
        // (never a denial: Tests/Integration "parallel sudo runs under write load").
        // FULL sync: a revocation reported done survives a power cut.
        try db.execute("PRAGMA journal_mode = DELETE; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON")
        try StoreSchema.migrate(db)
    }

    /// Inserts a grant. The caller has validated it.
    public func add(_ g: Grant) throws(StoreError) {
        let stmt = try db.prepare(
            """
            INSERT INTO grants (id, user, uid, capability, host, runas, commands, not_before, expires_at,
                                revoked_at, revoked_by, reason, approved_by, request_id, policy_version, created_at)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
            """
        )
        try stmt.bind(1, g.id)
        try stmt.bind(2, g.user)
        try stmt.bind(3, Int64(g.uid))
        try stmt.bind(4, g.capability.rawValue)
        try stmt.bind(5, g.host)
        try stmt.bind(6, g.runas)
        try stmt.bind(7, g.commands.map(CommandList.encode))
        try stmt.bind(8, g.notBefore)
        try stmt.bind(9, g.expiresAt)
        try stmt.bind(10, g.revokedAt)
        try stmt.bind(11, g.revokedBy)
        try stmt.bind(12, g.reason)
        try stmt.bind(13, g.approvedBy)
        try stmt.bind(14, g.requestID)
        try stmt.bind(15, g.policyVersion)
        try stmt.bind(16, g.createdAt)
        _ = try stmt.step()
    }

    /// Inserts many grants in one transaction (benchmarks, imports).
    public func addAll(_ grants: [Grant]) throws(StoreError) {
        try db.execute("BEGIN IMMEDIATE")
        do throws(StoreError) {
            for g in grants { try add(g) }
            try db.execute("COMMIT")
        } catch {
            try? db.execute("ROLLBACK")
            throw error
        }
    }

    /// Marks a grant revoked at `now`. Revoking an ended grant changes nothing and says so,
    /// unless `evenIfEnded`: a fleet grant whose window strict mode closed here is still in
    /// force as far as writd knows, and a revocation from the server must mark it.
    /// - Returns: the grant as it was before, and whether this call revoked it.
    @discardableResult
    public func revoke(
        id: String,
        by: String,
        now: Int64,
        evenIfEnded: Bool = false
    ) throws(StoreError) -> (grant: Grant, revoked: Bool) {
        guard let grant = try self.grant(id: id) else { throw .notFound(id: id) }
        guard evenIfEnded || grant.state(at: now) == .active || grant.state(at: now) == .pending else {
            return (grant, false)
        }
        let stmt = try db.prepare(
            "UPDATE grants SET revoked_at = ?2, revoked_by = ?3 WHERE id = ?1 AND revoked_at IS NULL"
        )
        try stmt.bind(1, id)
        try stmt.bind(2, now)
        try stmt.bind(3, by)
        _ = try stmt.step()
        return (grant, db.changes == 1)
    }

    /// Moves an unrevoked grant's end to `expiresAt` (an approved extension).
    public func extend(id: String, to expiresAt: Int64) throws(StoreError) {
        let stmt = try db.prepare(
            "UPDATE grants SET expires_at = ?2 WHERE id = ?1 AND revoked_at IS NULL AND not_before < ?2"
        )
        try stmt.bind(1, id)
        try stmt.bind(2, expiresAt)
        _ = try stmt.step()
        guard db.changes == 1 else { throw .notFound(id: id) }
    }

    /// The connection, for writd: it attaches its own state database to it so that a decision and
    /// the grant it issues commit together (one SQLite transaction across both files).
    package var database: SQLiteDatabase { db }

    /// One grant by id.
    public func grant(id: String) throws(StoreError) -> Grant? {
        let stmt = try db.prepare("SELECT \(Self.columns) FROM grants WHERE id = ?1")
        try stmt.bind(1, id)
        guard try stmt.step() else { return nil }
        return try Self.row(stmt)
    }

    /// Grants that have not ended at `now` (active and not yet valid), or all of them.
    public func list(includeEnded: Bool, now: Int64) throws(StoreError) -> [Grant] {
        let sql =
            includeEnded
            ? "SELECT \(Self.columns) FROM grants ORDER BY created_at, id"
            : "SELECT \(Self.columns) FROM grants WHERE revoked_at IS NULL AND expires_at > ?1 ORDER BY expires_at, id"
        let stmt = try db.prepare(sql)
        if !includeEnded { try stmt.bind(1, now) }
        var out: [Grant] = []
        while try stmt.step() { out.append(try Self.row(stmt)) }
        return out
    }

    package static let columns = """
        id, user, uid, capability, host, runas, commands, not_before, expires_at, revoked_at, revoked_by, \
        reason, approved_by, request_id, policy_version, created_at
        """

    package static func row(_ s: SQLiteStatement) throws(StoreError) -> Grant {
        guard let capability = Capability(rawValue: s.string(3)) else {
            throw .corrupt(path: s.database.path, detail: "unknown capability \(s.string(3))")
        }
        var commands: [CommandPattern]? = nil
        if let text = s.optionalString(6) {
            do { commands = try CommandList.decode(text) } catch {
                throw .corrupt(path: s.database.path, detail: "grant \(s.string(0)) has a malformed command list")
            }
        }
        return Grant(
            id: s.string(0),
            user: s.string(1),
            uid: UInt32(truncatingIfNeeded: s.int64(2)),
            capability: capability,
            host: s.string(4),
            runas: s.string(5),
            commands: commands,
            notBefore: s.int64(7),
            expiresAt: s.int64(8),
            revokedAt: s.optionalInt64(9),
            revokedBy: s.optionalString(10),
            reason: s.string(11),
            approvedBy: s.string(12),
            requestID: s.optionalString(13),
            policyVersion: s.optionalString(14),
            createdAt: s.int64(15)
        )
    }
}

/// Random grant identifiers: `g_` and 16 hex digits (WritCore's `RandomID`).
public enum GrantID {
    public static func generate() -> String { RandomID.make("g_", hexDigits: 16) }
}
