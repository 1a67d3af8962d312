import WritAudit
import WritCore

/// One record of a fleet's audit: of the server's own chain (requests, decisions, grants: `host`
/// nil) or of a host's chain as its agent uploaded it (sudo runs, sessions ended: `host` set).
public struct FleetAuditRecord: Sendable, Equatable {
    public var host: String?
    public var line: String
    public var time: Int64
    public var seq: Int64

    /// Oldest first: by time, then chain, then the chain's own order.
    static func before(_ a: FleetAuditRecord, _ b: FleetAuditRecord) -> Bool {
        (a.time, a.host ?? "", a.seq) < (b.time, b.host ?? "", b.seq)
    }
}

/// Which records `fleetAudit` returns; nil matches everything.
public struct FleetAuditFilter: Sendable, Equatable {
    /// A host: its own chain, and the server's records of requests and grants for it (or made
    /// through it).
    public var host: String?
    /// The actor, requester or grant holder.
    public var user: String?
    public var flow: String?
    /// Record times, Unix seconds, inclusive.
    public var since: Int64?
    public var until: Int64?

    public init(host: String? = nil, user: String? = nil, flow: String? = nil, since: Int64? = nil, until: Int64? = nil)
    {
        self.host = host
        self.user = user
        self.flow = flow
        self.since = since
        self.until = until
    }

    /// Whether `fields` (one line's, in order) match; `chainHost` is the host whose chain the
    /// line is in (nil: the server's).
    func matches(_ fields: [(String, String)], chainHost: String?) -> Bool {
        func field(_ name: String) -> String? { fields.first { $0.0 == name }?.1 }
        let time = Int64(field("time") ?? "") ?? 0
        if let since, time < since { return false }
        if let until, time > until { return false }
        if let user, field("actor") != user, field("user") != user, field("requester") != user { return false }
        if let flow, field("flow") != flow { return false }
        if let host {
            if let chainHost { return chainHost == host }
            let identity = HostIdentity(nodename: host)
            let recordHost = field("host")
            guard field("via") == "host:\(host)" || recordHost.map(identity.matches) == true else { return false }
        }
        return true
    }
}

/// What `verifyFleetAudit` found for one chain.
public struct FleetChainCheck: Sendable, Equatable {
    /// nil: the server's own chain.
    public var host: String?
    public var verdict: AuditChain.Verdict
}

extension ApprovalEngine {
    /// Lines read per query when scanning a chain.
    static let auditPage = 1000

    /// The records `filter` matches, from the server's chain and the hosts' uploaded chains,
    /// oldest first by time: the newest `limit` of them (1 to 10,000).
    public func fleetAudit(
        _ filter: FleetAuditFilter,
        limit: Int = 1000
    ) async throws(EngineError)
        -> [FleetAuditRecord]
    {
        let limit = min(max(limit, 1), 10_000)
        var found: [FleetAuditRecord] = []
        func keep(_ line: String, chainHost: String?) {
            guard let fields = AuditLine.flatFields(line), filter.matches(fields, chainHost: chainHost) else { return }
            let time = Int64(fields.first { $0.0 == "time" }?.1 ?? "") ?? 0
            let seq = Int64(fields.first { $0.0 == "seq" }?.1 ?? "") ?? 0
            found.append(FleetAuditRecord(host: chainHost, line: line, time: time, seq: seq))
            // Past twice the limit, keep the newest `limit` by time (the chains are read one
            // after another, so the oldest found is not the oldest record).
            if found.count >= 2 * limit {
                found.sort(by: FleetAuditRecord.before)
                found.removeFirst(found.count - limit)
            }
        }
        try await scan(host: nil) { keep($0, chainHost: nil) }
        let hosts = try await store.transaction { (tx) throws(EngineError) in try await tx.auditedHosts() }
        for host in hosts where filter.host == nil || filter.host == host {
            try await scan(host: host) { keep($0, chainHost: host) }
        }
        found.sort(by: FleetAuditRecord.before)
        return Array(found.suffix(limit))
    }

