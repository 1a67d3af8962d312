import Glibc
import Synchronization
import WritAudit
import WritCore
import WritStore

/// The engine's store in one SQLite file: writd standalone and a trial writ-server. Transactions
/// are `BEGIN IMMEDIATE`, so the file has one writer at a time across processes and each
/// transaction sees everything committed before it: locking a row (`forUpdate`) and claiming
/// due rows need nothing more. In one process, transactions take turns on the connection.
public final class SQLiteApprovalStore: ApprovalStore, @unchecked Sendable {
    public let kind = "sqlite"
    public let path: String
    // Used only by the holder of `gate`.
    private let db: SQLiteDatabase
    private let gate = AsyncGate()
    /// Who follows this process's commits (`followChanges`).
    private let followers = Mutex<[Int: AsyncStream<String>.Continuation]>([:])
    private let nextFollower = Mutex(0)

    public static let migrations: [Migration] = [
        Migration(
            version: 1,
            summary: "requests, grants and the audit chain",
            statements: [
                """
                CREATE TABLE requests (
                    id         TEXT PRIMARY KEY NOT NULL,
                    state      TEXT NOT NULL,
                    requester  TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    next_at    INTEGER,
                    body       TEXT NOT NULL
                ) STRICT
                """,
                """
                CREATE INDEX requests_due ON requests (next_at) WHERE state = 'pending'
                """,
                """
                CREATE INDEX requests_requester ON requests (requester, created_at)
                """,
                """
                CREATE TABLE grants (
                    id         TEXT PRIMARY KEY NOT NULL,
                    request_id TEXT UNIQUE,
                    user_name  TEXT NOT NULL,
                    expires_at INTEGER NOT NULL,
                    ended_at   INTEGER,
                    body       TEXT NOT NULL
                ) STRICT
                """,
                """
                CREATE INDEX grants_due ON grants (expires_at) WHERE ended_at IS NULL
                """,
                """
                CREATE TABLE audit (
                    seq  INTEGER PRIMARY KEY NOT NULL,
                    hash TEXT NOT NULL UNIQUE,
                    line TEXT NOT NULL
                ) STRICT
                """,
            ]
        ),
        Migration(
            version: 2,
            summary: "the grant feed: each grant's position, moved on every write",
            statements: [
                "ALTER TABLE grants ADD COLUMN change_seq INTEGER",
                "UPDATE grants SET change_seq = rowid",
                "CREATE UNIQUE INDEX grants_feed ON grants (change_seq)",
            ]
        ),
        Migration(
            version: 3,
            summary: "the fleet's hosts and their one-time enrollment tokens (hashed)",
            statements: [
                """
                CREATE TABLE hosts (
                    name    TEXT PRIMARY KEY NOT NULL,
                    enabled INTEGER NOT NULL,
                    body    TEXT NOT NULL
                ) STRICT
                """,
                """
                CREATE TABLE enrollments (
                    token_hash TEXT PRIMARY KEY NOT NULL,
                    host       TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL,
                    created_by TEXT NOT NULL,
                    used_at    INTEGER
                ) STRICT
                """,
            ]
        ),
        Migration(
            version: 4,
            summary: "hosts' own audit chains, as their agents upload them, and each chain's head",
            statements: [
                """
                CREATE TABLE host_audit (
                    host TEXT NOT NULL,
                    seq  INTEGER NOT NULL,
                    hash TEXT NOT NULL,
                    line TEXT NOT NULL,
                    PRIMARY KEY (host, seq)
                ) STRICT
                """,
                """
                CREATE TABLE host_audit_head (
                    host TEXT PRIMARY KEY NOT NULL,
                    seq  INTEGER NOT NULL,
                    hash TEXT NOT NULL
                ) STRICT
                """,
            ]
        ),
        Migration(
            version: 5,
            summary: "each request's host, for a host's own lists and limits",
            statements: [
                "ALTER TABLE requests ADD COLUMN host TEXT",
                "UPDATE requests SET host = json_extract(body, '$.host')",
                "CREATE INDEX requests_requester_host ON requests (requester, host, created_at)",
                "CREATE INDEX requests_pending ON requests (created_at, id) WHERE state = 'pending'",
                "CREATE INDEX requests_pending_host ON requests (host) WHERE state = 'pending'",
            ]
        ),
    ]

