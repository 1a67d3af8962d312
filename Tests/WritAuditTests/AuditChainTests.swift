import Glibc
import Testing
import WritAudit
import WritCore

/// A chain of `n` records built the way AuditLog writes them.
func chain(_ n: Int) -> [String] {
    var lines: [String] = []
    var prev = AuditLine.genesis
    for i in 1...n {
        let line = AuditLine.render(
            seq: Int64(i),
            prev: prev,
            AuditEvent(
                time: 1_700_000_000 + Int64(i),
                event: "grant.add",
                actor: "cli:root",
                fields: [.init("grant", "g_\(i)")]
            )
        )
        lines.append(line)
        prev = AuditChain.hash(line)
    }
    return lines
}

@Suite("AuditChain.verify")
struct AuditChainTests {
    @Test("an untouched chain verifies and reports its head")
    func intact() {
        let lines = chain(5)
        #expect(AuditChain.verify(lines) == .intact(records: 5, headSeq: 5, head: AuditChain.hash(lines[4])))
        #expect(AuditChain.verify([]) == .intact(records: 0, headSeq: 0, head: AuditLine.genesis))
    }

    @Test("an edited record shows at the next line")
    func edited() {
        var lines = chain(5)
        lines[1] = lines[1].replacingOccurrences("cli:root", "cli:mallory")
        guard case .broken(let line, let reason) = AuditChain.verify(lines) else {
            Issue.record("edit not detected")
            return
        }
        #expect(line == 3)
        #expect(reason.contains("record 2 was edited"))
    }

    @Test("a dropped record is named")
    func dropped() {
        var lines = chain(5)
        lines.remove(at: 2)
        #expect(
            AuditChain.verify(lines)
                == .broken(line: 3, reason: "records 3…3 are missing before record 4: records were dropped")
        )
    }

    @Test("an inserted copy and a reordering are found")
    func insertedAndReordered() {
        var inserted = chain(4)
        inserted.insert(inserted[1], at: 2)
        guard case .broken(3, let r1) = AuditChain.verify(inserted) else {
            Issue.record("insert not detected")
            return
        }
        #expect(r1.contains("reordered or inserted"))
        var reordered = chain(4)
        reordered.swapAt(1, 2)
        guard case .broken(2, _) = AuditChain.verify(reordered) else {
            Issue.record("reorder not detected")
            return
        }
    }

    @Test("a log whose first records were removed, or rewritten from record 1, is refused")
    func start() {
        #expect(
            AuditChain.verify(Array(chain(4).dropFirst()))
                == .broken(line: 1, reason: "the log starts at record 2, not 1: earlier records were removed")
        )
        var lines = chain(2)
        lines[0] = AuditLine.render(
            seq: 1,
            prev: String(repeating: "a", count: 64),
            AuditEvent(time: 1, event: "x", actor: "y")
        )
        guard case .broken(1, _) = AuditChain.verify(lines) else {
            Issue.record("bad genesis not detected")
            return
        }
    }

    @Test("an edit of the last record changes the head, which is what an outside copy catches")
    func lastRecord() {
        var lines = chain(3)
        let head = AuditChain.hash(lines[2])
        lines[2] = lines[2].replacingOccurrences("g_3", "g_X")
        guard case .intact(_, _, let newHead) = AuditChain.verify(lines) else {
            Issue.record("unexpected break")
            return
        }
        #expect(newHead != head)
    }

    @Test("garbage lines are refused", arguments: ["", "{}", "{\"seq\":1}", "{\"seq\":x,\"prev\":\"\"}", "not json"])
    func garbage(line: String) {
        guard case .broken(1, _) = AuditChain.verify([line]) else {
            Issue.record("garbage accepted: \(line)")
            return
        }
    }

    @Test("user text never breaks a record across lines, and the chain fields come first")
    func rendering() {
        let line = AuditLine.render(
            seq: 7,
            prev: AuditLine.genesis,
            AuditEvent(
                time: 5,
                event: "grant.add",
                actor: "cli:\"root\"",
                fields: [.init("reason", "a\nb\u{1B}[31m\u{2028}"), .init("seq", "99")]
            )
        )
        #expect(!line.contains("\n"))
        #expect(line.hasPrefix("{\"seq\":7,\"prev\":\"\(AuditLine.genesis)\",\"time\":5,"))
        #expect(line.contains("\"reason\":\"a\\nb\\u001b[31m\\u2028\""))
        #expect(!line.contains("\"seq\":\"99\""))  // a field cannot shadow the chain fields
        #expect(AuditLine.chainFields(line)?.seq == 7)
    }
}

extension String {
    func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