    /// Checks the server's chain and every host's uploaded chain (or `host`'s alone): the same
    /// check as `writ audit verify` on a host. A host's chain starts where its first upload did.
    public func verifyFleetAudit(host: String? = nil) async throws(EngineError) -> [FleetChainCheck] {
        var checks: [FleetChainCheck] = []
        let hosts = try await store.transaction { (tx) throws(EngineError) in try await tx.auditedHosts() }
        // Where each host's chain started, as the server's own chain recorded it at the first
        // upload (the earliest record, should there be more).
        var anchors: [String: (seq: Int64, hash: String)] = [:]
        func noteAnchor(_ line: String) {
            guard line.contains(Self.hostAuditAnchor), AuditLine.field("event", in: line) == Self.hostAuditAnchor,
                let h = AuditLine.field("host", in: line), anchors[h] == nil,
                let seq = AuditLine.field("first_seq", in: line).flatMap({ Int64($0) }),
                let hash = AuditLine.field("first_hash", in: line)
            else { return }
            anchors[h] = (seq, hash)
        }
        if host != nil { try await scan(host: nil, noteAnchor) }
        for chain in (host == nil ? [nil] : []) + hosts.filter({ host == nil || $0 == host }).map(Optional.some) {
            var verdict = AuditChain.Verdict.intact(records: 0, headSeq: 0, head: AuditLine.genesis)
            var records = 0
            var last: (seq: Int64, hash: String)?
            var first = true
            var start: (seq: Int64, hash: String)?
            try await scan(host: chain, pages: true) { page in
                if chain == nil { page.forEach(noteAnchor) }
                if start == nil, let line = page.first, let fields = AuditLine.chainFields(line) {
                    start = (fields.seq, AuditChain.hash(line))
                }
                guard case .intact = verdict else { return }
                var after = last
                // A host's chain may start past record 1 (its agent's first upload anchors it).
                if first, chain != nil, let head = page.first.flatMap(AuditLine.chainFields), head.seq > 1 {
                    after = (head.seq - 1, head.prev)
                }
                first = false
                switch AuditChain.verify(page, after: after) {
                case .intact(let n, let seq, let hash):
                    records += n
                    last = (seq, hash)
                    verdict = .intact(records: records, headSeq: seq, head: hash)
                case .broken(let line, let reason):
                    verdict = .broken(line: records + line, reason: reason)
                }
            }
            // A host's chain must start where its first upload did: rows deleted from its start,
            // or its first record rewritten, show here.
            if let chain, case .intact = verdict, let anchor = anchors[chain],
                start.map({ $0.seq != anchor.seq || $0.hash != anchor.hash }) ?? true
            {
                verdict = .broken(
                    line: 1,
                    reason:
                        "the chain starts at record \(start.map { String($0.seq) } ?? "none"), but its first upload began at record \(anchor.seq) (hash \(anchor.hash.prefix(12))): records were removed or rewritten here"
                )
            }
            // A host's chain must end where the server recorded its head: rows deleted from its
            // end, or its last record rewritten, show here.
            if let chain, case .intact(_, let seq, let hash) = verdict {
                let head = try await store.transaction { (tx) throws(EngineError) in
                    try await tx.hostAuditHead(chain, forUpdate: false)
                }
                if let head, head.seq != seq || head.hash != hash {
                    verdict = .broken(
                        line: records,
                        reason:
                            "the chain ends at record \(seq), but its head was recorded as record \(head.seq) (hash \(head.hash.prefix(12))): records were removed or rewritten here"
                    )
                }
            }
            checks.append(FleetChainCheck(host: chain, verdict: verdict))
        }
        return checks
    }

    /// Every line of a chain in order, a page per query.
    private func scan(host: String?, _ each: (String) -> Void) async throws(EngineError) {
        try await scan(host: host, pages: true) { page in page.forEach(each) }
    }

    private func scan(host: String?, pages: Bool, _ each: ([String]) -> Void) async throws(EngineError) {
        var after: Int64 = 0
        while true {
            let from = after
            let page = try await store.transaction { (tx) throws(EngineError) -> [String] in
                if let host { return try await tx.hostAuditLines(host, after: from, limit: Self.auditPage) }
                return try await tx.auditLines(after: from, limit: Self.auditPage)
            }
            guard let lastLine = page.last, let seq = AuditLine.chainFields(lastLine)?.seq else {
                each(page)
                return
            }
            each(page)
            guard page.count == Self.auditPage else { return }
            after = seq
        }
    }
}
