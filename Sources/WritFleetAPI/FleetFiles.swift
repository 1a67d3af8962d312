import Glibc

/// Root-only files of the server's state and the agent's credentials: written whole (a temporary
/// file, fsync, rename) with the mode asked, and key files refused when anyone but their owner
/// could read them.
public enum FleetFiles {
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    /// This machine's name (`gethostname`).
    public static func hostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        return String(cString: buffer)
    }

    /// A secret (a password file): refused when others may read it.
    public static func readSecret(_ path: String) throws(Failure) -> String {
        try read(path, requirePrivate: true)
    }

    public static func makeDirectory(_ path: String) throws(Failure) {
        if mkdir(path, 0o700) != 0 && errno != EEXIST {
            throw Failure("cannot make \(path): \(String(cString: strerror(errno)))")
        }
    }

    public static func read(_ path: String, requirePrivate: Bool) throws(Failure) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { throw Failure("cannot read \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { throw Failure("\(path) is not a file") }
        if requirePrivate && (st.st_mode & 0o077) != 0 {
            throw Failure("\(path) is readable by others: chmod 600 \(path), and make a new CA if it leaked")
        }
        guard st.st_size <= 1 << 20 else { throw Failure("\(path) is larger than 1 MiB") }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw Failure("cannot read \(path): \(String(cString: strerror(errno)))") }
            done += n
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    public static func write(_ path: String, _ text: String, mode: mode_t) throws(Failure) {
        let temporary = path + ".new"
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)
        guard fd >= 0 else { throw Failure("cannot write \(temporary): \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                close(fd)
                throw Failure("cannot write \(temporary): \(String(cString: strerror(errno)))")
            }
            done += n
        }
        guard fchmod(fd, mode) == 0, fsync(fd) == 0, close(fd) == 0, rename(temporary, path) == 0 else {
            throw Failure("cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }
}

extension FleetFiles {
    /// Whether anything is at `path` (a link is not followed).
    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }
}

/// The wall clock in milliseconds: what every answer's `server_time_ms` carries, and what an
/// agent stamps around each call.
public enum FleetClock {
    public static func milliseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}

/// A long-poll's heartbeats (openapi.yaml, `grantChanges`' `heartbeat`): the seconds between
/// them a client may ask for. One range for the server that writes them and the agent that asks.
public enum FleetHeartbeat {
    public static let allowed = 1...30
}
