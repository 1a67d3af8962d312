import FoundationEssentials
import Glibc
import Testing
import WritExpr

@testable import WritHooks

/// A mktemp directory (mode 0755, ours) that holds hooks written at test time, and `out`, a
/// sticky world-writable directory where hooks running as `nobody` can leave files.
struct Sandbox {
    let root: String

    /// The directory of the repository (for hooks/python and examples/hooks).
    static let repository: String = {
        var parts = String(#filePath).split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)  // Tests/WritHooksTests/HookTestSupport.swift
        return parts.joined(separator: "/")
    }()

    /// hooks/python in the repository: what writd passes as `libraryPath`.
    static var library: String { repository + "/hooks/python" }

    /// `library` with symlinks resolved: what the hook sees in PYTHONPATH.
    static var resolvedLibrary: String {
        guard let real = realpath(library, nil) else { return library }
        defer { free(real) }
        return String(cString: real)
    }

    /// Runs `body` with a fresh sandbox and removes it afterwards, whatever happens.
    static func with<T>(_ body: (Sandbox) async throws -> T) async throws -> T {
        var template = Array("/tmp/writ-hooks-test-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw SandboxError("mkdtemp failed: errno \(errno)") }
        let sandbox = Sandbox(root: String(cString: made))
        defer { try? FileManager.default.removeItem(atPath: sandbox.root) }
        chmod(sandbox.root, 0o755)
        mkdir(sandbox.out, 0o755)
        chmod(sandbox.out, 0o1777)
        return try await body(sandbox)
    }

    /// Where hooks may write (pid files, …).
    var out: String { root + "/out" }

    /// Writes `text` to `name` in the sandbox with `mode`; the path.
    @discardableResult
    func write(_ name: String, _ text: String, mode: mode_t = 0o755) throws -> String {
        let path = root + "/" + name
        // O_CLOEXEC: a process another test forks meanwhile must not keep the file open for
        // writing (execve would fail with ETXTBSY).
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SandboxError("cannot write \(path): errno \(errno)") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        var done = 0
        while done < bytes.count {
            let n = bytes[done...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { throw SandboxError("cannot write \(path): errno \(errno)") }
            done += n
        }
        fchmod(fd, mode)
        return path
    }

    /// Copies a file of the repository (an example) into the sandbox, mode 0755.
    func copy(fromRepository relative: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: Sandbox.repository + "/" + relative) else {
            throw SandboxError("cannot read \(relative)")
        }
        let name = String(relative.split(separator: "/").last!)
        return try write(name, String(decoding: data, as: UTF8.self))
    }

    /// A file's text, or nil when it does not exist.
    func read(_ path: String) -> String? {
        FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Waits up to `seconds` for a file to appear; its text.
    func waitFor(_ path: String, seconds: Double = 5) async -> String? {
        let clock = ContinuousClock()
        let end = clock.now + .milliseconds(Int(seconds * 1000))
        while clock.now < end {
            if let text = read(path), !text.isEmpty { return text }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }
}

struct SandboxError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The runner the tests use: `nobody` when root, else our own user.
func testRunner(library: String? = Sandbox.library) -> HookRunner {
    HookRunner(user: geteuid() == 0 ? "nobody" : nil, libraryPath: library)
}

/// A request document like writd's.
func sampleInput(
    event: String = "on_request",
    user: String = "alice",
    reason: String = "INC-1 restart nginx",
    fields: [String: String] = ["ticket": "INC-1"],
    context: [String: JSONValue] = ["on_call": false],
    duration: Int64 = 1800,
    now: Int64 = 1_764_000_000,
    decision: HookInput.Decision? = nil
) -> HookInput {
    HookInput(
        event: event,
        request: HookInput.Request(
            id: "r-0001",
            kind: "grant",
            user: user,
            uid: 1001,
            groups: ["sre"],
            capability: "sudo",
            flow: "ops-sudo",
            host: "web-01",
            runas: "root",
            commands: ["/usr/bin/systemctl restart nginx"],
            duration: duration,
            reason: reason,
            fields: fields,
            createdAt: now - 5
        ),
        context: context,
        time: HookInput.Time(now: now),
        policy: HookInput.PolicyInfo(version: "sha256:abc", gitCommit: nil, flow: "ops-sudo"),
        decision: decision
    )
}

/// Whether process `pid` is gone: no /proc entry, or a zombie that is not our child (a killed
/// grandchild the host's init has yet to reap).
func isGone(_ pid: Int32) -> Bool {
    guard let stat = FileManager.default.contents(atPath: "/proc/\(pid)/stat") else { return true }
    let text = String(decoding: stat, as: UTF8.self)
    guard let close = text.lastIndex(of: ")") else { return true }
    let fields = text[text.index(after: close)...].split(separator: " ")
    // fields[0] is the state, fields[1] the parent.
    return fields.count > 1 && fields[0] == "Z" && Int32(fields[1]) != getpid()
}

/// Waits up to a second for `pid` to be gone (a SIGKILL is delivered asynchronously).
func becomesGone(_ pid: Int32) async -> Bool {
    for _ in 0..<50 {
        if isGone(pid) { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return isGone(pid)
}

/// A program started by the test (the local HTTP server), killed and reaped by `stop()`.
struct Background {
    let pid: pid_t

    /// posix_spawn of `arguments` (the first is the program) with a minimal environment.
    static func start(_ arguments: [String]) throws -> Background {
        let environment = ["PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"]
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, arguments[0], nil, nil, argv, envp)
        guard rc == 0 else { throw SandboxError("posix_spawn \(arguments[0]): \(rc)") }
        return Background(pid: pid)
    }

    func stop() {
        kill(pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    }
}

/// A tiny HTTP server for the examples, on 127.0.0.1 and a random port: GET …/INC-1 is 200, any
/// other GET 404; a POST body is saved to `posted.json` in the directory it is given.
let httpServerScript = """
    import http.server, os, sys

    out = sys.argv[1]

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            code = 200 if self.path.rstrip("/").endswith("/INC-1") else 404
            body = b'{"key": "INC-1"}' if code == 200 else b'{"error": "no such ticket"}'
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with open(os.path.join(out, "posted.tmp"), "wb") as f:
                f.write(body)
            os.rename(os.path.join(out, "posted.tmp"), os.path.join(out, "posted.json"))
            self.send_response(204)
            self.end_headers()

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    with open(os.path.join(out, "port.tmp"), "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(os.path.join(out, "port.tmp"), os.path.join(out, "port"))
    server.serve_forever()
    """
