import Logging
import PostgresNIO
import Synchronization
import WritAudit
import WritEngine

/// The engine's store in PostgreSQL (postgres-nio), for writ-server replicas: any number of
/// engine instances, in any number of processes, on one database. What one actor guaranteed on
/// one host comes from the database here:
/// - decisions lock the request row (`SELECT … FOR UPDATE`), and `grants.request_id` is UNIQUE:
///   one grant per request whatever races;
/// - due work is claimed with `FOR UPDATE SKIP LOCKED` in short transactions: done once, and a
///   killed instance's rows are released with its connection;
/// - the grants a transaction wrote take the grant feed's next positions from its head row just
///   before commit, and the row stays locked until then: positions follow commit order, so a
///   reader of the feed never skips a write that committed late (a `bigserial` could commit 9
///   before 8);
/// - the audit chain's head row is locked per append: one writer per chain;
/// - every change sends `NOTIFY writ_engine` with "request:ID" or "grant:ID" (delivered at
///   commit), so other instances wake without polling (`followChanges`).
public final class PostgresApprovalStore: ApprovalStore {
    public let kind = "postgresql"
    public static let channel = "writ_engine"
    let client: PostgresClient
    let logger: Logger
    private let running: Task<Void, Never>

    public static let migrations: [Migration] = [
        Migration(
            version: 1,
            summary: "requests, grants and the audit chain",
            statements: [
                """
                CREATE TABLE requests (
                    id         text PRIMARY KEY,
                    state      text NOT NULL,
                    requester  text NOT NULL,
                    created_at bigint NOT NULL,
                    next_at    bigint,
                    body       text NOT NULL
                )
                """,
                "CREATE INDEX requests_due ON requests (next_at) WHERE state = 'pending'",
                "CREATE INDEX requests_requester ON requests (requester, created_at)",
                """
                CREATE TABLE grants (
                    id         text PRIMARY KEY,
                    request_id text UNIQUE,
                    user_name  text NOT NULL,
                    expires_at bigint NOT NULL,
                    ended_at   bigint,
                    body       text NOT NULL
                )
                """,
                "CREATE INDEX grants_due ON grants (expires_at) WHERE ended_at IS NULL",
                """
                CREATE TABLE audit (
                    seq  bigint PRIMARY KEY,
                    hash text NOT NULL UNIQUE,
                    line text NOT NULL
                )
                """,
                """
                CREATE TABLE audit_head (
                    id   integer PRIMARY KEY CHECK (id = 1),
                    seq  bigint NOT NULL,
                    hash text NOT NULL
                )
                """,
                "INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '\(AuditLine.genesis)')",
            ]
        ),
        Migration(
            version: 2,
            summary: "the grant feed: each grant's position, handed out under a lock held to commit",
            statements: [
                """
                CREATE TABLE grant_feed_head (
                    id  integer PRIMARY KEY CHECK (id = 1),
                    seq bigint NOT NULL
                )
                """,
                "ALTER TABLE grants ADD COLUMN change_seq bigint",
                """
                UPDATE grants SET change_seq = numbered.n
                FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM grants) AS numbered
                WHERE grants.id = numbered.id
                """,
                "INSERT INTO grant_feed_head (id, seq) SELECT 1, count(*) FROM grants",
                // NULL only inside the transaction that writes the grant, until its commit.
                "CREATE UNIQUE INDEX grants_feed ON grants (change_seq)",
            ]
        ),
        Migration(
            version: 3,
            summary: "the fleet's hosts and their one-time enrollment tokens (hashed)",
            statements: [
                """
                CREATE TABLE hosts (
                    name    text PRIMARY KEY,
                    enabled boolean NOT NULL,
                    body    text NOT NULL
                )
                """,
                """
                CREATE TABLE enrollments (
                    token_hash text PRIMARY KEY,
                    host       text NOT NULL,
                    created_at bigint NOT NULL,
                    expires_at bigint NOT NULL,
                    created_by text NOT NULL,
                    used_at    bigint
                )
                """,
            ]
        ),
        Migration(
            version: 4,
            summary: "hosts' own audit chains, as their agents upload them, and each chain's head",
            statements: [
                """
                CREATE TABLE host_audit (
                    host text NOT NULL,
                    seq  bigint NOT NULL,
                    hash text NOT NULL,
                    line text NOT NULL,
                    PRIMARY KEY (host, seq)
                )
                """,
                """
                CREATE TABLE host_audit_head (
                    host text PRIMARY KEY,
                    seq  bigint NOT NULL,
                    hash text NOT NULL
                )
                """,
            ]
        ),
        Migration(
            version: 5,
            summary: "a grant must have its feed position by commit (a write that skips it fails)",
            statements: [
                // At commit, the row as it stands then (NEW is the version the statement wrote,
                // which is NULL for every write until the transaction places its grants).
                """
                CREATE FUNCTION writ_grant_placed() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF (SELECT change_seq FROM grants WHERE id = NEW.id) IS NULL THEN
                        RAISE EXCEPTION 'grant % was written without a grant feed position', NEW.id;
                    END IF;
                    RETURN NULL;
                END $$
                """,
                """
                CREATE CONSTRAINT TRIGGER grants_placed AFTER INSERT OR UPDATE ON grants
                DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION writ_grant_placed()
                """,
            ]
        ),
        Migration(
            version: 6,
            summary: "each request's host, for a host's own lists and limits",
            statements: [
                "ALTER TABLE requests ADD COLUMN host text",
                "UPDATE requests SET host = body::json->>'host'",
                "CREATE INDEX requests_requester_host ON requests (requester, host, created_at)",
                "CREATE INDEX requests_pending ON requests (created_at, id) WHERE state = 'pending'",
                "CREATE INDEX requests_pending_host ON requests (host) WHERE state = 'pending'",
            ]
        ),
    ]

