import Dispatch
import Glibc
import Testing
import WritAudit
import WritStore

/// Runs blocking file work (an fsync per record) on a Dispatch thread, not on Swift's cooperative
/// pool: on two cores, blocking the pool's threads would stall every timing-sensitive async test
/// running beside this suite.
func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
    }
}

@Suite("AuditLog rotation")
struct AuditRotationTests {
    static func event(_ i: Int) -> AuditEvent {
        AuditEvent(time: Int64(i), event: "test", actor: "root", fields: [.init("i", "\(i)"), .init("id", "e_\(i)")])
    }

    @Test("by size: the chain goes on across files, and verifyAll checks them as one")
    func bySize() async throws {
        let dir = TempDir()
        let log = AuditLog(path: dir.path + "/audit.jsonl", rotateBytes: 1000, keep: 50)
        try await offPool { for i in 1...40 { try log.append(Self.event(i)) } }
        let rotated = log.rotatedFiles()
        #expect(rotated.count >= 3, "rotated \(rotated.count) times")
        // Every file after the first starts with the link record, numbered on from the last one.
        let current = try log.lines()
        #expect(AuditLine.field("event", in: current[0]) == AuditLog.rotateEvent)
        #expect(AuditLine.field("previous", in: current[0]) == "audit.jsonl.\(rotated.last!.0)")
        let report = try log.verifyAll()
        #expect(report.files.count == rotated.count + 1)
        #expect(report.firstSeq == 1)
        guard case .intact(let records, let head, _) = report.verdict else {
            Issue.record("chain broken: \(report.verdict) in \(report.brokenFile ?? "?")")
            return
        }
        #expect(records == 40 + rotated.count)
        #expect(head == Int64(40 + rotated.count))
        // The newest event, not the link record, is what the outbox's restart check sees.
        #expect(AuditLine.field("id", in: try log.lastRecord() ?? "") == "e_40")
    }

    @Test("a rotated file removed or edited breaks the chain, and the file is named")
    func tamperAcrossFiles() async throws {
        let dir = TempDir()
        let log = AuditLog(path: dir.path + "/audit.jsonl", rotateBytes: 600, keep: 50)
        try await offPool { for i in 1...30 { try log.append(Self.event(i)) } }
        let rotated = log.rotatedFiles()
        #expect(rotated.count >= 3)
        let middle = rotated[1].1
        let saved = try log.lines(of: middle)
        unlink(middle)
        let dropped = try log.verifyAll()
        #expect(dropped.brokenFile == rotated[2].1, "\(dropped)")
        guard case .broken(1, let reason) = dropped.verdict else {
            Issue.record("a removed file went unnoticed: \(dropped.verdict)")
            return
        }
        #expect(reason.contains("missing"), "\(reason)")
        // Put it back edited: the next file's link record no longer follows it.
        var edited = saved
        edited[edited.count - 1] = edited[edited.count - 1].replacingOccurrences("\"root\"", "\"mallory\"")
        let text = edited.joined(separator: "\n") + "\n"
        let fd = open(middle, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        _ = Array(text.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        let report = try log.verifyAll()
        #expect(report.brokenFile == rotated[2].1)
        guard case .broken(1, let why) = report.verdict else {
            Issue.record("an edited file went unnoticed")
            return
        }
        #expect(why.contains("was edited"), "\(why)")
    }

    @Test("retention deletes the oldest files; the rest still verifies, from the first record kept")
    func retention() async throws {
        let dir = TempDir()
        let log = AuditLog(path: dir.path + "/audit.jsonl", rotateBytes: 500, keep: 2)
        try await offPool { for i in 1...30 { try log.append(Self.event(i)) } }
        #expect(log.rotatedFiles().count == 2)
        let report = try log.verifyAll()
        guard case .intact(_, _, _) = report.verdict else {
            Issue.record("chain broken after retention: \(report.verdict)")
            return
        }
        #expect(report.firstSeq > 1)
    }

    @Test("rotate() by hand; an empty log has nothing to rotate")
    func manual() throws {
        let dir = TempDir()
        let log = AuditLog(path: dir.path + "/audit.jsonl", rotateBytes: nil)
        #expect(try log.rotate(time: 1) == nil)
        for i in 1...3 { try log.append(Self.event(i)) }
        #expect(try log.rotate(time: 4) == dir.path + "/audit.jsonl.3")
        try log.append(Self.event(5))
        let lines = try log.lines()
        #expect(lines.count == 2)
        #expect(AuditLine.chainFields(lines[1])?.seq == 5)
        guard case .intact(5, 5, _) = try log.verifyAll().verdict else {
            Issue.record("not one chain")
            return
        }
    }

    @Test("records after a seq, forward across rotated files, in batches that resume where the last stopped")
    func forward() throws {
        let dir = TempDir()
        let log = AuditLog(path: dir.path + "/audit.jsonl", rotateBytes: nil)
        for i in 1...3 { try log.append(Self.event(i)) }
        _ = try log.rotate(time: 4)  // audit.jsonl.3 holds 1-3; the current file starts with the link record (4)
        for i in 5...9 { try log.append(Self.event(i)) }
        let seqs = { (lines: [String]) in lines.compactMap { AuditLine.chainFields($0)?.seq } }
        #expect(seqs(try log.records(after: 0, maxRecords: 100, maxBytes: 1 << 20).lines) == Array(1...9))
        #expect(seqs(try log.records(after: 2, maxRecords: 100, maxBytes: 1 << 20).lines) == Array(3...9))
        #expect(try log.records(after: 9, maxRecords: 100, maxBytes: 1 << 20).lines.isEmpty)
        // Batches of 2: each picks up where the last stopped, across the rotation.
        var after: Int64 = 0
        var position: AuditPosition?
        var read: [Int64] = []
        while true {
            let batch = try log.records(after: after, maxRecords: 2, maxBytes: 1 << 20, resume: position)
            if batch.lines.isEmpty { break }
            read += seqs(batch.lines)
            after = read.last!
            position = batch.position
        }
        #expect(read == Array(1...9))
        // A resume position from another file (rotated since) is not trusted: read by seq.
        _ = try log.rotate(time: 10)
        try log.append(Self.event(11))
        #expect(
            seqs(try log.records(after: 9, maxRecords: 100, maxBytes: 1 << 20, resume: position).lines) == [10, 11]
        )
        // An append in progress (no newline yet) waits for the next call.
        let fd = open(log.path, O_WRONLY | O_APPEND)
        _ = Array("{\"seq\":12".utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        #expect(seqs(try log.records(after: 9, maxRecords: 100, maxBytes: 1 << 20).lines) == [10, 11])
    }

    @Test("appends from many threads while the log rotates: one chain, nothing lost")
    func concurrentAppends() async throws {
        let dir = TempDir()
        let log = AuditLog(path: dir.path + "/audit.jsonl", rotateBytes: 2000, keep: 1000)
        try await offPool {
            DispatchQueue.concurrentPerform(iterations: 4) { worker in
                for i in 0..<25 { _ = try? log.append(Self.event(worker * 1000 + i)) }
            }
        }
        let report = try log.verifyAll()
        let rotations = log.rotatedFiles().count
        guard case .intact(let records, _, _) = report.verdict else {
            Issue.record("chain broken: \(report.verdict) in \(report.brokenFile ?? "?")")
            return
        }
        #expect(records == 100 + rotations)
    }
}
