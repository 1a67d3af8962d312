import Glibc
import Synchronization

/// A child process with pipes on its stdin and stdout (stderr is the test's), started with
/// posix_spawn: Foundation's `Process.waitUntilExit` has hung in test processes here. Reads
/// never block a thread of the cooperative pool: they poll a non-blocking pipe.
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    public let stdinWriter: Int32
    public let stdoutReader: Int32
    private var buffer: [UInt8] = []
    private var reaped: Int32?

    private init(pid: pid_t, stdinWriter: Int32, stdoutReader: Int32) {
        self.pid = pid
        self.stdinWriter = stdinWriter
        self.stdoutReader = stdoutReader
        _ = fcntl(stdoutReader, F_SETFL, fcntl(stdoutReader, F_GETFL) | O_NONBLOCK)
    }

    /// One child starts at a time, so none inherits another's pipes between `pipe` and
    /// `fcntl(FD_CLOEXEC)` (Glibc's module has no `pipe2`).
    private static let spawnLock = Mutex(())

    /// The path of an executable product built beside the running test bundle.
    public static func built(_ name: String) throws -> String {
        var exe = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &exe, exe.count - 1)
        guard n > 0 else { throw HarnessError("readlink /proc/self/exe: errno \(errno)") }
        let dir = String(decoding: exe[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self).split(separator: "/")
            .dropLast()
        return "/" + dir.joined(separator: "/") + "/" + name
    }

    /// Starts `arguments` (`arguments[0]` is looked up in PATH).
    public static func spawn(_ arguments: [String]) throws -> ChildProcess {
        try spawnLock.withLock { _ throws(HarnessError) -> ChildProcess in
            var input: [Int32] = [-1, -1]
            var output: [Int32] = [-1, -1]
            guard pipe(&input) == 0 else { throw HarnessError("pipe: errno \(errno)") }
            guard pipe(&output) == 0 else {
                close(input[0])
                close(input[1])
                throw HarnessError("pipe: errno \(errno)")
            }
            for fd in input + output { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_adddup2(&actions, input[0], 0)
            posix_spawn_file_actions_adddup2(&actions, output[1], 1)
            var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
            defer { for pointer in argv { free(pointer) } }
            var pid: pid_t = 0
            let spawned = posix_spawnp(&pid, arguments[0], &actions, nil, &argv, environ)
            close(input[0])
            close(output[1])
            guard spawned == 0 else {
                close(input[1])
                close(output[0])
                throw HarnessError("cannot start \(arguments[0]): error \(spawned)")
            }
            return ChildProcess(pid: pid, stdinWriter: input[1], stdoutReader: output[0])
        }
    }

    /// Runs `arguments` to the end, with stdin closed; its exit status and its stdout.
    public static func run(
        _ arguments: [String],
        timeout: Duration = .seconds(120)
    ) async throws -> (
        status: Int32, output: String
    ) {
        let child = try spawn(arguments)
        close(child.stdinWriter)
        var out: [UInt8] = []
        let giveUp = ContinuousClock.now + timeout
        while let chunk = try await child.read(until: giveUp) { out += chunk }
        return (child.wait(), String(decoding: out, as: UTF8.self))
    }

    /// Writes one line to the child's stdin.
    public func send(_ line: String) throws {
        let bytes = Array((line + "\n").utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { write(stdinWriter, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw HarnessError("the child's stdin is closed (errno \(errno))") }
            sent += n
        }
    }

    /// The next line of the child's stdout, without its newline.
    public func receiveLine(timeout: Duration = .seconds(60)) async throws -> String {
        let giveUp = ContinuousClock.now + timeout
        while true {
            if let nl = buffer.firstIndex(of: 0x0A) {
                let line = String(decoding: buffer[..<nl], as: UTF8.self)
                buffer.removeSubrange(...nl)
                return line
            }
            guard let chunk = try await read(until: giveUp) else {
                throw HarnessError(
                    "the child ended before a whole line (got \"\(String(decoding: buffer, as: UTF8.self))\")"
                )
            }
            buffer += chunk
        }
    }

    /// What the child wrote next; nil at EOF.
    private func read(until giveUp: ContinuousClock.Instant) async throws -> [UInt8]? {
        while true {
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = chunk.withUnsafeMutableBytes { Glibc.read(stdoutReader, $0.baseAddress, $0.count) }
            if n > 0 { return Array(chunk[..<n]) }
            if n == 0 { return nil }
            guard errno == EAGAIN || errno == EINTR else { throw HarnessError("read: errno \(errno)") }
            guard ContinuousClock.now < giveUp else { throw HarnessError("the child said nothing in time") }
            try await Task.sleep(for: .milliseconds(1))
        }
    }

    public func signal(_ sig: Int32) { kill(pid, sig) }

    /// Waits for the child to end; its exit status (128 + signal when killed).
    @discardableResult
    public func wait() -> Int32 {
        if let reaped { return reaped }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return reap(status)
    }

    private func reap(_ status: Int32) -> Int32 {
        close(stdoutReader)
        let code = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + status & 0x7f
        reaped = code
        return code
    }

    /// Waits up to `limit` for the child to end: its exit status, or nil while it still runs.
    public func exited(within limit: Duration) async -> Int32? {
        let giveUp = ContinuousClock.now + limit
        while ContinuousClock.now < giveUp {
            if reaped != nil { return reaped }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid { return reap(status) }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return nil
    }

    /// EOF on its stdin, then waits for it.
    @discardableResult
    public func finish() -> Int32 {
        close(stdinWriter)
        return wait()
    }
}