    /// Connects (the pool runs until `shutdown`) and applies the migrations this database lacks.
    /// A database that does not answer within `openTimeout` (not running, a wrong socket, a role
    /// it refuses) is an error that says so, not a wait without end: the pool would try again
    /// for ever, silently.
    public init(
        configuration: PostgresClient.Configuration,
        logger: Logger,
        openTimeout: Duration = .seconds(15)
    ) async throws(EngineError) {
        var configuration = configuration
        configuration.options.additionalStartupParameters += Self.sessionSettings
        client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.logger = logger
        // Started at once, so the pool counts as running (a flag `run()` sets before its first
        // suspension) before the migrations lease a connection: postgres-nio warns about a lease
        // that comes first, and every start printed that warning.
        running = Task.immediate { [client] in await client.run() }
        let place =
            configuration.unixSocketPath
            ?? "\(configuration.host ?? "?"):\(configuration.port.map(String.init) ?? "5432")"
        let who = "\(configuration.username) on \(configuration.database ?? configuration.username)"
        do {
            try await Self.mapping {
                try await withThrowingTaskGroup(of: Bool.self) { group in
                    group.addTask {
                        try await self.migrate()
                        return true
                    }
                    group.addTask {
                        try await Task.sleep(for: openTimeout)
                        return false
                    }
                    let migrated = try await group.next() ?? false
                    group.cancelAll()
                    guard migrated else {
                        throw EngineError.store(
                            "PostgreSQL at \(place) did not let \(who) in within \(openTimeout): is it running, is that the right address, and may that role connect (pg_hba.conf)?"
                        )
                    }
                }
            }
        } catch {
            running.cancel()
            await running.value
            throw error
        }
    }

    /// A client for a Unix-socket server (`/run/postgresql`, or a test's private cluster).
    public static func configuration(
        socketDirectory: String,
        port: Int = 5432,
        user: String,
        database: String
    )
        -> PostgresClient.Configuration
    {
        PostgresClient.Configuration(
            unixSocketPath: "\(socketDirectory)/.s.PGSQL.\(port)",
            username: user,
            password: nil,
            database: database
        )
    }

    /// Stops the pool; the store cannot be used after.
    public func shutdown() async {
        running.cancel()
        await running.value
    }

    public func close() async { await shutdown() }

