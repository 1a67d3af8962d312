import Glibc

/// writd's pid file, `/run/writ/writd.pid`, for `writd start|stop|reload` where systemd does not
/// run writd.
///
/// The running writd holds a POSIX write lock on the file for as long as it lives. Whoever holds
/// the lock is writd; the number written in the file is only for people. So a file left behind by
/// a writd that crashed (or a pid since reused by another program) names nobody: the kernel drops
/// the lock with the process, `F_GETLK` reports no holder, and nothing is signalled.
public enum DaemonPidFile {
    public static let defaultPath = "/run/writ/writd.pid"

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// The lock held by this process; the file is removed when it is released.
    public final class Lock {
        let fd: Int32
        let path: String

        init(fd: Int32, path: String) {
            self.fd = fd
            self.path = path
        }

        /// Removes the file, then drops the lock (closing the descriptor). Removing first means a
        /// new writd that starts meanwhile makes its own file instead of losing it to this unlink.
        public func release() {
            unlink(path)
            close(fd)
        }
    }

    /// Takes the lock and writes this process's pid; fails when another writd holds it.
    public static func acquire(_ path: String = defaultPath) throws(Failure) -> Lock {
        for _ in 0..<8 {
            let fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o644)
            guard fd >= 0 else {
                throw Failure(description: "cannot open \(path): \(String(cString: strerror(errno)))")
            }
            var lock = flockStruct(type: Int16(F_WRLCK))
            if fcntl(fd, F_SETLK, &lock) != 0 {
                let holder = lockHolder(fd)
                close(fd)
                throw Failure(
                    description: "another writd is running (pid \(holder.map(String.init) ?? "?") holds \(path))"
                )
            }
            // A stopping writd unlinks the file before it lets go of the lock: a lock taken on
            // that unlinked file names nobody. Only the file the name points at counts.
            var mine = stat()
            var named = stat()
            guard fstat(fd, &mine) == 0, lstat(path, &named) == 0, mine.st_ino == named.st_ino,
                mine.st_dev == named.st_dev
            else {
                close(fd)
                continue
            }
            let text = Array("\(getpid())\n".utf8)
            _ = ftruncate(fd, 0)
            _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
            return Lock(fd: fd, path: path)
        }
        throw Failure(description: "\(path) keeps changing: another writd is starting or stopping")
    }

    /// The pid of the writd holding the lock, nil when none runs (no file, or a stale one).
    public static func holder(_ path: String = defaultPath) -> pid_t? {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return lockHolder(fd)
    }

    public enum SignalOutcome: Equatable {
        case sent(pid_t)
        case notRunning
    }

    /// Signals the writd that holds the lock.
    ///
    /// The pid descriptor is opened first, then the lock's holder is asked again: a process holds
    /// a lock only while it lives, so if the holder is still that pid, the descriptor names the
    /// process holding the lock, and the signal cannot reach a program that took over a recycled
    /// pid.
    public static func signal(_ signal: Int32, path: String = defaultPath) throws(Failure) -> SignalOutcome {
        guard let pid = holder(path) else { return .notRunning }
        guard ProcessSignal.mayTarget(pid) else { throw Failure(description: "refusing to signal pid \(pid)") }
        do throws(SystemCallError) {
            let pidfd = try ProcessSignal.openPidfd(pid)
            guard holder(path) == pid else { return .notRunning }
            try ProcessSignal.sendSignal(signal, through: pidfd)
            return .sent(pid)
        } catch {
            if error.errno == ESRCH { return .notRunning }
            throw Failure(description: "cannot signal writd (pid \(pid)): \(error)")
        }
    }

    static func lockHolder(_ fd: Int32) -> pid_t? {
        var probe = flockStruct(type: Int16(F_WRLCK))
        guard fcntl(fd, F_GETLK, &probe) == 0, probe.l_type != Int16(F_UNLCK), probe.l_pid > 0 else { return nil }
        return probe.l_pid
    }

    static func flockStruct(type: Int16) -> flock {
        var lock = flock()
        lock.l_type = type
        lock.l_whence = Int16(SEEK_SET)
        lock.l_start = 0
        lock.l_len = 0
        return lock
    }
}
