import Glibc
import WritCore
import WritEngine
import WritStore

/// writd's own database (requests, the grants it watches, sessions, the audit outbox), attached
/// as `d` to the grant store's connection. Both files use a rollback journal, so a transaction
/// that touches both commits atomically (SQLite's super-journal): a SIGKILL can never leave an
/// approved request without its grant, or a grant without its audit record in the outbox.
final class StateStore {
    let grants: GrantStore
    var db: SQLiteDatabase { grants.database }

    /// 2: requests gained approval steps, request fields, context, provenance (`addedColumns`).
    /// 3: Slack's outbox, request cards and pinned identities (`SlackOutbox`).
    /// 5: grants that came from writ-server, with the server's own times (`fleet_grants`).
    static let schemaVersion: Int64 = 5

    /// Columns added to `d.requests` after version 1, added to older files at start.
    static let addedColumns: [(name: String, type: String)] = [
        ("steps", "TEXT"), ("fields", "TEXT"), ("context", "TEXT"), ("groups", "TEXT"),
        ("next_at", "INTEGER"), ("decided_via", "TEXT"), ("policy_commit", "TEXT"), ("asked_flow", "TEXT"),
    ]

    static let schema = """
        CREATE TABLE IF NOT EXISTS d.meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) STRICT;
        CREATE TABLE IF NOT EXISTS d.requests (
            id                 TEXT PRIMARY KEY NOT NULL,
            kind               TEXT NOT NULL CHECK (kind IN ('grant', 'extend')),
            extends_grant      TEXT,
            requester          TEXT NOT NULL,
            requester_uid      INTEGER NOT NULL,
            capability         TEXT NOT NULL,
            flow               TEXT NOT NULL,
            host               TEXT NOT NULL,
            runas              TEXT NOT NULL,
            commands           TEXT,
            duration           INTEGER NOT NULL,
            reason             TEXT NOT NULL,
            state              TEXT NOT NULL,
            created_at         INTEGER NOT NULL,
            pending_until      INTEGER NOT NULL,
            required_approvals INTEGER NOT NULL,
            approvers          TEXT NOT NULL,
            self_approval      INTEGER NOT NULL,
            approvals          TEXT NOT NULL,
            decided_at         INTEGER,
            decided_by         TEXT,
            decision_note      TEXT,
            grant_id           TEXT,
            auto_rule          TEXT,
            warn_before        INTEGER NOT NULL,
            policy_version     TEXT NOT NULL
        ) STRICT;
        CREATE INDEX IF NOT EXISTS d.requests_pending ON requests (pending_until) WHERE state = 'pending';
        CREATE INDEX IF NOT EXISTS d.requests_requester ON requests (requester, created_at);
        CREATE TABLE IF NOT EXISTS d.watch (
            grant_id    TEXT PRIMARY KEY NOT NULL,
            user        TEXT NOT NULL,
            capability  TEXT NOT NULL,
            expires_at  INTEGER NOT NULL,
            warn_at     INTEGER NOT NULL,
            warned      INTEGER NOT NULL DEFAULT 0,
            ended_at    INTEGER,
            end_reason  TEXT
        ) STRICT;
        CREATE INDEX IF NOT EXISTS d.watch_open ON watch (expires_at) WHERE ended_at IS NULL;
        CREATE INDEX IF NOT EXISTS d.watch_warn ON watch (warn_at) WHERE ended_at IS NULL AND warned = 0;
        CREATE TABLE IF NOT EXISTS d.fleet_grants (
            grant_id          TEXT PRIMARY KEY NOT NULL,
            server_not_before INTEGER NOT NULL,
            server_expires_at INTEGER NOT NULL,
            ended             INTEGER NOT NULL DEFAULT 0
        ) STRICT;
        CREATE TABLE IF NOT EXISTS d.sessions (
            id          INTEGER PRIMARY KEY,
            grant_id    TEXT NOT NULL,
            user        TEXT NOT NULL,
            kind        TEXT NOT NULL,
            service     TEXT NOT NULL,
            pid         INTEGER NOT NULL,
            start_time  INTEGER NOT NULL,
            tty         TEXT,
            opened_at   INTEGER NOT NULL,
            closed_at   INTEGER,
            close_reason TEXT,
            boot_id     TEXT NOT NULL DEFAULT '',
            audit_session INTEGER,
            runas_uid   INTEGER,
            UNIQUE (pid, start_time, boot_id)
        ) STRICT;
        CREATE INDEX IF NOT EXISTS d.sessions_open ON sessions (grant_id) WHERE closed_at IS NULL;
        CREATE TABLE IF NOT EXISTS d.outbox (
            seq    INTEGER PRIMARY KEY AUTOINCREMENT,
            id     TEXT NOT NULL UNIQUE,
            time   INTEGER NOT NULL,
            event  TEXT NOT NULL,
            actor  TEXT NOT NULL,
            fields TEXT NOT NULL
        ) STRICT;
        CREATE TABLE IF NOT EXISTS d.slack_outbox (
            seq        INTEGER PRIMARY KEY AUTOINCREMENT,
            kind       TEXT NOT NULL CHECK (kind IN ('card', 'dm')),
            event      TEXT NOT NULL,
            request_id TEXT,
            grant_id   TEXT,
            actor      TEXT NOT NULL,
            detail     TEXT NOT NULL DEFAULT '',
            created_at INTEGER NOT NULL,
            attempts   INTEGER NOT NULL DEFAULT 0,
            next_at    INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            thread     TEXT NOT NULL DEFAULT '',
            head       INTEGER NOT NULL DEFAULT 0
        ) STRICT;
        CREATE TABLE IF NOT EXISTS d.slack_cards (
            request_id TEXT PRIMARY KEY NOT NULL,
            channel    TEXT NOT NULL,
            ts         TEXT NOT NULL
        ) STRICT;
        CREATE TABLE IF NOT EXISTS d.slack_users (
            unix_user  TEXT PRIMARY KEY NOT NULL,
            slack_id   TEXT NOT NULL UNIQUE,
            email      TEXT,
            pinned_at  INTEGER NOT NULL
        ) STRICT;
        """

