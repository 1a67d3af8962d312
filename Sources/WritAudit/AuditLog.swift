import Glibc
import WritCore
import WritStore

/// The audit log file: append-only JSON lines, hash-chained (`AuditLine`, `AuditChain`).
/// Root's alone: directory 0700, file 0600, both checked before use. Appends hold an exclusive
/// `flock` so concurrent writers (the CLI while writd runs) keep one chain, and are fsync'ed.
public struct AuditLog: Sendable {
    public static let defaultPath = "/var/log/writ/audit.jsonl"
    public let path: String

    public init(path: String = AuditLog.defaultPath) {
        self.path = path
    }

    /// Appends one record and returns its sequence number and hash.
    @discardableResult
    public func append(_ event: AuditEvent) throws(StoreError) -> (seq: Int64, hash: String) {
        let (dir, _) = StoreFile.split(path)
        try StoreFile.makeRootDirectory(dir)
        let fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw errno == ELOOP ? .symlink(path: path) : .unreadable(path: path, errno: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .unreadable(path: path, errno: errno) }
        guard st.st_mode & S_IFMT == S_IFREG else { throw .notRegularFile(path: path) }
        guard st.st_uid == 0 else { throw .notOwnedByRoot(path: path, uid: st.st_uid) }
        guard st.st_mode & 0o077 == 0 else { throw .writableByOthers(path: path, mode: st.st_mode) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else { throw .unreadable(path: path, errno: errno) }
        }
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
        return (seq, AuditChain.hash(line))
    }

    /// The last record (line) of the log, reading only its tail; nil when empty or missing.
    public func lastRecord() throws(StoreError) -> String? {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw errno == ELOOP ? .symlink(path: path) : .unreadable(path: path, errno: errno)
        }
        defer { close(fd) }
        return try lastLine(fd)
    }

    /// Every line of the log (without newlines); an empty array when the log does not exist yet.
    public func lines() throws(StoreError) -> [String] {
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
