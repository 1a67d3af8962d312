/// The grant store's schema, versioned with `PRAGMA user_version`. The writer (writd, or the CLI
/// when writd is down) migrates; readers refuse a version newer than `current`.
package enum StoreSchema {
    /// The schema version this build writes and understands.
    package static let current: Int32 = 1

    /// Migration `i` brings the schema from version `i` to `i + 1`.
    static let migrations: [String] = [
        """
        CREATE TABLE grants (
            id             TEXT PRIMARY KEY NOT NULL,
            user           TEXT NOT NULL,
            uid            INTEGER NOT NULL,
            capability     TEXT NOT NULL CHECK (capability IN ('login', 'sudo')),
            host           TEXT NOT NULL DEFAULT '*',
            runas          TEXT NOT NULL DEFAULT 'root',
            commands       TEXT,
            not_before     INTEGER NOT NULL,
            expires_at     INTEGER NOT NULL,
            revoked_at     INTEGER,
            revoked_by     TEXT,
            reason         TEXT NOT NULL DEFAULT '',
            approved_by    TEXT NOT NULL,
            request_id     TEXT,
            policy_version TEXT,
            created_at     INTEGER NOT NULL,
            CHECK (expires_at > not_before)
        ) STRICT;
        -- The hot query: a user's unrevoked grants of one capability that have not expired.
        -- Ended grants stay in the table as history; the partial index and the expires_at range
        -- keep them out of the way.
        -- No other index: every reader parses the whole schema on each open, so each object in
        -- this file costs every sudo and login. Writer-side state lives elsewhere.
        CREATE INDEX grants_live ON grants (user, capability, expires_at) WHERE revoked_at IS NULL;
        """
    ]

    /// Brings `db` to the current schema inside one immediate transaction.
    static func migrate(_ db: SQLiteDatabase) throws(StoreError) {
        try db.execute("BEGIN IMMEDIATE")
        do throws(StoreError) {
            let version = try db.userVersion()
            if version > current {
                throw StoreError.newerSchema(path: db.path, found: version, supported: current)
            }
            if version < 0 { throw StoreError.corrupt(path: db.path, detail: "negative user_version") }
            for step in Int(version)..<Int(current) {
                try db.execute(migrations[step])
            }
            if version != current { try db.execute("PRAGMA user_version = \(current)") }
            try db.execute("COMMIT")
        } catch {
            try? db.execute("ROLLBACK")
            throw error
        }
    }
}
