import Glibc
import WritStore

/// Where a forward read of the audit log stopped: the file (by inode, since rotation renames
/// the current file and starts a new one at the same path), the byte offset after the last
/// record returned, and that record's seq.
public struct AuditPosition: Sendable, Equatable {
    public var path: String
    public var inode: UInt64
    public var offset: Int64
    public var seq: Int64
}

extension AuditLog {
    /// The records after `seq`, oldest first, across rotated files: at most `maxRecords` and
    /// about `maxBytes`. `resume`, from the previous call, skips what that call read when it is
    /// still the file it was (a host's agent uploads its chain this way: each record read once,
    /// not the whole file per upload). A last line without its newline (an append in progress)
    /// is left for the next call.
    public func records(
        after seq: Int64,
        maxRecords: Int,
        maxBytes: Int,
        resume: AuditPosition? = nil
    ) throws(StoreError) -> (lines: [String], position: AuditPosition?) {
        // Rotated files are named by their last seq: the first one past `seq` holds the next
        // record; none does when it is in the current file.
        var files = rotatedFiles().filter { $0.0 > seq }.map(\.1)
        files.append(path)
        var lines: [String] = []
        var bytes = 0
        var position: AuditPosition?
        for file in files {
            let fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
            if fd < 0 {
                if errno == ENOENT { continue }
                throw errno == ELOOP ? .symlink(path: file) : .unreadable(path: file, errno: errno)
            }
            defer { close(fd) }
            var st = stat()
            guard fstat(fd, &st) == 0 else { throw .unreadable(path: file, errno: errno) }
            var offset: Int64 = 0
            if let r = resume, r.path == file, r.inode == UInt64(st.st_ino), r.seq == seq, r.offset <= st.st_size {
                offset = r.offset
            }
            var carry: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 256 << 10)
            reading: while true {
                let n = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(offset)) }
                if n < 0 && errno == EINTR { continue }
                guard n >= 0 else { throw .unreadable(path: file, errno: errno) }
                if n == 0 { break }
                var start = 0
                for i in 0..<n where chunk[i] == 0x0A {
                    let line = carry + chunk[start..<i]
                    carry = []
                    start = i + 1
                    let end = offset + Int64(i) + 1
                    let text = String(decoding: line, as: UTF8.self)
                    guard let fields = AuditLine.chainFields(text) else { continue }
                    if fields.seq <= seq { continue }
                    lines.append(text)
                    bytes += line.count
                    position = AuditPosition(path: file, inode: UInt64(st.st_ino), offset: end, seq: fields.seq)
                    if lines.count >= maxRecords || bytes >= maxBytes { return (lines, position) }
                }
                carry += chunk[start..<n]
                offset += Int64(n)
                if carry.count > 16 << 20 { break reading }  // no record is this long
            }
        }
        return (lines, position)
    }
}
