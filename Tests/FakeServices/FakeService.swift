import AsyncHTTPClient
import Glibc
import NIOCore

/// A failure of the test harness itself (not of the code under test).
public struct HarnessError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// One of Tests/Fakes/ (fake_slack.py, fake_pagerduty.py) as a child process on a free loopback
/// port, with its control API. The test targets of WritIntegrations and WritSlack share it.
///
/// The child is started through a tiny Python wrapper that exits as soon as its stdin reaches EOF,
/// and only this process holds the other end of that pipe: if the test process dies without
/// calling `stop`, the fake goes with it.
public final class FakeService: Sendable {
    /// `http://127.0.0.1:<port>`.
    public let url: String
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
    public static let repository: String = {
        var parts = String(#filePath).split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)  // Tests/FakeServices/FakeService.swift
        return parts.joined(separator: "/")
    }()

    /// Runs `body` with a fresh fake and stops it afterwards, whatever happens.
    public static func with<T>(
        script: String,
        arguments: [String] = [],
        _ body: (FakeService) async throws -> T
    ) async throws -> T {
        let fake = try await start(script: script, arguments: arguments)
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
    /// `script` is a file name in Tests/Fakes/.
    public static func start(script name: String, arguments extra: [String] = []) async throws -> FakeService {
        let script = repository + "/Tests/Fakes/" + name
        let wrapper = """
            import os, runpy, sys, threading
            threading.Thread(target=lambda: (sys.stdin.buffer.read(), os._exit(0)), daemon=True).start()
            sys.argv = sys.argv[1:]
            sys.path.insert(0, os.path.dirname(sys.argv[0]))
            runpy.run_path(sys.argv[0], run_name="__main__")
            """
        let python = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3"

        let arguments = [python, "-B", "-c", wrapper, script, "--port", "0"] + extra
        let child = try ChildProcess.spawn(arguments)
        let (pid, input, output) = (child.pid, child.stdinWriter, child.stdoutReader)
        let fake = FakeService(url: "", pid: pid, stdinWriter: input, stdoutReader: output)

        _ = fcntl(output, F_SETFL, fcntl(output, F_GETFL) | O_NONBLOCK)
        var line: [UInt8] = []
        let clock = ContinuousClock()
        let giveUp = clock.now + .seconds(20)
        while !line.contains(0x0A) {
            var chunk = [UInt8](repeating: 0, count: 256)
            let count = chunk.withUnsafeMutableBytes { Glibc.read(output, $0.baseAddress, $0.count) }
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
        return FakeService(
            url: String(text.dropFirst("READY ".count)),
            pid: pid,
            stdinWriter: input,
            stdoutReader: output
        )
    }

    /// SIGTERM, EOF on its stdin, and waits for it (SIGKILL after 3 s).
    public func stop() {
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
    public func post(_ path: String, _ json: String) async throws -> String {
        var request = HTTPClientRequest(url: url + "/_fake/" + path)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: json))
        return try await send(request)
    }

    /// GETs `/_fake/<pathAndQuery>`; the answer's body.
    public func get(_ pathAndQuery: String) async throws -> String {
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
}