    init(storePath: String, statePath: String) throws(StoreError) {
        grants = try GrantStore.create(path: storePath)
        try Self.prepareFile(statePath)
        let quoted = statePath.replacingAll("'", with: "''")
        try grants.database.execute("ATTACH DATABASE '\(quoted)' AS d")
        try grants.database.execute("PRAGMA d.journal_mode = DELETE; PRAGMA d.synchronous = FULL")
        // writd's idle memory target is 30 MiB: SQLite's page cache (2 MiB per database by
        // default) is the part that grows with the store. Hot pages are the index tops.
        try grants.database.execute("PRAGMA main.cache_size = -1024; PRAGMA d.cache_size = -1024")
        // A newer writd's file is left alone (a fresh file has no meta table yet).
        if let found = Self.recordedSchema(db), found > Self.schemaVersion {
            throw StoreError.newerSchema(path: statePath, found: Int32(found), supported: Int32(Self.schemaVersion))
        }
        try transaction { () throws(StoreError) in
            try db.execute(Self.schema)
            // Version 1 files: add the new columns (all nullable; `EngineRequest.row` fills in
            // what they would have held), then the index that needs one of them.
            let info = try db.prepare("PRAGMA d.table_info(requests)")
            var have: Set<String> = []
            while try info.step() { have.insert(info.string(1)) }
            for column in Self.addedColumns where !have.contains(column.name) {
                try db.execute("ALTER TABLE d.requests ADD COLUMN \(column.name) \(column.type)")
            }
            let outbox = try db.prepare("PRAGMA d.table_info(slack_outbox)")
            var outboxColumns: Set<String> = []
            while try outbox.step() { outboxColumns.insert(outbox.string(1)) }
            if !outboxColumns.contains("kind") {  // a development build's table (c9837a6)
                try db.execute("ALTER TABLE d.slack_outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'card'")
            }
            // Version 3 files: the audit session of a tracked session (AuditSession).
            let sessionsInfo = try db.prepare("PRAGMA d.table_info(sessions)")
            var sessionColumns: Set<String> = []
            while try sessionsInfo.step() { sessionColumns.insert(sessionsInfo.string(1)) }
            if !sessionColumns.contains("audit_session") {
                try db.execute("ALTER TABLE d.sessions ADD COLUMN audit_session INTEGER")
            }
            if !sessionColumns.contains("runas_uid") {
                try db.execute("ALTER TABLE d.sessions ADD COLUMN runas_uid INTEGER")
            }
            try db.execute(
                "CREATE INDEX IF NOT EXISTS d.sessions_audit ON sessions (grant_id) WHERE audit_session IS NOT NULL"
            )
            // Version 3 files: each row's thread (its request, else its grant) and whether it is
            // the thread's oldest row (the only one that may be sent), so scheduling reads the
            // heads through an index instead of comparing every row with every earlier one.
            if !outboxColumns.contains("thread") {
                try db.execute(
                    """
                    ALTER TABLE d.slack_outbox ADD COLUMN thread TEXT NOT NULL DEFAULT '';
                    ALTER TABLE d.slack_outbox ADD COLUMN head INTEGER NOT NULL DEFAULT 0;
                    UPDATE d.slack_outbox SET thread = coalesce(request_id, grant_id, '');
                    """
                )
            }
            try db.execute(
                """
                CREATE INDEX IF NOT EXISTS d.slack_outbox_thread ON slack_outbox (thread, seq);
                CREATE INDEX IF NOT EXISTS d.slack_outbox_heads ON slack_outbox (next_at, seq) WHERE head = 1;
                """
            )
            if !outboxColumns.isEmpty && !outboxColumns.contains("thread") {
                try db.execute(
                    """
                    UPDATE d.slack_outbox SET head = 1
                    WHERE seq IN (SELECT min(seq) FROM d.slack_outbox GROUP BY thread)
                    """
                )
            }
            try db.execute("UPDATE d.requests SET next_at = pending_until WHERE next_at IS NULL AND state = 'pending'")
            try db.execute("CREATE INDEX IF NOT EXISTS d.requests_next ON requests (next_at) WHERE state = 'pending'")
            try db.execute("INSERT OR REPLACE INTO d.meta (key, value) VALUES ('schema', '\(Self.schemaVersion)')")
        }
    }