    /// Opens (creating it 0600 if needed) and migrates the file.
    public init(path: String) throws(EngineError) {
        Migration.check(Self.migrations)
        self.path = path
        let fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw .store("cannot open \(path): \(String(cString: strerror(errno)))")
        }
        Glibc.close(fd)
        do {
            db = try SQLiteDatabase(path: path, readOnly: false, create: true, busyTimeoutMs: 10_000)
            try db.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON")
        } catch { throw .store(error.description) }
        try migrate()
    }

    private func migrate() throws(EngineError) {
        try sqlite { () throws(StoreError) in try db.execute("BEGIN IMMEDIATE") }
        do throws(EngineError) {
            let found = Int(try sqlite { () throws(StoreError) in try db.userVersion() })
            let known = Self.migrations.count
            if found > known { throw Migration.newerSchema(path, found: found, known: known) }
            for m in Self.migrations where m.version > found {
                try sqlite { () throws(StoreError) in
                    for statement in m.statements { try db.execute(statement) }
                    try db.execute("PRAGMA user_version = \(m.version)")
                }
            }
            try sqlite { () throws(StoreError) in try db.execute("COMMIT") }
        } catch {
            try? db.execute("ROLLBACK")
            throw error
        }
    }

    public func transaction<T: Sendable>(
        _ body: @Sendable (any StoreTransaction) async throws(EngineError) -> T
    ) async throws(EngineError) -> T {
        await gate.enter()
        do {
            try sqlite { () throws(StoreError) in try db.execute("BEGIN IMMEDIATE") }
        } catch {
            await gate.leave()
            throw error
        }
        do throws(EngineError) {
            let tx = Transaction(db: db)
            let value = try await body(tx)
            try sqlite { () throws(StoreError) in try db.execute("COMMIT") }
            await gate.leave()
            let changes = tx.changes.list.withLock { $0 }
            if !changes.isEmpty {
                for follower in followers.withLock({ Array($0.values) }) {
                    for change in changes { follower.yield(change) }
                }
            }
            return value
        } catch {
            try? db.execute("ROLLBACK")
            await gate.leave()
            throw error
        }
    }

    /// Calls `onChange` with each change this process commits ("request:ID", "grant:ID",
    /// "host:NAME"), after its commit, until the calling task is cancelled. One file has one
    /// writing process here (the trial server), so that is every change.
    public func followChanges(_ onChange: @escaping @Sendable (String) async -> Void) async throws(EngineError) {
        let (stream, continuation) = AsyncStream<String>.makeStream(bufferingPolicy: .bufferingNewest(10_000))
        let id = nextFollower.withLock { n in
            n += 1
            return n
        }
        followers.withLock { $0[id] = continuation }
        defer { _ = followers.withLock { $0.removeValue(forKey: id) } }
        await withTaskCancellationHandler {
            // What was buffered before a cancellation is not handed on after it.
            for await change in stream {
                if Task.isCancelled { break }
                await onChange(change)
            }
        } onCancel: {
            continuation.finish()
        }
    }

    /// Runs SQLite work, mapping its failure: a second grant for one request is a refusal.
    fileprivate func sqlite<T>(_ work: () throws(StoreError) -> T) throws(EngineError) -> T {
        do { return try work() } catch { throw Self.map(error) }
    }

    fileprivate static func map(_ error: StoreError) -> EngineError {
        if case .sqlite(_, let code, let message) = error, code & 0xff == 19,  // SQLITE_CONSTRAINT
            message.contains("grants.request_id")
        {
            return .refused("the request already has its grant")
        }
        return .store(error.description)
    }

    /// One transaction's view of the connection (valid while `transaction` runs its body).
    private struct Transaction: StoreTransaction, @unchecked Sendable {
        let db: SQLiteDatabase
        /// What this transaction changed, told to followers after its commit.
        let changes = CommittedChanges()

        private func run<T>(_ work: () throws(StoreError) -> T) throws(EngineError) -> T {
            do { return try work() } catch { throw SQLiteApprovalStore.map(error) }
        }

        func request(_ id: String, forUpdate: Bool) async throws(EngineError) -> EngineRequest? {
            let body = try run { () throws(StoreError) -> String? in
                let s = try db.prepare("SELECT body FROM requests WHERE id = ?1")
                try s.bind(1, id)
                return try s.step() ? s.string(0) : nil
            }
            return try body.map { (b) throws(EngineError) in try EngineRequest(document: b) }
        }

        func insertRequest(_ r: EngineRequest) async throws(EngineError) {
            changes.list.withLock { $0.append("request:\(r.core.id)") }
            try write(
                "INSERT INTO requests (id, state, requester, created_at, next_at, body, host) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                r
            )
        }

        func updateRequest(_ r: EngineRequest) async throws(EngineError) {
            changes.list.withLock { $0.append("request:\(r.core.id)") }
            try write(
                "UPDATE requests SET state = ?2, requester = ?3, created_at = ?4, next_at = ?5, body = ?6, host = ?7 WHERE id = ?1",
                r
            )
        }

        private func write(_ sql: String, _ r: EngineRequest) throws(EngineError) {
            try run { () throws(StoreError) in
                let s = try db.prepare(sql)
                try s.bind(1, r.core.id)
                try s.bind(2, r.core.state.rawValue)
                try s.bind(3, r.core.requester)
                try s.bind(4, r.core.createdAt)
                try s.bind(5, r.core.nextDeadline)
                try s.bind(6, r.document)
                try s.bind(7, r.host)
                _ = try s.step()
            }
        }

        func claimDueRequests(now: Int64, limit: Int) async throws(EngineError) -> [EngineRequest] {
            try requests(
                "SELECT body FROM requests WHERE state = 'pending' AND next_at <= ?1 ORDER BY next_at LIMIT ?2",
                [.int(now), .int(Int64(limit))]
            )
        }

        func requests(
            requester: String,
            host: String,
            since: Int64,
            limit: Int
        ) async throws(EngineError) -> [EngineRequest] {
            try requests(
                """
                SELECT body FROM requests WHERE requester = ?1 AND host = ?2 AND (state = 'pending' OR created_at > ?3)
                ORDER BY created_at DESC LIMIT ?4
                """,
                [.text(requester), .text(host), .int(since), .int(Int64(limit))]
            )
        }

        func pendingRequests(
            after createdAt: Int64,
            id: String,
            limit: Int
        ) async throws(EngineError)
            -> [EngineRequest]
        {
            try requests(
                """
                SELECT body FROM requests WHERE state = 'pending' AND (created_at, id) > (?1, ?2)
                ORDER BY created_at, id LIMIT ?3
                """,
                [.int(createdAt), .text(id), .int(Int64(limit))]
            )
        }

        func pendingCount(requester: String?, host: String?) async throws(EngineError) -> Int {
            try run { () throws(StoreError) -> Int in
                let s = try prepare(
                    """
                    SELECT count(*) FROM requests WHERE state = 'pending'
                    AND (?1 IS NULL OR requester = ?1) AND (?2 IS NULL OR host = ?2)
                    """,
                    []
                )
                if let requester { try s.bind(1, requester) }
                if let host { try s.bind(2, host) }
                _ = try s.step()
                return Int(s.int64(0))
            }
        }

        private enum Bind {
            case int(Int64)
            case text(String)
        }

        /// `sql` prepared with `binds` as ?1, ?2, …
        private func prepare(_ sql: String, _ binds: [Bind]) throws(StoreError) -> SQLiteStatement {
            let s = try db.prepare(sql)
            for (i, b) in binds.enumerated() {
                switch b {
                case .int(let v): try s.bind(Int32(i + 1), v)
                case .text(let v): try s.bind(Int32(i + 1), v)
                }
            }
            return s
        }

        /// Runs one statement that returns no rows.
        private func exec(_ sql: String, _ binds: [Bind]) throws(EngineError) {
            try run { () throws(StoreError) in _ = try prepare(sql, binds).step() }
        }

        private func bodies(_ sql: String, _ binds: [Bind]) throws(EngineError) -> [String] {
            try run { () throws(StoreError) -> [String] in
                let s = try prepare(sql, binds)
                var out: [String] = []
                while try s.step() { out.append(s.string(0)) }
                return out
            }
        }

        private func requests(_ sql: String, _ binds: [Bind]) throws(EngineError) -> [EngineRequest] {
            var out: [EngineRequest] = []
            for b in try bodies(sql, binds) { out.append(try EngineRequest(document: b)) }
            return out
        }

        func grant(_ id: String, forUpdate: Bool) async throws(EngineError) -> EngineGrant? {
            try bodies("SELECT body FROM grants WHERE id = ?1", [.text(id)]).first.map {
                (b) throws(EngineError) in try EngineGrant(document: b)
            }
        }

        func insertGrant(_ g: EngineGrant) async throws(EngineError) {
            try writeGrant(
                """
                INSERT INTO grants (id, request_id, user_name, expires_at, ended_at, body, change_seq)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                """,
                g
            )
        }

        func updateGrant(_ g: EngineGrant) async throws(EngineError) {
            try writeGrant(
                """
                UPDATE grants SET request_id = ?2, user_name = ?3, expires_at = ?4, ended_at = ?5, body = ?6,
                    change_seq = ?7
                WHERE id = ?1
                """,
                g
            )
        }

        /// Every write moves the grant to the feed's end. Transactions are one at a time
        /// (`BEGIN IMMEDIATE`), so the end is the largest position there is.
        private func writeGrant(_ sql: String, _ g: EngineGrant) throws(EngineError) {
            changes.list.withLock { $0.append("grant:\(g.id)") }
            let position = try feedEnd() + 1
            try run { () throws(StoreError) in
                let s = try db.prepare(sql)
                try s.bind(7, position)
                try s.bind(1, g.id)
                try s.bind(2, g.requestID)
                try s.bind(3, g.user)
                try s.bind(4, g.expiresAt)
                try s.bind(5, g.endedAt)
                try s.bind(6, g.document)
                _ = try s.step()
            }
        }

        func claimDueGrants(now: Int64, limit: Int) async throws(EngineError) -> [EngineGrant] {
            var out: [EngineGrant] = []
            let sql = "SELECT body FROM grants WHERE ended_at IS NULL AND expires_at <= ?1 ORDER BY expires_at LIMIT ?2"
            for b in try bodies(sql, [.int(now), .int(Int64(limit))]) { out.append(try EngineGrant(document: b)) }
            return out
        }

        func appendAudit(_ events: [AuditEvent]) async throws(EngineError) {
            guard !events.isEmpty else { return }
            try run { () throws(StoreError) in
                let head = try db.prepare("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
                var (seq, prev) = try head.step() ? (head.int64(0), head.string(1)) : (0, AuditLine.genesis)
                let insert = try db.prepare("INSERT INTO audit (seq, hash, line) VALUES (?1, ?2, ?3)")
                for event in events {
                    var e = event
                    e.fields.insert(.init("id", AuditEvent.newID()), at: 0)
                    seq += 1
                    let line = AuditLine.render(seq: seq, prev: prev, e)
                    prev = AuditChain.hash(line)
                    insert.reset()
                    try insert.bind(1, seq)
                    try insert.bind(2, prev)
                    try insert.bind(3, line)
                    _ = try insert.step()
                }
            }
        }

        func grantChanges(after cursor: Int64, limit: Int) async throws(EngineError) -> [GrantChange] {
            let rows = try run { () throws(StoreError) -> [(Int64, String)] in
                let s = try db.prepare(
                    "SELECT change_seq, body FROM grants WHERE change_seq > ?1 ORDER BY change_seq LIMIT ?2"
                )
                try s.bind(1, cursor)
                try s.bind(2, Int64(limit))
                var out: [(Int64, String)] = []
                while try s.step() { out.append((s.int64(0), s.string(1))) }
                return out
            }
            var out: [GrantChange] = []
            for (position, body) in rows {
                out.append(GrantChange(position: position, grant: try EngineGrant(document: body)))
            }
            return out
        }

        func grantFeedEnd() async throws(EngineError) -> Int64 { try feedEnd() }

        private func feedEnd() throws(EngineError) -> Int64 {
            try run { () throws(StoreError) -> Int64 in
                let s = try db.prepare("SELECT coalesce(max(change_seq), 0) FROM grants")
                _ = try s.step()
                return s.int64(0)
            }
        }

        func liveGrants(now: Int64) async throws(EngineError) -> (grants: [EngineGrant], cursor: Int64) {
            let cursor = try await grantFeedEnd()
            var grants: [EngineGrant] = []
            for b in try bodies(
                "SELECT body FROM grants WHERE ended_at IS NULL AND expires_at > ?1 ORDER BY id",
                [.int(now)]
            ) { grants.append(try EngineGrant(document: b)) }
            return (grants, cursor)
        }

        func host(_ name: String, forUpdate: Bool) async throws(EngineError) -> EngineHost? {
            try bodies("SELECT body FROM hosts WHERE name = ?1", [.text(name)]).first.map {
                (b) throws(EngineError) in try EngineHost(document: b)
            }
        }

        func upsertHost(_ h: EngineHost) async throws(EngineError) {
            changes.list.withLock { $0.append("host:\(h.name)") }
            try exec(
                """
                INSERT INTO hosts (name, enabled, body) VALUES (?1, ?2, ?3)
                ON CONFLICT (name) DO UPDATE SET enabled = excluded.enabled, body = excluded.body
                """,
                [.text(h.name), .int(h.enabled ? 1 : 0), .text(h.document)]
            )
        }

        func insertEnrollment(_ e: Enrollment) async throws(EngineError) {
            try exec(
                """
                INSERT INTO enrollments (token_hash, host, created_at, expires_at, created_by)
                VALUES (?1, ?2, ?3, ?4, ?5)
                """,
                [.text(e.tokenHash), .text(e.host), .int(e.createdAt), .int(e.expiresAt), .text(e.createdBy)]
            )
        }

        func voidEnrollments(host: String, at now: Int64) async throws(EngineError) {
            try exec(
                "UPDATE enrollments SET used_at = ?2 WHERE host = ?1 AND used_at IS NULL",
                [.text(host), .int(now)]
            )
        }

        func consumeEnrollment(tokenHash: String, now: Int64) async throws(EngineError) -> Enrollment? {
            try run { () throws(StoreError) -> Enrollment? in
                let s = try db.prepare(
                    """
                    UPDATE enrollments SET used_at = ?2
                    WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2
                    RETURNING host, created_at, expires_at, created_by
                    """
                )
                try s.bind(1, tokenHash)
                try s.bind(2, now)
                guard try s.step() else { return nil }
                var e = Enrollment(
                    tokenHash: tokenHash,
                    host: s.string(0),
                    createdAt: s.int64(1),
                    expiresAt: s.int64(2),
                    createdBy: s.string(3)
                )
                e.usedAt = now
                return e
            }
        }

        func hostAuditHead(_ host: String, forUpdate: Bool) async throws(EngineError) -> HostAuditHead? {
            try run { () throws(StoreError) -> HostAuditHead? in
                let s = try db.prepare("SELECT seq, hash FROM host_audit_head WHERE host = ?1")
                try s.bind(1, host)
                return try s.step() ? HostAuditHead(seq: s.int64(0), hash: s.string(1)) : nil
            }
        }

        func hostAuditHash(_ host: String, seq: Int64) async throws(EngineError) -> String? {
            try bodies("SELECT hash FROM host_audit WHERE host = ?1 AND seq = ?2", [.text(host), .int(seq)]).first
        }

        func appendHostAudit(
            _ host: String,
            _ records: [(seq: Int64, hash: String, line: String)],
            head: HostAuditHead
        ) async throws(EngineError) {
            try run { () throws(StoreError) in
                let insert = try db.prepare("INSERT INTO host_audit (host, seq, hash, line) VALUES (?1, ?2, ?3, ?4)")
                for r in records {
                    insert.reset()
                    try insert.bind(1, host)
                    try insert.bind(2, r.seq)
                    try insert.bind(3, r.hash)
                    try insert.bind(4, r.line)
                    _ = try insert.step()
                }
                let h = try db.prepare(
                    """
                    INSERT INTO host_audit_head (host, seq, hash) VALUES (?1, ?2, ?3)
                    ON CONFLICT (host) DO UPDATE SET seq = excluded.seq, hash = excluded.hash
                    """
                )
                try h.bind(1, host)
                try h.bind(2, head.seq)
                try h.bind(3, head.hash)
                _ = try h.step()
            }
        }

        func auditLines(after: Int64, limit: Int) async throws(EngineError) -> [String] {
            try bodies(
                "SELECT line FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                [.int(after), .int(Int64(limit))]
            )
        }

        func hostAuditLines(_ host: String, after: Int64, limit: Int) async throws(EngineError) -> [String] {
            try bodies(
                "SELECT line FROM host_audit WHERE host = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
                [.text(host), .int(after), .int(Int64(limit))]
            )
        }

        func auditedHosts() async throws(EngineError) -> [String] {
            try bodies("SELECT host FROM host_audit_head WHERE seq > 0 ORDER BY host", [])
        }
    }
}

/// What one transaction changed ("grant:ID"…), kept for its followers until it commits.
final class CommittedChanges: Sendable {
    let list = Mutex<[String]>([])
}