    /// Applies the missing migrations in one transaction, under an advisory lock so replicas
    /// starting together apply each once.
    private func migrate() async throws(EngineError) {
        Migration.check(Self.migrations)
        let list = Self.migrations
        let known = list.count
        try await run { [logger] in
            try await self.client.withTransaction(logger: logger) { conn in
                try await conn.query("SELECT pg_advisory_xact_lock(\(Self.migrationLock))", logger: logger)
                try await conn.query(
                    "CREATE TABLE IF NOT EXISTS writ_schema (version integer NOT NULL)",
                    logger: logger
                )
                var found = 0
                for try await v in try await conn.query("SELECT version FROM writ_schema", logger: logger).decode(
                    Int.self
                ) {
                    found = v
                }
                if found > known { throw Self.newerSchema(found: found, known: known) }
                for m in list where m.version > found {
                    for statement in m.statements {
                        try await conn.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                }
                try await conn.query("DELETE FROM writ_schema", logger: logger)
                try await conn.query("INSERT INTO writ_schema (version) VALUES (\(known))", logger: logger)
            }
        }
    }

    /// Every session's settings, sent at connection start:
    /// - READ COMMITTED whatever the server's default: the row locks and SKIP LOCKED claims are
    ///   built on it (a stricter level turns a wait for a row into a serialization failure);
    /// - a transaction that waits for a lock longer than 15 s gives up (`lock_timeout`), and a
    ///   session that sits in an open transaction for 60 s is ended by the server
    ///   (`idle_in_transaction_session_timeout`): an instance that hangs while it holds the audit
    ///   chain's head must not stop every other instance until TCP notices.
    static let sessionSettings: [(String, String)] = [
        ("default_transaction_isolation", "read committed"),
        ("lock_timeout", "15s"),
        ("idle_in_transaction_session_timeout", "60s"),
    ]

    /// `pg_advisory_xact_lock` key of the migrations ("writ" in ASCII).
    static let migrationLock: Int64 = 0x7772_6974

    static func newerSchema(found: Int, known: Int) -> EngineError {
        .schema(
            "the PostgreSQL database has engine schema \(found), newer than this build's \(known): upgrade Writ here before it uses that database"
        )
    }

    /// A deadlock or serialization failure (SQLSTATE 40P01, 40001) rolls the transaction back;
    /// it is run again, up to three times in all.
    public func transaction<T: Sendable>(
        _ body: @Sendable (any StoreTransaction) async throws(EngineError) -> T
    ) async throws(EngineError) -> T {
        var attempt = 1
        while true {
            do {
                return try await run { [logger] in
                    try await self.client.withTransaction(logger: logger) { conn in
                        let tx = Transaction(conn: conn, logger: logger)
                        let value = try await body(tx)
                        try await tx.placeWrittenGrants()
                        return value
                    }
                }
            } catch .retryable(let why) {
                guard attempt < 3 else { throw .store(why) }
                attempt += 1
            }
        }
    }

    /// Calls `onChange` with each change other instances (and this one) commit — "request:ID" or
    /// "grant:ID" — until the calling task is cancelled. NOTIFY is not stored: a change made
    /// while no connection listens is not delivered, so a follower also polls now and then.
    public func followChanges(_ onChange: @escaping @Sendable (String) async -> Void) async throws(EngineError) {
        try await run {
            try await self.client.withConnection { conn in
                for try await n in try await conn.listen(Self.channel) {
                    await onChange(n.payload)
                }
            }
        }
    }

    /// Maps what postgres-nio throws: the engine's own errors pass through (a transaction wraps
    /// them), a unique violation is a refusal, the rest a store failure.
    private func run<T>(_ work: () async throws -> T) async throws(EngineError) -> T {
        try await Self.mapping(work)
    }

    /// Runs `work`, its failure mapped by `map`.
    static func mapping<T>(_ work: () async throws -> T) async throws(EngineError) -> T {
        do { return try await work() } catch { throw map(error) }
    }

    static func map(_ error: any Error) -> EngineError {
        switch error {
        case let e as EngineError: return e
        case let e as PSQLError: return map(e)
        case let e as PostgresTransactionError:
            // The body's error first: it is why the transaction was rolled back.
            if let inner = e.closureError ?? e.beginError ?? e.commitError { return map(inner) }
            return .store(String(describing: e))
        default: return .store(String(describing: error))
        }
    }

    static func map(_ e: PSQLError) -> EngineError {
        guard let info = e.serverInfo else {
            // Client side: the connection, the protocol. Its cause is in `underlying`.
            return .store(
                "PostgreSQL (\(e.code)): \(e.underlying.map { String(describing: $0) } ?? "no further detail")"
            )
        }
        let state = info[.sqlState] ?? "?"
        if state == "23505" && info[.constraintName] == "grants_request_id_key" {
            return .refused("the request already has its grant")
        }
        var text = "PostgreSQL: \(info[.message] ?? "error") (SQLSTATE \(state))"
        if let detail = info[.detail] { text += "; \(detail)" }
        if let hint = info[.hint] { text += "; hint: \(hint)" }
        return state == "40P01" || state == "40001" ? .retryable(text) : .store(text)
    }

    /// One transaction on one leased connection.
    struct Transaction: StoreTransaction {
        let conn: PostgresConnection
        let logger: Logger
        /// The grants this transaction wrote, in order: they take their feed positions last.
        let written = WrittenGrants()

        private func run<T>(_ work: () async throws -> T) async throws(EngineError) -> T {
            try await PostgresApprovalStore.mapping(work)
        }

        private func strings(_ query: PostgresQuery) async throws(EngineError) -> [String] {
            try await run {
                var out: [String] = []
                for try await s in try await conn.query(query, logger: logger).decode(String.self) { out.append(s) }
                return out
            }
        }

        private func exec(_ query: PostgresQuery) async throws(EngineError) {
            try await run { try await conn.query(query, logger: logger) }
        }

        private func notify(_ what: String) async throws(EngineError) {
            try await exec("SELECT pg_notify(\(PostgresApprovalStore.channel), \(what))")
        }

        func request(_ id: String, forUpdate: Bool) async throws(EngineError) -> EngineRequest? {
            let rows =
                forUpdate
                ? try await strings("SELECT body FROM requests WHERE id = \(id) FOR UPDATE")
                : try await strings("SELECT body FROM requests WHERE id = \(id)")
            return try rows.first.map { (b) throws(EngineError) in try EngineRequest(document: b) }
        }

        func insertRequest(_ r: EngineRequest) async throws(EngineError) {
            try await exec(
                """
                INSERT INTO requests (id, state, requester, created_at, next_at, body, host)
                VALUES (\(r.core.id), \(r.core.state.rawValue), \(r.core.requester), \(r.core.createdAt), \(r.core.nextDeadline), \(r.document), \(r.host))
                """
            )
            try await notify("request:\(r.core.id)")
        }

        func updateRequest(_ r: EngineRequest) async throws(EngineError) {
            try await exec(
                """
                UPDATE requests SET state = \(r.core.state.rawValue), next_at = \(r.core.nextDeadline), body = \(r.document)
                WHERE id = \(r.core.id)
                """
            )
            try await notify("request:\(r.core.id)")
        }

        func claimDueRequests(now: Int64, limit: Int) async throws(EngineError) -> [EngineRequest] {
            var out: [EngineRequest] = []
            for b in try await strings(
                """
                SELECT body FROM requests WHERE state = 'pending' AND next_at <= \(now)
                ORDER BY next_at LIMIT \(limit) FOR UPDATE SKIP LOCKED
                """
            ) { out.append(try EngineRequest(document: b)) }
            return out
        }

        func requests(
            requester: String,
            host: String,
            since: Int64,
            limit: Int
        ) async throws(EngineError) -> [EngineRequest] {
            try await decoded(
                strings(
                    """
                    SELECT body FROM requests WHERE requester = \(requester) AND host = \(host)
                    AND (state = 'pending' OR created_at > \(since)) ORDER BY created_at DESC LIMIT \(limit)
                    """
                )
            )
        }

        func pendingRequests(
            after createdAt: Int64,
            id: String,
            limit: Int
        ) async throws(EngineError)
            -> [EngineRequest]
        {
            try await decoded(
                strings(
                    """
                    SELECT body FROM requests WHERE state = 'pending' AND (created_at, id) > (\(createdAt), \(id))
                    ORDER BY created_at, id LIMIT \(limit)
                    """
                )
            )
        }

        func pendingCount(requester: String?, host: String?) async throws(EngineError) -> Int {
            let n = try await strings(
                """
                SELECT count(*)::text FROM requests WHERE state = 'pending'
                AND (\(requester)::text IS NULL OR requester = \(requester))
                AND (\(host)::text IS NULL OR host = \(host))
                """
            )
            return Int(n.first ?? "0") ?? 0
        }

        private func decoded(_ bodies: [String]) throws(EngineError) -> [EngineRequest] {
            var out: [EngineRequest] = []
            for b in bodies { out.append(try EngineRequest(document: b)) }
            return out
        }

        func grant(_ id: String, forUpdate: Bool) async throws(EngineError) -> EngineGrant? {
            let rows =
                forUpdate
                ? try await strings("SELECT body FROM grants WHERE id = \(id) FOR UPDATE")
                : try await strings("SELECT body FROM grants WHERE id = \(id)")
            return try rows.first.map { (b) throws(EngineError) in try EngineGrant(document: b) }
        }

        func insertGrant(_ g: EngineGrant) async throws(EngineError) {
            try await exec(
                """
                INSERT INTO grants (id, request_id, user_name, expires_at, ended_at, body)
                VALUES (\(g.id), \(g.requestID), \(g.user), \(g.expiresAt), \(g.endedAt), \(g.document))
                """
            )
            written.ids.withLock { $0.append(g.id) }
            try await notify("grant:\(g.id)")
        }

        func updateGrant(_ g: EngineGrant) async throws(EngineError) {
            try await exec(
                """
                UPDATE grants SET expires_at = \(g.expiresAt), ended_at = \(g.endedAt), body = \(g.document),
                    change_seq = NULL
                WHERE id = \(g.id)
                """
            )
            written.ids.withLock { $0.append(g.id) }
            try await notify("grant:\(g.id)")
        }

        /// Gives the grants this transaction wrote the feed's next positions, in the order written
        /// (a grant written twice, at its last). Runs after everything else, just before commit:
        /// the head row stays locked from here to the commit, after the audit chain's head (lock
        /// order: request, grant, audit head, feed head), so positions follow commit order and
        /// the lock is held for no longer than the chain's.
        func placeWrittenGrants() async throws(EngineError) {
            var ids: [String] = []
            for id in written.ids.withLock({ $0 }).reversed() where !ids.contains(id) { ids.append(id) }
            ids.reverse()
            guard !ids.isEmpty else { return }
            // One round trip: the head moved by n, and the grants numbered in the order written.
            let count = ids.count
            let placed = try await strings(
                """
                WITH head AS (UPDATE grant_feed_head SET seq = seq + \(count) WHERE id = 1 RETURNING seq),
                     written AS (SELECT id, ord FROM unnest(\(ids)::text[]) WITH ORDINALITY AS w(id, ord))
                UPDATE grants SET change_seq = head.seq - \(count) + written.ord
                FROM head, written WHERE grants.id = written.id
                RETURNING grants.id
                """
            )
            guard placed.count == count else {
                throw .corrupt(
                    "the grant feed's head row is missing (table grant_feed_head), or a written grant is gone"
                )
            }
        }

        func grantChanges(after cursor: Int64, limit: Int) async throws(EngineError) -> [GrantChange] {
            try await run {
                var out: [GrantChange] = []
                for try await (position, body) in try await conn.query(
                    "SELECT change_seq, body FROM grants WHERE change_seq > \(cursor) ORDER BY change_seq LIMIT \(limit)",
                    logger: logger
                ).decode((Int64, String).self) {
                    out.append(GrantChange(position: position, grant: try EngineGrant(document: body)))
                }
                return out
            }
        }

        func grantFeedEnd() async throws(EngineError) -> Int64 {
            try await run {
                var seq: Int64 = 0
                for try await s in try await conn.query("SELECT seq FROM grant_feed_head WHERE id = 1", logger: logger)
                    .decode(Int64.self)
                { seq = s }
                return seq
            }
        }

        func liveGrants(now: Int64) async throws(EngineError) -> (grants: [EngineGrant], cursor: Int64) {
            // The head first: every position at or below it has committed (a write in progress
            // holds the head row, and this read sees the last committed value).
            let cursor = try await grantFeedEnd()
            var grants: [EngineGrant] = []
            for b in try await strings(
                "SELECT body FROM grants WHERE ended_at IS NULL AND expires_at > \(now) ORDER BY id"
            ) { grants.append(try EngineGrant(document: b)) }
            return (grants, cursor)
        }

        func claimDueGrants(now: Int64, limit: Int) async throws(EngineError) -> [EngineGrant] {
            var out: [EngineGrant] = []
            for b in try await strings(
                """
                SELECT body FROM grants WHERE ended_at IS NULL AND expires_at <= \(now)
                ORDER BY expires_at LIMIT \(limit) FOR UPDATE SKIP LOCKED
                """
            ) { out.append(try EngineGrant(document: b)) }
            return out
        }

        func appendAudit(_ events: [AuditEvent]) async throws(EngineError) {
            guard !events.isEmpty else { return }
            try await run {
                var head: (Int64, String)?
                for try await h in try await conn.query(
                    "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE",
                    logger: logger
                ).decode((Int64, String).self) { head = h }
                guard var (seq, prev) = head else {
                    throw EngineError.corrupt("the audit chain's head row is missing (table audit_head)")
                }
                for event in events {
                    var e = event
                    e.fields.insert(.init("id", AuditEvent.newID()), at: 0)
                    seq += 1
                    let line = AuditLine.render(seq: seq, prev: prev, e)
                    prev = AuditChain.hash(line)
                    try await conn.query(
                        "INSERT INTO audit (seq, hash, line) VALUES (\(seq), \(prev), \(line))",
                        logger: logger
                    )
                }
                try await conn.query("UPDATE audit_head SET seq = \(seq), hash = \(prev) WHERE id = 1", logger: logger)
            }
        }

        func host(_ name: String, forUpdate: Bool) async throws(EngineError) -> EngineHost? {
            let rows =
                forUpdate
                ? try await strings("SELECT body FROM hosts WHERE name = \(name) FOR UPDATE")
                : try await strings("SELECT body FROM hosts WHERE name = \(name)")
            return try rows.first.map { (b) throws(EngineError) in try EngineHost(document: b) }
        }

        func upsertHost(_ h: EngineHost) async throws(EngineError) {
            try await exec(
                """
                INSERT INTO hosts (name, enabled, body) VALUES (\(h.name), \(h.enabled), \(h.document))
                ON CONFLICT (name) DO UPDATE SET enabled = excluded.enabled, body = excluded.body
                """
            )
            try await notify("host:\(h.name)")
        }

        func insertEnrollment(_ e: Enrollment) async throws(EngineError) {
            try await exec(
                """
                INSERT INTO enrollments (token_hash, host, created_at, expires_at, created_by)
                VALUES (\(e.tokenHash), \(e.host), \(e.createdAt), \(e.expiresAt), \(e.createdBy))
                """
            )
        }

        func voidEnrollments(host: String, at now: Int64) async throws(EngineError) {
            try await exec("UPDATE enrollments SET used_at = \(now) WHERE host = \(host) AND used_at IS NULL")
        }

        func consumeEnrollment(tokenHash: String, now: Int64) async throws(EngineError) -> Enrollment? {
            try await run {
                var found: Enrollment?
                for try await (host, created, expires, by) in try await conn.query(
                    """
                    UPDATE enrollments SET used_at = \(now)
                    WHERE token_hash = \(tokenHash) AND used_at IS NULL AND expires_at > \(now)
                    RETURNING host, created_at, expires_at, created_by
                    """,
                    logger: logger
                ).decode((String, Int64, Int64, String).self) {
                    var e = Enrollment(
                        tokenHash: tokenHash,
                        host: host,
                        createdAt: created,
                        expiresAt: expires,
                        createdBy: by
                    )
                    e.usedAt = now
                    found = e
                }
                return found
            }
        }

        /// With `forUpdate`, the head row is made first when the host has none (seq -1: no record
        /// yet), so that two first uploads for one host wait for each other on it: `FOR UPDATE`
        /// on a row that does not exist locks nothing.
        func hostAuditHead(_ host: String, forUpdate: Bool) async throws(EngineError) -> HostAuditHead? {
            if forUpdate {
                try await exec(
                    "INSERT INTO host_audit_head (host, seq, hash) VALUES (\(host), -1, '') ON CONFLICT (host) DO NOTHING"
                )
            }
            let query: PostgresQuery =
                forUpdate
                ? "SELECT seq, hash FROM host_audit_head WHERE host = \(host) FOR UPDATE"
                : "SELECT seq, hash FROM host_audit_head WHERE host = \(host)"
            return try await run {
                var head: HostAuditHead?
                for try await (seq, hash) in try await conn.query(query, logger: logger).decode((Int64, String).self)
                where seq >= 0 {
                    head = HostAuditHead(seq: seq, hash: hash)
                }
                return head
            }
        }

        func hostAuditHash(_ host: String, seq: Int64) async throws(EngineError) -> String? {
            try await strings("SELECT hash FROM host_audit WHERE host = \(host) AND seq = \(seq)").first
        }

        func appendHostAudit(
            _ host: String,
            _ records: [(seq: Int64, hash: String, line: String)],
            head: HostAuditHead
        ) async throws(EngineError) {
            // One statement for the batch: the records as three arrays, unnested in order.
            try await exec(
                """
                INSERT INTO host_audit (host, seq, hash, line)
                SELECT \(host), r.seq, r.hash, r.line
                FROM unnest(\(records.map(\.seq))::bigint[], \(records.map(\.hash))::text[], \(records.map(\.line))::text[])
                    AS r(seq, hash, line)
                """
            )
            try await exec(
                """
                INSERT INTO host_audit_head (host, seq, hash) VALUES (\(host), \(head.seq), \(head.hash))
                ON CONFLICT (host) DO UPDATE SET seq = excluded.seq, hash = excluded.hash
                """
            )
        }

        func auditLines(after: Int64, limit: Int) async throws(EngineError) -> [String] {
            try await strings("SELECT line FROM audit WHERE seq > \(after) ORDER BY seq LIMIT \(limit)")
        }

        func hostAuditLines(_ host: String, after: Int64, limit: Int) async throws(EngineError) -> [String] {
            try await strings(
                "SELECT line FROM host_audit WHERE host = \(host) AND seq > \(after) ORDER BY seq LIMIT \(limit)"
            )
        }

        func auditedHosts() async throws(EngineError) -> [String] {
            try await strings("SELECT host FROM host_audit_head WHERE seq > 0 ORDER BY host")
        }
    }
}

extension PostgresApprovalStore {
    /// A store named on a tool's command line (the race helper, the benchmark):
    /// `--pg SOCKET_DIR DATABASE USER` or `--sqlite PATH`; the store and the arguments after it.
    public static func open(
        arguments args: ArraySlice<String>,
        label: String
    ) async throws(EngineError) -> (store: any ApprovalStore, rest: ArraySlice<String>) {
        let a = Array(args)
        switch a.first {
        case "--pg" where a.count >= 4:
            let store = try await PostgresApprovalStore(
                configuration: configuration(socketDirectory: a[1], user: a[3], database: a[2]),
                logger: Logger(label: label)
            )
            return (store, args.dropFirst(4))
        case "--sqlite" where a.count >= 2:
            return (try SQLiteApprovalStore(path: a[1]), args.dropFirst(2))
        default:
            throw .refused("name a store: --pg SOCKET_DIR DATABASE USER | --sqlite PATH")
        }
    }
}

/// The grants one transaction wrote (its calls are awaited one at a time; the lock only makes
/// the box Sendable).
final class WrittenGrants: Sendable {
    let ids = Mutex<[String]>([])
}
