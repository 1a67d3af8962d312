import Glibc

/// An open file descriptor with exactly one owner, which closes it.
struct FileDescriptor: ~Copyable {
    let raw: Int32

    init(taking raw: Int32) {
        self.raw = raw
    }

    deinit {
        // Not retried on EINTR: Linux releases the descriptor even then, and a retry could close a
        // descriptor another thread has just been given.
        _ = Glibc.close(raw)
    }

    /// `open(2)`, retrying EINTR. `O_CLOEXEC` is always added: writd starts no program that should
    /// inherit a descriptor to /proc or to a terminal.
    static func open(_ path: String, flags: Int32) throws(SystemCallError) -> FileDescriptor {
        while true {
            let fd = Glibc.open(path, flags | O_CLOEXEC)
            if fd >= 0 { return FileDescriptor(taking: fd) }
            if errno != EINTR { throw SystemCallError("open \(path)", errno: errno) }
        }
    }

    /// `openat(2)` relative to this directory descriptor, retrying EINTR; adds `O_CLOEXEC`.
    func open(relative path: String, flags: Int32) throws(SystemCallError) -> FileDescriptor {
        while true {
            let fd = Glibc.openat(raw, path, flags | O_CLOEXEC)
            if fd >= 0 { return FileDescriptor(taking: fd) }
            if errno != EINTR { throw SystemCallError("openat \(path)", errno: errno) }
        }
    }

    /// `read(2)` until end of file, retrying EINTR. Throws when the file holds more than `limit`
    /// bytes: what /proc hands back is small, and anything larger is not what the caller expects.
    func readToEnd(limit: Int) throws(SystemCallError) -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let got = chunk.withUnsafeMutableBytes { Glibc.read(raw, $0.baseAddress, $0.count) }
            if got < 0 {
                if errno == EINTR { continue }
                throw SystemCallError("read", errno: errno)
            }
            if got == 0 { return bytes }
            bytes.append(contentsOf: chunk[..<got])
            if bytes.count > limit { throw SystemCallError("read", errno: EFBIG) }
        }
    }

    /// `write(2)` once, retrying EINTR: the number of bytes written, which may be fewer than asked.
    func write(_ bytes: ArraySlice<UInt8>) throws(SystemCallError) -> Int {
        while true {
            let wrote = bytes.withUnsafeBytes { Glibc.write(raw, $0.baseAddress, $0.count) }
            if wrote >= 0 { return wrote }
            if errno != EINTR { throw SystemCallError("write", errno: errno) }
        }
    }

    /// `fstat(2)`.
    func status() throws(SystemCallError) -> stat {
        var st = stat()
        while true {
            if fstat(raw, &st) == 0 { return st }
            if errno != EINTR { throw SystemCallError("fstat", errno: errno) }
        }
    }
}
