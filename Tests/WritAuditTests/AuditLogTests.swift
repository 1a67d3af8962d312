import Glibc
import Testing
import WritAudit
import WritStore

/// A fresh root-only directory for one test, removed afterwards.
final class TempDir {
    let path: String
    init() {
        var template = Array("/tmp/writ-audit-test.XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        chmod(path, 0o700)
    }
    deinit { _ = system("rm -rf '\(path)'") }
}

@Suite("AuditLog")
struct AuditLogTests {
    @Test("appends create a root-only file and one verifiable chain")
    func appendAndVerify() throws {
        let dir = TempDir()
        let log = AuditLog(path: dir.path + "/log/audit.jsonl")
        for i in 1...20 {
            let (seq, _) = try log.append(
                AuditEvent(time: Int64(i), event: "test", actor: "root", fields: [.init("i", "\(i)")])
            )
            #expect(seq == Int64(i))
        }
        let lines = try log.lines()
        #expect(lines.count == 20)
        guard case .intact(20, 20, _) = AuditChain.verify(lines) else {
            Issue.record("chain broken")
            return
        }
        var st = stat()
        #expect(stat(log.path, &st) == 0 && st.st_mode & 0o777 == 0o600 && st.st_uid == 0)
        #expect(stat(dir.path + "/log", &st) == 0 && st.st_mode & 0o777 == 0o700)
    }

    @Test("a log that is a symlink, or not root's alone, is refused")
    func refusesInsecureFiles() throws {
        let dir = TempDir()
        let path = dir.path + "/audit.jsonl"
        #expect(symlink("/etc/hostname", path) == 0)
        #expect(throws: StoreError.symlink(path: path)) {
            try AuditLog(path: path).append(AuditEvent(time: 1, event: "x", actor: "y"))
        }
        unlink(path)
        _ = try AuditLog(path: path).append(AuditEvent(time: 1, event: "x", actor: "y"))
        chmod(path, 0o644)
        #expect(throws: StoreError.self) {
            try AuditLog(path: path).append(AuditEvent(time: 2, event: "x", actor: "y"))
        }
    }

    @Test("appending after a garbled last line is refused instead of forking the chain")
    func refusesGarbledTail() throws {
        let dir = TempDir()
        let log = AuditLog(path: dir.path + "/audit.jsonl")
        _ = try log.append(AuditEvent(time: 1, event: "x", actor: "y"))
        let fd = open(log.path, O_WRONLY | O_APPEND)
        _ = "garbage\n".withCString { write(fd, $0, 8) }
        close(fd)
        #expect(throws: StoreError.self) { try log.append(AuditEvent(time: 2, event: "x", actor: "y")) }
    }
}
