import Glibc
import Testing
import WritPolicy

/// A private temporary directory, removed with its files when the test ends.
final class TemporaryDirectory {
    let path: String
    private var files: [String] = []

    init() throws {
        var template = Array("/tmp/writ-policy-test-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer in buffer.baseAddress.flatMap { mkdtemp($0) } }
        guard made != nil else { throw LoadTestError(message: "mkdtemp failed: errno \(errno)") }
        path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Writes `bytes` to a new file in the directory and returns its path.
    func write(_ name: String, _ bytes: [UInt8], mode: mode_t = 0o600) throws -> String {
        let file = path + "/" + name
        let fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw LoadTestError(message: "open \(file): errno \(errno)") }
        defer { close(fd) }
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else { throw LoadTestError(message: "short write to \(file)") }
        files.append(file)
        return file
    }

    deinit {
        for file in files { unlink(file) }
        rmdir(path)
    }
}

struct LoadTestError: Error {
    var message: String
}

@Suite("Policy.load")
struct LoadTests {
    @Test("a file is read and parsed; issues carry its path")
    func readsFile() throws {
        let dir = try TemporaryDirectory()
        let good = try dir.write("good.yaml", Array(minimalPolicy.utf8))
        #expect(try Policy.load(path: good).flows.map(\.name) == ["ops-sudo"])

        let bad = try dir.write("bad.yaml", Array((minimalPolicy + "\n    approvals: 0").utf8))
        #expect(throws: PolicyErrors.self) { try Policy.load(path: bad) }
        do {
            _ = try Policy.load(path: bad)
        } catch {
            #expect(error.description == "\(bad):7:16: 'approvals' in flow ops-sudo must be at least 1, not 0")
        }
    }

    @Test("a missing file is one issue at 1:1 naming errno")
    func missingFile() {
        let path = "/nonexistent/writ/policy.yaml"
        do {
            _ = try Policy.load(path: path)
            Issue.record("a missing file loaded")
        } catch {
            #expect(
                error.issues == [
                    PolicyIssue(
                        file: path,
                        line: 1,
                        column: 1,
                        message: "cannot open the policy file: No such file or directory (errno 2)"
                    )
                ]
            )
        }
    }

    @Test("a directory cannot be read as a policy")
    func directory() throws {
        let dir = try TemporaryDirectory()
        do {
            _ = try Policy.load(path: dir.path)
            Issue.record("a directory loaded")
        } catch {
            #expect(error.description == "\(dir.path):1:1: cannot read the policy file: Is a directory (errno 21)")
        }
    }

    @Test("bytes that are not UTF-8 are reported where they are")
    func invalidUTF8() throws {
        let dir = try TemporaryDirectory()
        let bytes = Array("version: 1\nflows:\n  - name: caf".utf8) + [0xE9] + Array("\n".utf8)
        let path = try dir.write("latin1.yaml", bytes)
        do {
            _ = try Policy.load(path: path)
            Issue.record("invalid UTF-8 loaded")
        } catch {
            #expect(error.description == "\(path):3:14: the file is not valid UTF-8 here: save it as UTF-8")
        }
    }

    @Test("PolicyIssue and PolicyErrors print as file:line:column: message, one per line")
    func descriptions() {
        let errors = PolicyErrors(issues: [
            PolicyIssue(file: "/etc/writ/policy.yaml", line: 3, column: 5, message: "first"),
            PolicyIssue(file: "/etc/writ/policy.yaml", line: 10, column: 1, message: "second"),
        ])
        #expect(errors.issues[0].description == "/etc/writ/policy.yaml:3:5: first")
        #expect(errors.description == "/etc/writ/policy.yaml:3:5: first\n/etc/writ/policy.yaml:10:1: second")
    }
}
