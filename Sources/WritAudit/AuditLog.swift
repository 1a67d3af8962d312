import Glibc
import WritCore
import WritStore

/// The audit log file: append-only JSON lines, hash-chained (`AuditLine`, `AuditChain`).
/// Root's alone: directory 0700, file 0600, both checked before use. Appends hold an exclusive
/// `flock` so concurrent writers (the CLI while writd runs) keep one chain, and are fsync'ed.
///
/// **Rotation keeps the chain.** When an append leaves the file over `rotateBytes` (or on
/// `rotate()`), the file gets a second name, `audit.jsonl.N` (N: its last record's sequence
/// number), and a new file takes its place whose first record, `audit.rotate`, continues the
/// chain: the next sequence number, and the hash of the rotated file's last line. The name never
/// points at nothing (link, then rename over it), so no writer can start a new chain meanwhile.
/// `verifyAll()` checks the rotated files and the current one as one chain.
public struct AuditLog: Sendable {
    public static let defaultPath = "/var/log/writ/audit.jsonl"
    /// 64 MiB: a log that size reads and verifies in well under a second.
    public static let defaultRotateBytes: Int64 = 64 << 20
    public static let defaultKeep = 20
    public static let rotateEvent = "audit.rotate"

    public let path: String
    /// Rotate when an append leaves the file larger than this; nil: never by size.
    public var rotateBytes: Int64?
    /// Rotated files kept; older ones are deleted at rotation. nil: never delete (the CLI, which
    /// does not know what writd was told to keep).
    public var keep: Int?

    public init(
        path: String = AuditLog.defaultPath,
        rotateBytes: Int64? = AuditLog.defaultRotateBytes,
        keep: Int? = AuditLog.defaultKeep
    ) {
        self.path = path
        self.rotateBytes = rotateBytes
        self.keep = keep.map { max(1, $0) }
    }

