import WritAudit
import WritCore

/// Where a host's own audit chain stands on the server: its last stored record.
public struct HostAuditHead: Sendable, Equatable {
    public var seq: Int64
    public var hash: String

    public init(seq: Int64, hash: String) {
        self.seq = seq
        self.hash = hash
    }
}

extension ApprovalEngine {
    /// What one upload may carry: an agent sends its records in batches of at most this many
    /// lines and bytes.
    public static let maxUploadLines = 1000
    public static let maxUploadBytes = 4 << 20

    /// Stores records of `host`'s own audit chain (sudo runs, sessions ended, its module
    /// reports), each once: a record already stored is skipped when it is the same line and
    /// refused when it differs (the host's log was rewritten). The first upload anchors the
    /// chain wherever it starts; after that each record must follow the stored head (its seq
    /// the next, its prev the head's hash), so a gap is refused with where to resume. Returns
    /// the head after the upload: the anchor outside the host that `writ audit verify` checks
    /// the host's chain against. The first upload also writes where the chain starts (its first
    /// record's seq and hash, event `host.audit_anchor`) into the server's own chain, so records
    /// deleted from the start of the host's chain show in `verifyFleetAudit`.
    public func uploadAudit(host: String, lines: [String]) async throws(EngineError) -> HostAuditHead? {
        guard lines.count <= Self.maxUploadLines, lines.reduce(0, { $0 + $1.utf8.count }) <= Self.maxUploadBytes else {
            throw .refused(
                "an upload holds at most \(Self.maxUploadLines) records and \(Self.maxUploadBytes >> 20) MiB: send smaller batches"
            )
        }
        var parsed: [(seq: Int64, prev: String, hash: String, line: String)] = []
        for (i, line) in lines.enumerated() {
            // One line each: Writ's lines escape every control character.
            guard let chain = AuditLine.chainFields(line), !line.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F })
            else {
                throw .refused("record \(i + 1) of the upload is not an audit line of Writ's")
            }
            if let last = parsed.last, chain.seq != last.seq + 1 {
                throw .refused("the upload's records are not in order: \(chain.seq) after \(last.seq)")
            }
            parsed.append((chain.seq, chain.prev, AuditChain.hash(line), line))
        }
        let records = parsed
        let now = clock()
        return try await store.transaction { (tx) throws(EngineError) -> HostAuditHead? in
            var head = try await tx.hostAuditHead(host, forUpdate: true)
            let first = head == nil
            var fresh: [(seq: Int64, hash: String, line: String)] = []
            for record in records {
                if let h = head, record.seq <= h.seq {
                    let stored = try await tx.hostAuditHash(host, seq: record.seq)
                    if stored == record.hash { continue }
                    if stored != nil {
                        throw .refused(
                            "\(host)'s audit record \(record.seq) differs from the one stored: its log was rewritten"
                        )
                    }
                    // Before the anchor: the server never had it, and cannot check it.
                    throw .refused("\(host)'s audit record \(record.seq) is older than the first one stored")
                }
                if let h = head {
                    guard record.seq == h.seq + 1 else {
                        throw .refused(
                            "\(host)'s audit records \(h.seq + 1)–\(record.seq - 1) are missing: upload from \(h.seq + 1)"
                        )
                    }
                    guard record.prev == h.hash else {
                        throw .refused("\(host)'s audit record \(record.seq) does not follow record \(h.seq) as stored")
                    }
                }
                fresh.append((record.seq, record.hash, record.line))
                head = HostAuditHead(seq: record.seq, hash: record.hash)
            }
            if let head, !fresh.isEmpty { try await tx.appendHostAudit(host, fresh, head: head) }
            if first, let start = fresh.first {
                try await tx.appendAudit([
                    AuditEvent(
                        time: now,
                        event: Self.hostAuditAnchor,
                        actor: host,
                        fields: [
                            .init("host", host), .init("first_seq", String(start.seq)),
                            .init("first_hash", start.hash),
                        ]
                    )
                ])
            }
            return head
        }
    }

    /// The server's record of where a host's uploaded chain starts.
    static let hostAuditAnchor = "host.audit_anchor"

    /// The last record of `host`'s chain the server holds (where its agent resumes), or nil.
    public func hostAuditHead(_ host: String) async throws(EngineError) -> HostAuditHead? {
        try await store.transaction { (tx) throws(EngineError) in try await tx.hostAuditHead(host, forUpdate: false) }
    }
}
