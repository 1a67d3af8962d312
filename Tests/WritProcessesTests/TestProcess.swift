import Glibc
import Testing

@testable import WritProcesses

/// A child started with posix_spawn. It is killed and reaped when released if the test has not
/// reaped it, so a failing test leaves nothing running.
final class TestProcess {
    let pid: Int32
    private(set) var reaped = false

    /// Starts `arguments` (an absolute program path first). Descriptors 0, 1, 2 are the given ones,
    /// /dev/null otherwise. Signal mask empty and every disposition default, whatever the test
    /// runner has set, so the child behaves the same under any runner.
    init(_ arguments: [String], stdin: Int32? = nil, stdout: Int32? = nil) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (target, source) in [(Int32(0), stdin), (1, stdout), (2, nil)] {
            if let source {
                posix_spawn_file_actions_adddup2(&actions, source, target)
            } else {
                posix_spawn_file_actions_addopen(&actions, target, "/dev/null", target == 0 ? O_RDONLY : O_WRONLY, 0)
            }
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        let environment: [String] = ["PATH=/usr/bin:/bin", "LC_ALL=C"]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer { for pointer in argv + envp { free(pointer) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, arguments[0], &actions, &attributes, argv, envp)
        guard rc == 0 else { throw SystemCallError("posix_spawn \(arguments[0])", errno: rc) }
        self.pid = pid
    }

    /// The identity of the child; it cannot be recycled before it is reaped.
    func identity() throws -> ProcessIdentity {
        try #require(ProcessTable.identity(of: pid))
    }

    /// `waitpid`, blocking: the raw wait status.
    @discardableResult
    func reap() -> Int32 {
        precondition(!reaped)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        reaped = true
        return status
    }

    /// `waitpid(WNOHANG)`: whether the child has ended (and is now reaped).
    func reapIfEnded() -> Bool {
        var status: Int32 = 0
        var rc: Int32
        repeat { rc = waitpid(pid, &status, WNOHANG) } while rc < 0 && errno == EINTR
        if rc == pid { reaped = true }
        return rc == pid
    }

    deinit {
        if !reaped {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        }
    }
}

/// The signal that ended a process, from a wait status; nil when it exited.
func terminatingSignal(_ status: Int32) -> Int32? {
    let signal = status & 0x7f
    return signal == 0 ? nil : signal
}

/// The exit code, from a wait status; nil when a signal ended it.
func exitCode(_ status: Int32) -> Int32? {
    status & 0x7f == 0 ? (status >> 8) & 0xff : nil
}

/// Polls `condition` every 10 ms for up to `timeout`.
func eventually(_ timeout: Duration = .seconds(10), _ condition: () -> Bool) async -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: timeout)
    while clock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

/// The running (not zombie) processes whose command line is exactly `arguments`. Each test uses
/// its own sleep duration, so this finds the processes a test started, wherever they were
/// reparented.
func running(_ arguments: [String]) -> [Int32] {
    let wanted = Array(arguments.joined(separator: "\0").utf8) + [0]
    return ProcessTable.records().filter { record in
        guard !record.hasExited,
            let text = try? FileDescriptor.open("/proc/\(record.identity.pid)/cmdline", flags: O_RDONLY)
                .readToEnd(limit: 4096)
        else { return false }
        return text == wanted
    }.map(\.identity.pid)
}

/// Kills what `running(arguments)` finds: the safety net after a test.
func killAll(_ arguments: [String]) {
    for pid in running(arguments) { kill(pid, SIGKILL) }
}

/// Kills `process` and its whole tree, and reaps it.
func killTree(_ process: TestProcess) {
    if let identity = ProcessTable.identity(of: process.pid) {
        for member in ProcessTable.tree(of: identity, in: ProcessTable.snapshot()) {
            kill(member.identity.pid, SIGKILL)
        }
    }
    if !process.reaped {
        kill(process.pid, SIGKILL)
        process.reap()
    }
}
