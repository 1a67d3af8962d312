import CSQLite
import WritCore

#if canImport(Glibc)
import Glibc
#else
import CLibc  // Embedded Swift build of the module: no Glibc overlay
#endif

/// One SQLite connection; closes it in `deinit`. Not shared between threads: the modules are
/// single-threaded, and the CLI and daemon give each task its own connection.
package final class SQLiteDatabase {
    let handle: OpaquePointer
    package let path: String

    /// Opens with `sqlite3_open_v2`. `SQLITE_OPEN_NOFOLLOW` refuses a symlinked file;
    /// extended result codes are on.
    package init(path: String, readOnly: Bool, create: Bool = false, busyTimeoutMs: Int32) throws(StoreError) {
        var flags = SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_EXRESCODE | SQLITE_OPEN_NOMUTEX
        flags |= readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE
        if create && !readOnly { flags |= SQLITE_OPEN_CREATE }
        var db: OpaquePointer? = nil
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(db)
            throw Self.error(rc, message, path: path)
        }
        self.handle = db
        self.path = path
        sqlite3_busy_timeout(db, busyTimeoutMs)
        sqlite3_extended_result_codes(db, 1)
        // The store file is trusted only after its ownership checks, but nothing in it should
        // ever run code: no extensions, no triggers or views from a schema we did not write.
        writ_sqlite3_harden(db)
    }

    deinit {
        sqlite3_close_v2(handle)
    }

    /// Runs one or more statements without results (`sqlite3_exec`).
    package func execute(_ sql: String) throws(StoreError) {
        var err: UnsafeMutablePointer<CChar>? = nil
        let rc = sqlite3_exec(handle, sql, nil, nil, &err)
        if rc != SQLITE_OK {
            let message = err.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(handle))
            sqlite3_free(err)
            throw Self.error(rc, message, path: path)
        }
    }

    /// Compiles a statement (`sqlite3_prepare_v3`).
    package func prepare(_ sql: String) throws(StoreError) -> SQLiteStatement {
        var stmt: OpaquePointer? = nil
        let rc = sqlite3_prepare_v3(handle, sql, -1, 0, &stmt, nil)
        guard rc == SQLITE_OK, let stmt else {
            throw Self.error(rc, String(cString: sqlite3_errmsg(handle)), path: path)
        }
        return SQLiteStatement(stmt, database: self)
    }

    /// `PRAGMA user_version`, the schema version.
    package func userVersion() throws(StoreError) -> Int32 {
        let stmt = try prepare("PRAGMA user_version")
        guard try stmt.step() else { return 0 }
        return Int32(truncatingIfNeeded: stmt.int64(0))
    }

    package var changes: Int32 { sqlite3_changes(handle) }

    /// Maps an SQLite result code to a store error.
    static func error(_ rc: Int32, _ message: String, path: String) -> StoreError {
        // SQLITE_READONLY_ROLLBACK (a macro expression Swift does not import).
        if rc == SQLITE_READONLY | (3 << 8) { return .interruptedWrite(path: path) }
        return switch rc & 0xFF {
        case SQLITE_BUSY, SQLITE_LOCKED: .busy(path: path)
        case SQLITE_CORRUPT, SQLITE_NOTADB: .corrupt(path: path, detail: message)
        case SQLITE_CANTOPEN: .unreadable(path: path, errno: 0)
        default: .sqlite(path: path, code: rc, message: message)
        }
    }
}

/// A prepared statement; finalized in `deinit`.
package final class SQLiteStatement {
    let handle: OpaquePointer
    package let database: SQLiteDatabase

    init(_ handle: OpaquePointer, database: SQLiteDatabase) {
        self.handle = handle
        self.database = database
    }

    deinit {
        sqlite3_finalize(handle)
    }

    package func bind(_ index: Int32, _ value: String?) throws(StoreError) {
        let rc: Int32
        if let value {
            rc = writ_sqlite3_bind_text(handle, index, value)
        } else {
            rc = sqlite3_bind_null(handle, index)
        }
        try check(rc)
    }

    package func bind(_ index: Int32, _ value: Int64?) throws(StoreError) {
        let rc = value.map { sqlite3_bind_int64(handle, index, $0) } ?? sqlite3_bind_null(handle, index)
        try check(rc)
    }

    /// Steps once (`sqlite3_step`): true when a row is ready, false when done.
    package func step() throws(StoreError) -> Bool {
        let rc = sqlite3_step(handle)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            throw SQLiteDatabase.error(rc, String(cString: sqlite3_errmsg(database.handle)), path: database.path)
        }
    }

    package func reset() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    package func isNull(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }

    package func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }

    package func optionalInt64(_ column: Int32) -> Int64? { isNull(column) ? nil : int64(column) }

    package func string(_ column: Int32) -> String {
        guard let text = sqlite3_column_text(handle, column) else { return "" }
        let count = Int(sqlite3_column_bytes(handle, column))
        return String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self)
    }

    package func optionalString(_ column: Int32) -> String? { isNull(column) ? nil : string(column) }

    private func check(_ rc: Int32) throws(StoreError) {
        guard rc == SQLITE_OK else {
            throw SQLiteDatabase.error(rc, String(cString: sqlite3_errmsg(database.handle)), path: database.path)
        }
    }
}
