import Glibc

/// Sending a signal to one process, identified by pid and start time.
enum ProcessSignal {
    /// glibc 2.36 has `pidfd_open` and `pidfd_send_signal`, but Swift's Glibc module does not
    /// include `<sys/pidfd.h>`, so they are looked up at run time. Absent (an older glibc), the
    /// fallback is check-then-`kill`.
    private struct PidfdCalls: Sendable {
        let open: @convention(c) (pid_t, UInt32) -> Int32
        let sendSignal: @convention(c) (Int32, Int32, UnsafeMutableRawPointer?, UInt32) -> Int32
    }

    private static let pidfdCalls: PidfdCalls? = {
        guard let open = dlsym(nil, "pidfd_open"), let send = dlsym(nil, "pidfd_send_signal") else { return nil }
        return PidfdCalls(
            open: unsafeBitCast(open, to: (@convention(c) (pid_t, UInt32) -> Int32).self),
            sendSignal: unsafeBitCast(
                send,
                to: (@convention(c) (Int32, Int32, UnsafeMutableRawPointer?, UInt32) -> Int32).self
            )
        )
    }()

    /// Whether this process may ever be signalled: never pid 0 or a negative pid (process groups,
    /// "every process"), never init, never writd itself.
    static func mayTarget(_ pid: Int32) -> Bool { pid > 1 && pid != getpid() }

    /// Sends `signal` to `target` if, and only if, the process holding its pid is that process and
    /// has not exited. Returns whether the signal was delivered.
    ///
    /// The pid descriptor is opened first and the start time checked after: the descriptor pins
    /// whichever process held the pid when it was opened, and that process must be `target`,
    /// because `target` was already running before (its identity was read earlier) and a pid has
    /// one holder at a time. So the signal cannot reach a process that took over a recycled pid.
    static func send(_ signal: Int32, to target: ProcessIdentity) -> Bool {
        guard mayTarget(target.pid) else { return false }
        do throws(SystemCallError) {
            let pidfd = try openPidfd(target.pid)
            guard ProcessTable.isAlive(target) else { return false }
            try sendSignal(signal, through: pidfd)
            return true
        } catch {
            guard error.errno == ENOSYS else { return false }
            // No pidfd: the check and the kill are two steps, and a pid could in principle be
            // recycled between them (it would take pid_max processes started in between).
            guard ProcessTable.isAlive(target) else { return false }
            return (try? kill(target.pid, signal)) != nil
        }
    }

    /// `pidfd_open(2)`, retrying EINTR; ENOSYS when neither glibc nor the kernel has it.
    static func openPidfd(_ pid: Int32) throws(SystemCallError) -> FileDescriptor {
        guard let calls = pidfdCalls else { throw SystemCallError("pidfd_open", errno: ENOSYS) }
        while true {
            let fd = calls.open(pid, 0)
            if fd >= 0 { return FileDescriptor(taking: fd) }
            if errno != EINTR { throw SystemCallError("pidfd_open", errno: errno) }
        }
    }

    /// `pidfd_send_signal(2)`, retrying EINTR.
    static func sendSignal(_ signal: Int32, through pidfd: borrowing FileDescriptor) throws(SystemCallError) {
        guard let calls = pidfdCalls else { throw SystemCallError("pidfd_send_signal", errno: ENOSYS) }
        while true {
            if calls.sendSignal(pidfd.raw, signal, nil, 0) == 0 { return }
            if errno != EINTR { throw SystemCallError("pidfd_send_signal", errno: errno) }
        }
    }

    /// `kill(2)` to one pid, retrying EINTR.
    static func kill(_ pid: Int32, _ signal: Int32) throws(SystemCallError) {
        guard pid > 0 else { throw SystemCallError("kill", errno: EINVAL) }
        while true {
            if Glibc.kill(pid, signal) == 0 { return }
            if errno != EINTR { throw SystemCallError("kill", errno: errno) }
        }
    }
}