    /// Opens the current file and takes its lock, making sure the descriptor still is the file
    /// the name points at once locked: a rotation between open and lock moves the name on.
    private func openLocked(create: Bool) throws(StoreError) -> Int32 {
        let (dir, _) = StoreFile.split(path)
        if create { try StoreFile.makeRootDirectory(dir) }
        for _ in 0..<8 {
            let fd = open(path, O_RDWR | O_APPEND | (create ? O_CREAT : 0) | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard fd >= 0 else {
                throw errno == ELOOP ? .symlink(path: path) : .unreadable(path: path, errno: errno)
            }
            var st = stat()
            guard fstat(fd, &st) == 0 else {
                close(fd)
                throw .unreadable(path: path, errno: errno)
            }
            guard st.st_mode & S_IFMT == S_IFREG else {
                close(fd)
                throw .notRegularFile(path: path)
            }
            guard st.st_uid == 0 else {
                close(fd)
                throw .notOwnedByRoot(path: path, uid: st.st_uid)
            }
            guard st.st_mode & 0o077 == 0 else {
                close(fd)
                throw .writableByOthers(path: path, mode: st.st_mode)
            }
            while flock(fd, LOCK_EX) != 0 {
                guard errno == EINTR else {
                    close(fd)
                    throw .unreadable(path: path, errno: errno)
                }
            }
            var now = stat()
            if lstat(path, &now) == 0 && now.st_ino == st.st_ino && now.st_dev == st.st_dev { return fd }
            close(fd)  // rotated meanwhile: the lock is on the old file
        }
        throw .busy(path: path)
    }

    /// Appends one record and returns its sequence number and hash.
    @discardableResult
    public func append(_ event: AuditEvent) throws(StoreError) -> (seq: Int64, hash: String) {
        let fd = try openLocked(create: true)
        defer { close(fd) }
        defer { flock(fd, LOCK_UN) }
        let last = try lastLine(fd)
        var seq: Int64 = 1
        var prev = AuditLine.genesis
        if let last {
            guard let fields = AuditLine.chainFields(last) else {
                throw .corrupt(
                    path: path,
                    detail: "its last line is not an audit record; check it with: writ audit verify"
                )
            }
            seq = fields.seq + 1
            prev = AuditChain.hash(last)
        }
        let line = AuditLine.render(seq: seq, prev: prev, event)
        let bytes = Array((line + "\n").utf8)
        let size = lseek(fd, 0, SEEK_END)
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let e = errno
                // A partial line (disk full) would make every later append refuse the log: cut it.
                if size >= 0 { _ = ftruncate(fd, size) }
                throw .unreadable(path: path, errno: e)
            }
            written += n
        }
        guard fsync(fd) == 0 else { throw .unreadable(path: path, errno: errno) }
        let hash = AuditChain.hash(line)
        if let limit = rotateBytes, size >= 0, Int64(size) + Int64(bytes.count) > limit {
            // The record is in; a failed rotation only leaves the file longer, and the next
            // append tries again.
            _ = try? rotateLocked(last: line, time: event.time)
        }
        return (seq, hash)
    }

    /// Rotates now (`writ audit rotate`); returns the rotated file's path, nil for an empty log.
    @discardableResult
    public func rotate(time: Int64) throws(StoreError) -> String? {
        let fd: Int32
        do { fd = try openLocked(create: false) } catch {
            if case .unreadable(_, let e) = error, e == ENOENT { return nil }
            throw error
        }
        defer { close(fd) }
        defer { flock(fd, LOCK_UN) }
        guard let last = try lastLine(fd) else { return nil }
        return try rotateLocked(last: last, time: time)
    }

    /// With the current file locked: give it its rotated name, put a new file in its place that
    /// starts with the link record, and delete rotated files beyond `keep`.
    private func rotateLocked(last: String, time: Int64) throws(StoreError) -> String {
        guard let fields = AuditLine.chainFields(last) else {
            throw .corrupt(path: path, detail: "its last line is not an audit record; check it with: writ audit verify")
        }
        let rotated = "\(path).\(fields.seq)"
        let (dir, base) = StoreFile.split(path)
        // Build the new file beside it, complete, before it takes the name.
        let temporary = "\(path).rotating"
        unlink(temporary)
        let nfd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard nfd >= 0 else { throw .unreadable(path: temporary, errno: errno) }
        defer { close(nfd) }
        let link = AuditLine.render(
            seq: fields.seq + 1,
            prev: AuditChain.hash(last),
            AuditEvent(
                time: time,
                event: Self.rotateEvent,
                actor: "writ",
                fields: [.init("previous", "\(base).\(fields.seq)")]
            )
        )
        let bytes = Array((link + "\n").utf8)
        let written = bytes.withUnsafeBytes { write(nfd, $0.baseAddress, $0.count) }
        guard written == bytes.count, fsync(nfd) == 0 else {
            let e = errno
            unlink(temporary)
            throw .unreadable(path: temporary, errno: e)
        }
        // A second name first, so the records are never without one; then the new file replaces
        // the current name in one step. A crash between the two leaves the rotated name on this
        // very file: then the link is already there.
        var current = stat()
        var existing = stat()
        let linked =
            lstat(rotated, &existing) == 0 && lstat(path, &current) == 0 && existing.st_ino == current.st_ino
            && existing.st_dev == current.st_dev
        guard linked || Glibc.link(path, rotated) == 0 else {
            let e = errno
            unlink(temporary)
            throw .unreadable(path: rotated, errno: e)
        }
        guard rename(temporary, path) == 0 else {
            let e = errno
            unlink(rotated)
            unlink(temporary)
            throw .unreadable(path: path, errno: e)
        }
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            fsync(dfd)
            close(dfd)
        }
        if let keep {
            for (_, old) in rotatedFiles().dropLast(keep) { unlink(old) }
        }
        return rotated
    }

    /// The rotated files beside the log, oldest first: (last sequence number, path).
    public func rotatedFiles() -> [(Int64, String)] {
        let (dir, base) = StoreFile.split(path)
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var out: [(Int64, String)] = []
        let prefix = base + "."
        while let entry = readdir(d) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            guard name.hasPrefix(prefix), let n = Int64(name.dropFirst(prefix.count)), n > 0 else { continue }
            out.append((n, dir + "/" + name))
        }
        return out.sorted { $0.0 < $1.0 }
    }

    /// The last event recorded (a line), reading only the tail; nil when empty or missing. A
    /// rotation's link record is not an event: then the rotated file's last line is the answer.
    public func lastRecord() throws(StoreError) -> String? {
        guard let last = try lastLine(of: path) else { return nil }
        guard AuditLine.field("event", in: last) == Self.rotateEvent,
            let previous = AuditLine.field("previous", in: last)
        else { return last }
        return try lastLine(of: StoreFile.split(path).0 + "/" + previous) ?? last
    }

    private func lastLine(of file: String) throws(StoreError) -> String? {
        let fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw errno == ELOOP ? .symlink(path: file) : .unreadable(path: file, errno: errno)
        }
        defer { close(fd) }
        return try lastLine(fd)
    }

    /// Every line of the current file (without newlines); an empty array when the log does not
    /// exist yet.
    public func lines() throws(StoreError) -> [String] {
        try lines(of: path)
    }

    /// Every line of one file of the log (the current one or a rotated one).
    public func lines(of file: String) throws(StoreError) -> [String] {
        let path = file
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return [] }
            throw errno == ELOOP ? .symlink(path: path) : .unreadable(path: path, errno: errno)
        }
        defer { close(fd) }
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw .unreadable(path: path, errno: errno) }
            if n == 0 { break }
            data.append(contentsOf: chunk[0..<n])
        }
        var lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map {
            String(decoding: $0, as: UTF8.self)
        }
        if lines.last == "" { lines.removeLast() }
        return lines
    }

    /// The last complete line, read backwards from the end; nil for an empty file.
    func lastLine(_ fd: Int32) throws(StoreError) -> String? {
        let size = lseek(fd, 0, SEEK_END)
        guard size > 0 else { return nil }
        var end = size
        var tail: [UInt8] = []
        // Skip the final newline, then read back in chunks until the previous newline.
        var chunkSize: off_t = 4096
        while true {
            let start = max(0, end - chunkSize)
            var chunk = [UInt8](repeating: 0, count: Int(end - start))
            let n = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, start) }
            guard n == chunk.count else { throw .unreadable(path: path, errno: errno) }
            tail = chunk + tail
            var body = tail[...]
            if body.last == UInt8(ascii: "\n") { body = body.dropLast() }
            if let nl = body.lastIndex(of: UInt8(ascii: "\n")) {
                return String(decoding: body[(nl + 1)...], as: UTF8.self)
            }
            if start == 0 { return String(decoding: body, as: UTF8.self) }
            end = start
            chunkSize = min(chunkSize * 2, 1 << 20)
        }
    }
}