    static func recordedSchema(_ db: SQLiteDatabase) -> Int64? {
        guard let s = try? db.prepare("SELECT value FROM d.meta WHERE key = 'schema'"), (try? s.step()) == true else {
            return nil
        }
        return Int64(s.string(0))
    }

    /// Creates the state file 0600 root if needed and checks it like the grant store.
    static func prepareFile(_ path: String) throws(StoreError) {
        try StoreFile.createRootFile(path, what: "state path")
    }

    func meta(_ key: String) throws(StoreError) -> String? {
        let s = try db.prepare("SELECT value FROM d.meta WHERE key = ?1")
        try s.bind(1, key)
        return try s.step() ? s.string(0) : nil
    }

    func setMeta(_ key: String, _ value: String) throws(StoreError) {
        let s = try db.prepare("INSERT OR REPLACE INTO d.meta (key, value) VALUES (?1, ?2)")
        try s.bind(1, key)
        try s.bind(2, value)
        _ = try s.step()
    }

    /// Runs `body` in one IMMEDIATE transaction over both files; rolls back on error.
    func transaction<T>(_ body: () throws(StoreError) -> T) throws(StoreError) -> T {
        try db.execute("BEGIN IMMEDIATE")
        do throws(StoreError) {
            let value = try body()
            try db.execute("COMMIT")
            return value
        } catch {
            try? db.execute("ROLLBACK")
            throw error
        }
    }
}

extension String {
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        for c in self {
            if c == target { out += replacement } else { out.append(c) }
        }
        return out
    }
}
