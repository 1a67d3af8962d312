import Crypto
import WritCore
import WritStore

/// Hash chaining and verification of audit lines.
public enum AuditChain {
    /// Lowercase hex SHA-256 of a line's bytes (without its newline).
    public static func hash(_ line: String) -> String {
        Hex.lowercase(SHA256.hash(data: Array(line.utf8)))
    }

    /// What `verify` found.
    public enum Verdict: Equatable, Sendable {
        /// Every record follows the one before. `head` is the last record's hash: compare it with
        /// a copy kept elsewhere (syslog, another host) — a chain alone cannot show that its last
        /// records were cut off or rewritten together.
        case intact(records: Int, headSeq: Int64, head: String)
        /// The first place the chain breaks: a 1-based line number and what is wrong there.
        case broken(line: Int, reason: String)
    }

    /// Checks that the lines form one chain from record 1: consecutive `seq`, each `prev` the hash
    /// of the line before. Names the first line where an edited, dropped, inserted or reordered
    /// record shows.
    ///
    /// `after` continues a chain checked before (the record before this file's first: the last
    /// of a rotated file); nil starts from the beginning.
    public static func verify(_ lines: [String], after: (seq: Int64, hash: String)? = nil) -> Verdict {
        var previousHash = after?.hash ?? AuditLine.genesis
        var previousSeq: Int64 = after?.seq ?? 0
        for (index, line) in lines.enumerated() {
            let n = index + 1
            guard let (seq, prev) = AuditLine.chainFields(line) else {
                return .broken(line: n, reason: "not an audit record (edited, or not written by Writ)")
            }
            if seq != previousSeq + 1 {
                if n == 1 && after == nil {
                    return .broken(
                        line: 1,
                        reason: "the log starts at record \(seq), not 1: earlier records were removed"
                    )
                }
                if seq <= previousSeq {
                    return .broken(
                        line: n,
                        reason: "record \(seq) comes after record \(previousSeq): records were reordered or inserted"
                    )
                }
                return .broken(
                    line: n,
                    reason:
                        "records \(previousSeq + 1)…\(seq - 1) are missing before record \(seq): records were dropped"
                )
            }
            if prev != previousHash {
                if n == 1 && after == nil {
                    return .broken(line: 1, reason: "record 1 does not start a chain: it was edited")
                }
                if n == 1 {
                    return .broken(
                        line: 1,
                        reason:
                            "record \(seq) does not follow the previous file's last record \(previousSeq): one of them was edited"
                    )
                }
                return .broken(
                    line: n,
                    reason: "record \(seq) does not follow line \(n - 1): record \(previousSeq) was edited, or replaced"
                )
            }
            previousHash = hash(line)
            previousSeq = seq
        }
        return .intact(records: lines.count, headSeq: previousSeq, head: previousHash)
    }
}

extension AuditLog {
    /// What `verifyAll` found across the rotated files and the current one.
    public struct ChainReport: Sendable {
        public var verdict: AuditChain.Verdict
        /// The files checked, oldest first; the last is the current file.
        public var files: [String]
        /// The first record still kept (1 unless rotated files were deleted by retention).
        public var firstSeq: Int64
        /// The file the chain breaks in, if it does.
        public var brokenFile: String?
    }

    /// Checks the rotated files and the current file as one chain. The oldest file kept may
    /// start with a rotation's link record (older files deleted by retention): the chain is
    /// checked from there, and `firstSeq` says where it starts.
    public func verifyAll() throws(StoreError) -> ChainReport {
        let files = rotatedFiles().map(\.1) + [path]
        var start: (seq: Int64, hash: String)? = nil
        var firstSeq: Int64 = 1
        var records = 0
        for (i, file) in files.enumerated() {
            let lines = try lines(of: file)
            if i == 0, let first = lines.first, AuditLine.field("event", in: first) == Self.rotateEvent,
                let (seq, prev) = AuditLine.chainFields(first)
            {
                start = (seq - 1, prev)
                firstSeq = seq
            }
            switch AuditChain.verify(lines, after: start) {
            case .broken(let line, let reason):
                return ChainReport(
                    verdict: .broken(line: line, reason: reason),
                    files: files,
                    firstSeq: firstSeq,
                    brokenFile: file
                )
            case .intact(let n, let headSeq, let head):
                records += n
                if n > 0 { start = (headSeq, head) }
            }
        }
        let head = start ?? (0, AuditLine.genesis)
        return ChainReport(
            verdict: .intact(records: records, headSeq: head.seq, head: head.hash),
            files: files,
            firstSeq: firstSeq,
            brokenFile: nil
        )
    }
}
