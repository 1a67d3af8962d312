import CWritSpawn
import Glibc

/// Everything needed to start a hook, decided before the fork.
struct HookLaunch {
    /// What execve runs (the checked, resolved path).
    var program: String
    var arguments: [String]
    /// `NAME=value` strings: the complete environment.
    var environment: [String]
    var identity: HookIdentity
}

/// One hook process, from spawn to reap, on the calling (dedicated) thread: writes the input,
/// collects stdout and stderr, enforces the output limit and the timeout, and never leaves a
/// zombie.
///
/// When the hook exits, whatever it left running in its process group is killed at once: a hook
/// is done when it exits, and a background child must not hold its stdout open. A descendant
/// that left the group (setsid) can still hold it; the wait then ends at the timeout, as
/// `.timedOut`.
enum HookProcess {
    /// The most input a hook is given.
    static let inputLimit = 64 * 1024
    /// The end of stderr kept for error messages.
    static let stderrKept = 4 * 1024
    /// RLIMIT_NOFILE in the hook.
    static let openFiles = 256

    /// Starts the hook and sees it through: its stdout when it exits 0, else why not.
    static func run(_ launch: HookLaunch, input: [UInt8], timeoutMilliseconds: Int) -> Result<[UInt8], HookFailure> {
        writ_spawn_block_sigpipe()
        var started = writ_spawn_result()
        let spawned = spawn(launch, into: &started)
        guard spawned == 0 else { return .failure(.notRunnable(spawnError(launch, started))) }

        var child = Child(
            pid: started.pid,
            stdin: started.stdin_fd,
            stdout: started.stdout_fd,
            stderr: started.stderr_fd,
            pidfd: started.pidfd
        )
        defer { child.closeAll() }
        return child.communicate(input: input, timeoutMilliseconds: timeoutMilliseconds)
    }

    /// Calls writ_spawn with C copies of the arguments and environment.
    private static func spawn(_ launch: HookLaunch, into result: inout writ_spawn_result) -> Int32 {
        let argv = CStrings(launch.arguments)
        let envp = CStrings(launch.environment)
        guard argv.complete, envp.complete else {
            result.failed_step = Int32(WRIT_SPAWN_FORK.rawValue)
            result.error = ENOMEM
            return -1
        }
        // The C strings are freed when `argv` and `envp` go: keep them until writ_spawn returns.
        return withExtendedLifetime((argv, envp)) {
            launch.program.withCString { program in
                argv.pointers.withUnsafeBufferPointer { argvBuffer in
                    envp.pointers.withUnsafeBufferPointer { envpBuffer in
                        launch.identity.groups.withUnsafeBufferPointer { groups in
                            var request = writ_spawn_request()
                            request.path = program
                            request.argv = argvBuffer.baseAddress
                            request.envp = envpBuffer.baseAddress
                            request.change_identity = launch.identity.switchIDs ? 1 : 0
                            request.uid = launch.identity.uid
                            request.gid = launch.identity.gid
                            request.groups = groups.baseAddress
                            request.group_count = groups.count
                            request.open_files = UInt(openFiles)
                            return writ_spawn(&request, &result)
                        }
                    }
                }
            }
        }
    }

    /// The text for a failed start: the step, the error, and a hint at the usual cause.
    static func spawnError(_ launch: HookLaunch, _ result: writ_spawn_result) -> String {
        let error = result.error
        let program = HookText.escape(launch.program)
        let user = HookText.escape(launch.identity.name)
        let reason = String(cString: strerror(error))
        switch writ_spawn_step(rawValue: UInt32(result.failed_step)) {
        case WRIT_SPAWN_EXEC:
            let hint: String
            switch error {
            case ENOENT:
                hint = "is the interpreter on its #! line installed?"
            case EACCES:
                hint = "can \(user) read and execute it, and search every directory above it?"
            case ENOEXEC:
                hint = "a script needs a #! line naming its interpreter"
            default:
                hint = "check the file"
            }
            return "could not execute \(program) as \(user): \(reason); \(hint)"
        case WRIT_SPAWN_PIPE, WRIT_SPAWN_FORK:
            return "could not start a process for \(program): \(reason); writd may be out of processes or descriptors"
        case WRIT_SPAWN_SETGROUPS, WRIT_SPAWN_SETGID, WRIT_SPAWN_SETUID, WRIT_SPAWN_VERIFY:
            return "could not switch to the hook user \(user) (uid \(launch.identity.uid)) for \(program): \(reason)"
        default:
            return "could not set up the process for \(program) (step \(result.failed_step)): \(reason)"
        }
    }
}

/// malloc'ed, NUL-terminated copies of strings and a NULL-terminated array of them.
private final class CStrings {
    let pointers: [UnsafeMutablePointer<CChar>?]
    let complete: Bool

    init(_ strings: [String]) {
        let copies = strings.map { strdup($0) }
        pointers = copies + [nil]
        complete = !copies.contains(nil)
    }

    deinit {
        for pointer in pointers { free(pointer) }
    }
}

/// A started hook and the parent's ends of its pipes (-1 once closed).
private struct Child {
    let pid: pid_t
    var stdin: Int32
    var stdout: Int32
    var stderr: Int32
    var pidfd: Int32
    var output: [UInt8] = []
    var errors: [UInt8] = []

    init(pid: pid_t, stdin: Int32, stdout: Int32, stderr: Int32, pidfd: Int32) {
        self.pid = pid
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.pidfd = pidfd
    }

    mutating func closeAll() {
        Self.close(&stdin)
        Self.close(&stdout)
        Self.close(&stderr)
        Self.close(&pidfd)
    }

