import AsyncHTTPClient
import FoundationEssentials
import Glibc
import NIOCore
import Synchronization
import Testing

@testable import WritIntegrations

/// A failure of the test harness itself (not of the code under test).
struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Tests/Fakes/fake_pagerduty.py as a child process on a free loopback port, with its control API.
///
/// The child is started through a tiny Python wrapper that exits as soon as its stdin reaches EOF,
/// and only this process holds the other end of that pipe: if the test process dies without
/// calling `stop`, the fake goes with it.
final class FakePagerDuty: Sendable {
    /// The token the fake accepts by default.
    static let token = "pd-fake-token"

    /// `http://127.0.0.1:<port>`.
    let url: String
    private let pid: pid_t
    private let stdinWriter: Int32
    private let stdoutReader: Int32

    private init(url: String, pid: pid_t, stdinWriter: Int32, stdoutReader: Int32) {
        self.url = url
        self.pid = pid
        self.stdinWriter = stdinWriter
        self.stdoutReader = stdoutReader
    }

    /// The repository root, from this file's path.
    static let repository: String = {
        var parts = String(#filePath).split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)  // Tests/WritIntegrationsTests/FakePagerDuty.swift
        return parts.joined(separator: "/")
    }()

    /// Runs `body` with a fresh fake and stops it afterwards, whatever happens.
    static func with<T>(_ body: (FakePagerDuty) async throws -> T) async throws -> T {
        let fake = try await start()
        do {
            let result = try await body(fake)
            fake.stop()
            return result
        } catch {
            fake.stop()
            throw error
        }
    }

    /// Starts the fake and waits (up to 20 s) for its `READY <url>` line.
    static func start() async throws -> FakePagerDuty {
        let script = repository + "/Tests/Fakes/fake_pagerduty.py"
        let wrapper = """
            import os, runpy, sys, threading
            threading.Thread(target=lambda: (sys.stdin.buffer.read(), os._exit(0)), daemon=True).start()
            sys.argv = sys.argv[1:]
            sys.path.insert(0, os.path.dirname(sys.argv[0]))
            runpy.run_path(sys.argv[0], run_name="__main__")
            """
        let python = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3"

        let arguments = [python, "-B", "-c", wrapper, script, "--port", "0"]
        let (pid, input, output) = try spawnLock.withLock { _ in try spawn(python, arguments) }
        let fake = FakePagerDuty(url: "", pid: pid, stdinWriter: input, stdoutReader: output)

        _ = fcntl(output, F_SETFL, fcntl(output, F_GETFL) | O_NONBLOCK)
        var line: [UInt8] = []
        let clock = ContinuousClock()
        let giveUp = clock.now + .seconds(20)
        while !line.contains(0x0A) {
            var chunk = [UInt8](repeating: 0, count: 256)
            let count = chunk.withUnsafeMutableBytes { read(output, $0.baseAddress, $0.count) }
            if count > 0 {
                line += chunk[0..<count]
            } else if count == 0 || (errno != EAGAIN && errno != EINTR) || clock.now > giveUp {
                fake.stop()
                throw HarnessError("the fake did not print READY (got \"\(String(decoding: line, as: UTF8.self))\")")
            } else {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        let text = String(decoding: line.prefix { $0 != 0x0A }, as: UTF8.self)
        guard text.hasPrefix("READY http://") else {
            fake.stop()
            throw HarnessError("unexpected first line from the fake: \(text)")
        }
        return FakePagerDuty(
            url: String(text.dropFirst("READY ".count)),
            pid: pid,
            stdinWriter: input,
            stdoutReader: output
        )
    }

    /// Only one fake is started at a time, so no child inherits another's pipes between `pipe`
    /// and `fcntl(FD_CLOEXEC)` (Glibc's module has no `pipe2`).
    private static let spawnLock = Mutex(())

    /// Starts `arguments` with new pipes as its stdin and stdout; the pid, the writing end of its
    /// stdin and the reading end of its stdout.
    private static func spawn(_ program: String, _ arguments: [String]) throws -> (pid_t, Int32, Int32) {
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
        let spawned = posix_spawnp(&pid, program, &actions, nil, &argv, environ)
        close(input[0])
        close(output[1])
        guard spawned == 0 else {
            close(input[1])
            close(output[0])
            throw HarnessError("cannot start \(program): error \(spawned)")
        }
        return (pid, input[1], output[0])
    }

    /// SIGTERM, EOF on its stdin, and waits for it (SIGKILL after 3 s).
    func stop() {
        kill(pid, SIGTERM)
        close(stdinWriter)
        var status: Int32 = 0
        for _ in 0..<300 {
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid || (reaped < 0 && errno != EINTR) {
                close(stdoutReader)
                return
            }
            usleep(10_000)
        }
        kill(pid, SIGKILL)
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        close(stdoutReader)
    }

    // MARK: - Control API

    /// POSTs `json` to `/_fake/<path>`; the answer's body (a non-2xx answer fails the test).
    @discardableResult
    func post(_ path: String, _ json: String) async throws -> String {
        var request = HTTPClientRequest(url: url + "/_fake/" + path)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: json))
        return try await send(request)
    }

    /// GETs `/_fake/<pathAndQuery>`; the answer's body.
    func get(_ pathAndQuery: String) async throws -> String {
        try await send(HTTPClientRequest(url: url + "/_fake/" + pathAndQuery))
    }

    private func send(_ request: HTTPClientRequest) async throws -> String {
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 64 << 20)
        let text = String(buffer: body)
        guard (200..<300).contains(response.status.code) else {
            throw HarnessError("\(request.url) answered \(response.status.code): \(text)")
        }
        return text
    }

