/// Why the grant store could not be used. Each case says what failed and what to do; the modules
/// log `description` to syslog and fail closed.
public enum StoreError: Error, Equatable, CustomStringConvertible {
    case missing(path: String)
    case unreadable(path: String, errno: Int32)
    case symlink(path: String)
    case notRegularFile(path: String)
    case notOwnedByRoot(path: String, uid: UInt32)
    case writableByOthers(path: String, mode: UInt32)
    case directoryInsecure(path: String, detail: String)
    case corrupt(path: String, detail: String)
    case uninitialized(path: String)
    case newerSchema(path: String, found: Int32, supported: Int32)
    case busy(path: String)
    /// A writer stopped in the middle of a transaction; read-only readers cannot roll it back.
    case interruptedWrite(path: String)
    case sqlite(path: String, code: Int32, message: String)
    case notFound(id: String)
    case invalid(String)

    public var description: String {
        switch self {
        case .missing(let p): "grant store \(p) does not exist — create it with: writ store init --store \(p) (as root)"
        case .unreadable(let p, let e): "grant store \(p) cannot be opened (errno \(e)) — check its permissions"
        case .symlink(let p): "grant store \(p) is a symbolic link — refusing it; use the real path"
        case .notRegularFile(let p): "grant store \(p) is not a regular file"
        case .notOwnedByRoot(let p, let uid):
            "grant store \(p) is owned by uid \(uid), not root — run: chown root:root \(p)"
        case .writableByOthers(let p, let mode):
            "grant store \(p) is writable by group or others (mode \(String(mode & 0o7777, radix: 8))) — run: chmod 600 \(p)"
        case .directoryInsecure(let p, let d):
            "grant store directory \(p) is insecure: \(d) — run: chown root:root \(p); chmod 700 \(p)"
        case .corrupt(let p, let d): "grant store \(p) is corrupt or not a Writ store (\(d)) — restore it from backup"
        case .uninitialized(let p):
            "grant store \(p) has no Writ schema — initialise it with: writ store init --store \(p) (as root)"
        case .newerSchema(let p, let found, let supported):
            "grant store \(p) has schema version \(found), newer than this build understands (\(supported)) — upgrade Writ on this host"
        case .busy(let p): "grant store \(p) stayed locked past the busy timeout"
        case .interruptedWrite(let p):
            "grant store \(p) has an interrupted write (hot journal) — roll it back with: writ store init --store \(p) (as root)"
        case .sqlite(let p, let code, _) where code & 0xFF == 13:  // SQLITE_FULL
            "the disk holding \(p) is full: nothing was changed — free space there (writd goes on once there is)"
        case .sqlite(let p, let code, let m): "grant store \(p): SQLite error \(code): \(m)"
        case .notFound(let id): "no grant with id \(id) — list grants with: writ grant list --all"
        case .invalid(let m): m
        }
    }

    /// A short stable code for logs and tests.
    public var code: String {
        switch self {
        case .missing: "missing"
        case .unreadable: "unreadable"
        case .symlink: "symlink"
        case .notRegularFile: "not_regular_file"
        case .notOwnedByRoot: "not_owned_by_root"
        case .writableByOthers: "writable_by_others"
        case .directoryInsecure: "directory_insecure"
        case .corrupt: "corrupt"
        case .uninitialized: "uninitialized"
        case .newerSchema: "newer_schema"
        case .busy: "busy"
        case .interruptedWrite: "interrupted_write"
        case .sqlite: "sqlite_error"
        case .notFound: "not_found"
        case .invalid: "invalid"
        }
    }
}