    static func close(_ fd: inout Int32) {
        if fd >= 0 { _ = Glibc.close(fd) }
        fd = -1
    }

    /// Kills the hook's process group (and the hook, should it have left it). Safe while the hook
    /// is not reaped: its pid, which is the group's id, cannot be reused until then.
    func killGroup() {
        _ = kill(-pid, SIGKILL)
        _ = kill(pid, SIGKILL)
    }

    /// Reaps the hook; its exit status and terminating signal.
    func reap() -> (status: Int32, signal: Int32) {
        var status: Int32 = 0
        var signal: Int32 = 0
        if writ_spawn_reap(pid, &status, &signal) != 0 { return (-1, 0) }
        return (status, signal)
    }

    /// Kills, reaps, and fails with `failure`.
    func abandon(_ failure: HookFailure) -> Result<[UInt8], HookFailure> {
        killGroup()
        _ = reap()
        return .failure(failure)
    }

    mutating func communicate(input: [UInt8], timeoutMilliseconds: Int) -> Result<[UInt8], HookFailure> {
        let clock = ContinuousClock()
        let deadline = clock.now + .milliseconds(timeoutMilliseconds)
        var written = 0
        var exited = false
        if input.isEmpty { Self.close(&stdin) }

        while !(exited && stdout < 0 && stderr < 0) {
            let remaining = deadline - clock.now
            if remaining <= .zero { return abandon(.timedOut(milliseconds: timeoutMilliseconds)) }
            var wait = Self.milliseconds(remaining)
            // Without a pidfd the exit is noticed by asking every few milliseconds.
            if pidfd < 0 && !exited { wait = min(wait, 10) }

            var fds: [pollfd] = []
            let stdinIndex = stdin >= 0 ? Self.add(&fds, stdin, Int16(POLLOUT)) : -1
            let stdoutIndex = stdout >= 0 ? Self.add(&fds, stdout, Int16(POLLIN)) : -1
            let stderrIndex = stderr >= 0 ? Self.add(&fds, stderr, Int16(POLLIN)) : -1
            let pidfdIndex = pidfd >= 0 && !exited ? Self.add(&fds, pidfd, Int16(POLLIN)) : -1
            let ready = fds.withUnsafeMutableBufferPointer { poll($0.baseAddress, nfds_t($0.count), Int32(wait)) }
            if ready < 0 {
                let error = errno
                if error == EINTR { continue }
                return abandon(.notRunnable("poll failed while running the hook: \(String(cString: strerror(error)))"))
            }

            if stdinIndex >= 0, fds[stdinIndex].revents != 0 {
                feed(input, written: &written)
            }
            if stdoutIndex >= 0, fds[stdoutIndex].revents != 0 {
                Self.drain(&stdout, into: &output, keepLast: nil)
                if output.count > HookDecision.outputLimit {
                    return abandon(.outputTooLarge(limit: HookDecision.outputLimit))
                }
            }
            if stderrIndex >= 0, fds[stderrIndex].revents != 0 {
                Self.drain(&stderr, into: &errors, keepLast: HookProcess.stderrKept)
            }
            if !exited {
                let done =
                    pidfdIndex >= 0
                    ? fds[pidfdIndex].revents != 0
                    : pidfd < 0 && writ_spawn_has_exited(pid) == 1
                if done {
                    exited = true
                    // Leftovers in the group die with the hook; its own output is in the pipes.
                    killGroup()
                    Self.close(&stdin)
                }
            }
        }

        let (status, signal) = reap()
        if signal > 0 { return .failure(.signalled(signal: signal, stderr: HookText.tail(errors))) }
        if status != 0 { return .failure(.exited(status: status, stderr: HookText.tail(errors))) }
        return .success(output)
    }

    /// Writes what the pipe takes now; closes stdin when all is written or the hook closed it.
    mutating func feed(_ input: [UInt8], written: inout Int) {
        while written < input.count {
            let n = input.withUnsafeBytes { raw in
                write(stdin, raw.baseAddress! + written, raw.count - written)
            }
            if n > 0 {
                written += n
                continue
            }
            let error = errno
            if n < 0 && error == EINTR { continue }
            if n < 0 && (error == EAGAIN || error == EWOULDBLOCK) { return }
            // EPIPE (the hook does not read its input) or another error: stop feeding it.
            if error == EPIPE { writ_spawn_discard_sigpipe() }
            break
        }
        Self.close(&stdin)
    }

    /// Reads all that is available; closes `fd` at end of file. With `keepLast`, only the last
    /// that many bytes are kept (the rest is read and dropped).
    static func drain(_ fd: inout Int32, into buffer: inout [UInt8], keepLast: Int?) {
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                buffer.append(contentsOf: chunk[..<n])
                if let keepLast, buffer.count > 2 * keepLast { buffer.removeFirst(buffer.count - keepLast) }
                if keepLast == nil && buffer.count > HookDecision.outputLimit { return }
                continue
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { break }
            close(&fd)  // end of file, or an error: nothing more will come
            break
        }
        if let keepLast, buffer.count > keepLast { buffer.removeFirst(buffer.count - keepLast) }
    }

    static func add(_ fds: inout [pollfd], _ fd: Int32, _ events: Int16) -> Int {
        fds.append(pollfd(fd: fd, events: events, revents: 0))
        return fds.count - 1
    }

    /// `duration` in whole milliseconds, rounded up, at least 1 and at most a day.
    static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        let ms = seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
        return Int(min(max(ms, 1), 86_400_000))
    }
}