    /// Seeds users, escalation policies, schedules and on-calls.
    func seed(_ seed: Seed) async throws {
        let data = try JSONEncoder().encode(seed)
        try await post("seed", String(decoding: data, as: UTF8.self))
    }

    /// The API requests the fake recorded, optionally only those to `path`.
    func requests(path: String? = nil) async throws -> [RecordedRequest] {
        let text = try await get("requests" + (path.map { "?path=" + $0 } ?? ""))
        return try JSONDecoder().decode(RecordedRequests.self, from: Data(text.utf8)).items
    }
}

/// The body of `POST /_fake/seed`.
struct Seed: Encodable {
    struct User: Encodable {
        var id: String
        var name: String
        var email: String
    }
    struct Named: Encodable {
        var id: String
        var name: String
    }
    struct Shift: Encodable {
        var user: String
        var escalation_policy: String
        var schedule: String?
        var escalation_level: Int
        var start: String?
        var end: String?

        init(
            user: String,
            policy: String,
            schedule: String? = nil,
            level: Int = 1,
            start: Int64? = nil,
            end: Int64? = nil
        ) {
            self.user = user
            self.escalation_policy = policy
            self.schedule = schedule
            self.escalation_level = level
            self.start = start.map(ISO8601Time.format)
            self.end = end.map(ISO8601Time.format)
        }
    }

    var users: [User] = []
    var escalation_policies: [Named] = []
    var schedules: [Named] = []
    var oncalls: [Shift] = []
}

/// `GET /_fake/requests`.
struct RecordedRequests: Decodable {
    var items: [RecordedRequest]
}

/// One API request as the fake recorded it.
struct RecordedRequest: Decodable {
    var path: String
    var params: [String: [String]]
    var authorization: String?
    var accept: String?
    var accept_v2: Bool
    var status: Int?
}

/// Seconds since the epoch, now.
func currentTime() -> Int64 {
    Int64(time(nil))
}

/// A client of `fake` with the fake's token (or `token`) and a deadline of `timeout` ms.
func client(_ fake: FakePagerDuty, token: String = FakePagerDuty.token, timeout: Int = 3000) -> PagerDutyClient {
    PagerDutyClient(configuration: PagerDutyConfiguration(apiURL: fake.url, token: token, timeoutMilliseconds: timeout))
}

/// What `body` threw as a `PagerDutyError`, or nil when it returned (another error fails the test).
func failure<T>(_ body: () async throws -> T) async -> PagerDutyError? {
    do {
        _ = try await body()
        return nil
    } catch let error as PagerDutyError {
        return error
    } catch {
        Issue.record("not a PagerDutyError: \(error)")
        return nil
    }
}

/// Seconds `body` took, and its result.
func timed<T>(_ body: () async -> T) async -> (T, Double) {
    let clock = ContinuousClock()
    let start = clock.now
    let result = await body()
    let elapsed = clock.now - start
    return (result, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
}
