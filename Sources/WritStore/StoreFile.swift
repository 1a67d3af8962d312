#if canImport(Glibc)
import Glibc
#else
import CLibc  // Embedded Swift build of the module: no Glibc overlay
#endif

/// Ownership and mode checks on the store before anything in it is trusted.
///
/// The file is checked on its open descriptor (`fstat`), the directories by `lstat`. The directory
/// checks are what make this hold: SQLite later opens the file by name, and only directories that
/// no one but root can change guarantee the name still points at the file that was checked.
package enum StoreFile {
    /// The default store path.
    package static let defaultPath = "/var/lib/writ/grants.db"

    /// Verifies that the store's directory and file are owned by root, are not writable by group
    /// or others, that the file is a regular file reached without following a symlink, and that
    /// the directories above can be changed by root alone.
    /// - Parameter readHeader: false for the writer, which may meet a new, empty file.
    /// - Returns: the schema version from the database header (`PRAGMA user_version`, bytes
    ///   60–63), read on the checked descriptor; this spares the hot path a statement.
    @discardableResult
    package static func verify(path: String, readHeader: Bool = true) throws(StoreError) -> Int32 {
        let (dir, _) = split(path)
        try verifyAncestors(of: dir)
        try verifyDirectory(dir, missing: .missing(path: path))
        // The directory and everything above it can be changed by root alone, so the name
        // cannot be redirected between these checks and SQLite's own open.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY)
        if fd < 0 {
            let e = errno
            switch e {
            case ENOENT: throw .missing(path: path)
            case ELOOP: throw .symlink(path: path)
            default: throw .unreadable(path: path, errno: e)
            }
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .unreadable(path: path, errno: errno) }
        guard st.st_mode & mode_t(S_IFMT) == mode_t(S_IFREG) else { throw .notRegularFile(path: path) }
        if st.st_uid != 0 { throw .notOwnedByRoot(path: path, uid: st.st_uid) }
        if st.st_mode & 0o022 != 0 { throw .writableByOthers(path: path, mode: st.st_mode) }
        guard readHeader else { return 0 }
        // The 100-byte SQLite header: magic string, then user_version big-endian at offset 60.
        var header = [UInt8](repeating: 0, count: 64)
        var got = -1
        repeat {
            got = header.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 64, 0) }
        } while got < 0 && errno == EINTR
        if got < 0 { throw .unreadable(path: path, errno: errno) }
        if got == 0 { throw .uninitialized(path: path) }
        guard got == 64, header.starts(with: Array("SQLite format 3\u{0}".utf8)) else {
            throw .corrupt(path: path, detail: "not an SQLite database")
        }
        return Int32(
            bitPattern: UInt32(header[60]) << 24 | UInt32(header[61]) << 16 | UInt32(header[62]) << 8
                | UInt32(header[63])
        )
    }

    /// The directories above the store's must not let anyone but root rename the store's
    /// directory away and put another in its place: the path up to it must resolve through
    /// root-only directories and symlinks (sticky ones like /tmp allowed; see `RootOnlyPath`).
    package static func verifyAncestors(of dir: String) throws(StoreError) {
        guard dir.hasPrefix("/") else { throw .invalid("store path \(dir) is not absolute") }
        let (parent, _) = split(dir)
        guard RootOnlyPath.resolveDirectory(parent, allowSticky: true, refuseProcfs: false) != nil else {
            throw .directoryInsecure(
                path: parent,
                detail: "a directory or symlink above the store can be changed by someone other than root"
            )
        }
    }

    /// Checks `dir` itself (lstat: a symlink does not count) is a directory owned by root that
    /// only root can write.
    /// - Parameter missing: the error when it does not exist.
    package static func verifyDirectory(_ dir: String, missing: StoreError) throws(StoreError) {
        var dst = stat()
        if lstat(dir, &dst) != 0 {
            let e = errno
            throw e == ENOENT ? missing : .unreadable(path: dir, errno: e)
        }
        guard dst.st_mode & mode_t(S_IFMT) == mode_t(S_IFDIR) else {
            throw .directoryInsecure(path: dir, detail: "not a directory (or a symbolic link)")
        }
        if dst.st_uid != 0 { throw .directoryInsecure(path: dir, detail: "owned by uid \(dst.st_uid), not root") }
        if dst.st_mode & 0o022 != 0 {
            throw .directoryInsecure(
                path: dir,
                detail: "writable by group or others (mode \(String(dst.st_mode & 0o7777, radix: 8)))"
            )
        }
    }

    /// Creates `dir` (0700) if it is absent and checks it and everything above it: where a writer
    /// running as root may create a file — nothing is created under a directory someone else
    /// could swap.
    package static func makeRootDirectory(_ dir: String) throws(StoreError) {
        try verifyAncestors(of: dir)
        if mkdir(dir, 0o700) != 0 && errno != EEXIST { throw .unreadable(path: dir, errno: errno) }
        try verifyDirectory(dir, missing: .unreadable(path: dir, errno: ENOENT))
    }

    /// Splits a path into its directory and last component.
    package static func split(_ path: String) -> (directory: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let dir = String(path[..<slash])
        return (dir.isEmpty ? "/" : dir, String(path[path.index(after: slash)...]))
    }

    /// Creates `path` (and its root-only directory) as an empty 0600 root file unless it exists,
    /// then checks it the way readers do. An existing file is never replaced.
    package static func createRootFile(_ path: String, what: String) throws(StoreError) {
        guard path.hasPrefix("/") else { throw .invalid("\(what) \(path) is not absolute") }
        let (dir, _) = split(path)
        try makeRootDirectory(dir)
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        if fd >= 0 {
            // A new file: make sure of owner and mode whatever the umask and setgid dirs say.
            fchown(fd, 0, 0)
            fchmod(fd, 0o600)
            close(fd)
        } else if errno != EEXIST {
            throw .unreadable(path: path, errno: errno)
        }
        _ = try verify(path: path, readHeader: false)
    }
}
