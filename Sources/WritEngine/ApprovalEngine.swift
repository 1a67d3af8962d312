import Glibc
import WritAudit
import WritCore

/// The approval engine: requests, decisions, grants, expiry, escalation and the audit chain,
/// over any `ApprovalStore`. It keeps no state between calls, so any number of instances may
/// serve one store at once: every guarantee comes from the store's transactions
/// (`ApprovalStore`). Who asks is a `Principal` per call.
public struct ApprovalEngine: Sendable {
    public let store: any ApprovalStore
    let clock: @Sendable () -> Int64
    /// A flow's longest grant (an extension never leaves more than this from now); nil: the
    /// request's own duration.
    let flowMaxDuration: @Sendable (String) -> Int64?

    public init(
        store: any ApprovalStore,
        clock: @escaping @Sendable () -> Int64 = { Int64(time(nil)) },
        flowMaxDuration: @escaping @Sendable (String) -> Int64? = { _ in nil }
    ) {
        self.store = store
        self.clock = clock
        self.flowMaxDuration = flowMaxDuration
    }

    /// What a decision did.
    public struct Outcome: Sendable, Equatable {
        public var request: EngineRequest
        /// The grant it issued or extended, if it did.
        public var grant: EngineGrant?
        public var actions: [AccessRequest.Action]
    }

    public enum Decision: Sendable, Equatable {
        case approve(comment: String)
        case deny(reason: String)
    }

    // MARK: filing

    /// Files a request the policy has evaluated. When a rule decides at once (`filing`), the
    /// decision and its grant are written in the same transaction as the request and every audit
    /// record.
    public func file(
        _ request: EngineRequest,
        _ filing: Filing = Filing(),
        by who: Principal
    ) async throws(EngineError) -> Outcome {
        let now = clock()
        return try await store.transaction { (tx) throws(EngineError) -> Outcome in
            var r = request
            let (by, effects) = r.file(filing, by: who.user, via: who.via, at: now)
            var records: [AuditEvent] = []
            let grant = try await apply(effects, to: &r, tx: tx, records: &records, by: by, at: now)
            try await tx.insertRequest(r)
            try await tx.appendAudit(records)
            // As `decide` reports a decision: the grant asked for, or the denial.
            let actions: [AccessRequest.Action] =
                switch r.core.state {
                case .approved: [.issueGrant(notBefore: now, expiresAt: now + r.core.duration)]
                case .denied: [.notifyDenied]
                default: []
                }
            return Outcome(request: r, grant: grant, actions: actions)
        }
    }

    // MARK: the grant feed, per host

    /// What one host enforces now: the live grants whose host pattern covers `host`, and the
    /// cursor from which `grantChanges` follows the feed.
    public func grantSnapshot(forHost host: String) async throws(EngineError) -> (grants: [EngineGrant], cursor: Int64)
    {
        let now = clock()
        let identity = HostIdentity(nodename: host)
        let (all, cursor) = try await store.transaction { (tx) throws(EngineError) in try await tx.liveGrants(now: now)
        }
        return (all.filter { identity.matches($0.host) }, cursor)
    }

    /// The grants for `host` written after `cursor` (issued, extended, ended: each in its latest
    /// state), from at most `limit` (1 to 1,000) entries of the feed. The cursor moves past every
    /// entry read, whichever host it was for, so an answer with no grants still moves it; `more`
    /// says the limit was reached. A cursor past the feed's end is `.gone`: it came from another
    /// store, or this one was restored, and only a new snapshot is safe.
    public func grantChanges(
        forHost host: String,
        after cursor: Int64,
        limit: Int = 500
    ) async throws(EngineError) -> (grants: [EngineGrant], cursor: Int64, more: Bool) {
        guard cursor >= 0 else { throw .refused("a feed cursor is a position, 0 or more") }
        let limit = min(max(limit, 1), 1000)
        let identity = HostIdentity(nodename: host)
        let changes = try await store.transaction { (tx) throws(EngineError) in
            let changes = try await tx.grantChanges(after: cursor, limit: limit)
            if changes.isEmpty, cursor > 0, try await tx.grantFeedEnd() < cursor {
                throw .gone("feed position \(cursor) is past this store's end: take a new snapshot")
            }
            return changes
        }
        return (
            changes.map(\.grant).filter { identity.matches($0.host) },
            changes.last?.position ?? cursor,
            changes.count == limit
        )
    }

    // MARK: decisions

    /// Approves or denies a pending request as `who`. The request is locked for the transaction,
    /// so decisions on one request from any number of instances apply one after the other, and
    /// only one of them can issue its grant. `check` runs on the locked request before anything
    /// changes (the caller's rules: the route may approve this flow, the approver is still one
    /// under the current policy); it throws `.refused` to stop.
    public func decide(
        _ id: String,
        _ decision: Decision,
        by who: Principal,
        check: @escaping @Sendable (EngineRequest) throws(EngineError) -> Void = { _ in }
    ) async throws(EngineError) -> Outcome {
        let now = clock()
        return try await store.transaction { (tx) throws(EngineError) -> Outcome in
            guard var r = try await tx.request(id, forUpdate: true) else { throw .notFound("no request \(id)") }
            try check(r)
            let (actions, effects) = try r.decide(decision, by: who.user, via: who.via, at: now)
            var records: [AuditEvent] = []
            let grant = try await apply(effects, to: &r, tx: tx, records: &records, by: who.user, at: now)
            try await tx.updateRequest(r)
            try await tx.appendAudit(records)
            return Outcome(request: r, grant: grant, actions: actions)
        }
    }

    /// The requester withdraws a pending request. `check` runs on the locked request first, as
    /// for `decide`.
    public func cancel(
        _ id: String,
        by who: Principal,
        check: @escaping @Sendable (EngineRequest) throws(EngineError) -> Void = { _ in }
    ) async throws(EngineError) -> EngineRequest {
        let now = clock()
        return try await store.transaction { (tx) throws(EngineError) -> EngineRequest in
            guard var r = try await tx.request(id, forUpdate: true) else { throw .notFound("no request \(id)") }
            try check(r)
            var records: [AuditEvent] = []
            _ = try await apply(
                try r.cancel(by: who.user, via: who.via, at: now),
                to: &r,
                tx: tx,
                records: &records,
                by: who.user,
                at: now
            )
            try await tx.updateRequest(r)
            try await tx.appendAudit(records)
            return r
        }
    }

    /// A grant an admin of the server adds by hand (no request, no policy: `writ-server grant
    /// add`, as root's `writ grant add` on one host), for `duration` seconds from `startsIn`
    /// seconds from now. It goes to every host its pattern covers through the feed.
    public func addGrant(
        user: String,
        capability: String,
        host: String,
        runas: String = "root",
        commands: [String]? = nil,
        duration: Int64,
        startsIn: Int64 = 0,
        reason: String,
        by who: Principal
    ) async throws(EngineError) -> EngineGrant {
        guard ["sudo", "login"].contains(capability) else { throw .refused("a grant's capability is sudo or login") }
        guard !user.isEmpty, user != "root", !user.utf8.contains(where: { $0 < 0x21 || $0 == 0x7F }) else {
            throw .refused("name the account the grant is for (not root, whom Writ never restricts)")
        }
        guard duration > 0, duration <= 31 * 86400, startsIn >= 0, startsIn <= 31 * 86400 else {
            throw .refused("a grant lasts up to 31d and starts within 31d")
        }
        guard !reason.isEmpty else {
            throw .refused("say why (--reason): the audit log must say why an admin granted access")
        }
        let now = clock()
        var g = EngineGrant(
            requestID: nil,
            user: user,
            capability: capability,
            host: host,
            runas: runas,
            commands: commands,
            notBefore: now + startsIn,
            expiresAt: now + startsIn + duration,
            approvedBy: who.user,
            reason: reason
        )
        g.policyVersion = nil
        let grant = g
        return try await store.transaction { (tx) throws(EngineError) -> EngineGrant in
            try await tx.insertGrant(grant)
            var e = grant.auditEvent("grant.add", actor: who.user, at: now)
            if let via = who.via { e.fields.append(.init("via", via)) }
            try await tx.appendAudit([e])
            return grant
        }
    }

    /// Ends a running grant now. Revoking a grant that has already ended is refused.
    /// `check` runs on the locked grant first (the caller's rules: whose grant it is); it throws
    /// `.refused` or `.notFound` to stop.
    public func revoke(
        grant id: String,
        by who: Principal,
        reason: String,
        check: @escaping @Sendable (EngineGrant) throws(EngineError) -> Void = { _ in }
    ) async throws(EngineError) -> EngineGrant {
        let now = clock()
        return try await store.transaction { (tx) throws(EngineError) -> EngineGrant in
            guard var g = try await tx.grant(id, forUpdate: true) else { throw .notFound("no grant \(id)") }
            try check(g)
            guard g.endedAt == nil, g.expiresAt > now else {
                throw .refused("grant \(id) has already ended (\(g.endReason ?? "expired"))")
            }
            g.revokedAt = now
            g.revokedBy = who.user
            g.endedAt = now
            g.endReason = "revoked"
            var e = g.auditEvent("grant.revoke", actor: who.user, at: now)
            if !reason.isEmpty { e.fields.append(.init("revoke_reason", reason)) }
            if let via = who.via { e.fields.append(.init("via", via)) }
            try await tx.updateGrant(g)
            try await tx.appendAudit([e])
            return g
        }
    }

    // MARK: time

    /// What one `tick` did.
    public struct TickReport: Sendable, Equatable {
        public var expiredRequests: [String] = []
        public var escalatedRequests: [String] = []
        public var endedGrants: [EngineGrant] = []
        public init() {}
    }

    /// Applies everything that fell due: pending requests nobody answered expire, steps that
    /// waited too long escalate, grants past their end are ended. Each batch of `batch` rows is
    /// claimed in its own short transaction (rows another instance holds are skipped), so several
    /// instances ticking at once do each piece of work once, and an instance killed mid-batch
    /// leaves its rows to the others.
    public func tick(batch: Int = 100) async throws(EngineError) -> TickReport {
        let now = clock()
        var report = TickReport()
        while true {
            let (claimed, part) = try await store.transaction { (tx) throws(EngineError) -> (Int, TickReport) in
                var part = TickReport()
                var records: [AuditEvent] = []
                let due = try await tx.claimDueRequests(now: now, limit: batch)
                for var r in due {
                    let (actions, effects) = r.tick(at: now, actor: Principal.engine.user)
                    _ = try await apply(effects, to: &r, tx: tx, records: &records, by: Principal.engine.user, at: now)
                    for action in actions {
                        switch action {
                        case .notifyExpired: part.expiredRequests.append(r.core.id)
                        case .escalated: part.escalatedRequests.append(r.core.id)
                        default: break
                        }
                    }
                    // Saved either way: its next deadline moves past one that changed nothing.
                    try await tx.updateRequest(r)
                }
                try await tx.appendAudit(records)
                return (due.count, part)
            }
            report.expiredRequests += part.expiredRequests
            report.escalatedRequests += part.escalatedRequests
            if claimed < batch { break }
        }
        while true {
            let ended = try await store.transaction { (tx) throws(EngineError) -> [EngineGrant] in
                var ended: [EngineGrant] = []
                var records: [AuditEvent] = []
                for var g in try await tx.claimDueGrants(now: now, limit: batch) {
                    g.endedAt = g.expiresAt
                    g.endReason = "expired"
                    var e = g.auditEvent("grant.expire", actor: Principal.engine.user, at: g.expiresAt)
                    if now > g.expiresAt + 1 { e.fields.append(.init("applied_at", String(now))) }
                    records.append(e)
                    try await tx.updateGrant(g)
                    ended.append(g)
                }
                try await tx.appendAudit(records)
                return ended
            }
            report.endedGrants += ended
            if ended.count < batch { break }
        }
        return report
    }

    // MARK: grants

    /// Writes a step's effects in order — the grant now, the audit records into `records`, which
    /// each transaction appends last: every transaction takes the audit chain's head after its
    /// request and grant rows (one lock order everywhere) and holds it only to its commit. The
    /// grant it issued or extended, if any.
    func apply(
        _ effects: [EngineRequest.Effect],
        to r: inout EngineRequest,
        tx: any StoreTransaction,
        records: inout [AuditEvent],
        by: String,
        at now: Int64
    ) async throws(EngineError) -> EngineGrant? {
        var grant: EngineGrant?
        for effect in effects {
            switch effect {
            case .audit(let e): records.append(e)
            case .issueGrant(let notBefore, let expiresAt):
                grant = try await issue(
                    &r,
                    tx: tx,
                    records: &records,
                    notBefore: notBefore,
                    expiresAt: expiresAt,
                    by: by,
                    at: now
                )
            }
        }
        return grant
    }

    /// Issues the grant an approved request earns, or moves an extended grant's end, inside the
    /// caller's transaction.
    func issue(
        _ r: inout EngineRequest,
        tx: any StoreTransaction,
        records: inout [AuditEvent],
        notBefore: Int64,
        expiresAt: Int64,
        by: String,
        at now: Int64
    ) async throws(EngineError) -> EngineGrant {
        if r.kind == "extend" {
            guard let id = r.extendsGrant, var g = try await tx.grant(id, forUpdate: true) else {
                throw .notFound("the grant this extension is for (\(r.extendsGrant ?? "?")) is gone")
            }
            guard g.endedAt == nil, g.expiresAt > now else {
                throw .refused("grant \(id) has ended; an extension cannot revive it — file a new request")
            }
            // More time, but never more left than the flow's maximum from now.
            let old = g.expiresAt
            g.expiresAt = min(g.expiresAt + r.core.duration, now + (flowMaxDuration(r.flow) ?? r.core.duration))
            try await tx.updateGrant(g)
            r.grantID = id
            records.append(
                AuditEvent(
                    time: now,
                    event: "grant.extend",
                    actor: by,
                    fields: [
                        .init("grant", id), .init("user", g.user), .init("request", r.core.id),
                        .init("old_expires_at", String(old)), .init("expires_at", String(g.expiresAt)),
                        .init("policy_version", r.policyVersion),
                    ]
                )
            )
            return g
        }
        let g = EngineGrant(
            requestID: r.core.id,
            user: r.core.requester,
            capability: r.core.capability.rawValue,
            host: r.host,
            runas: r.runas,
            commands: r.commands,
            notBefore: notBefore,
            expiresAt: expiresAt,
            approvedBy: by,
            reason: r.core.reason,
            policyVersion: r.policyVersion
        )
        try await tx.insertGrant(g)
        r.grantID = g.id
        records.append(g.auditEvent("grant.issue", actor: by, at: now))
        return g
    }
}

extension EngineGrant {
    /// The audit record of a change to this grant (the fields writd's grant records carry).
    public func auditEvent(_ name: String, actor: String, at: Int64) -> AuditEvent {
        var fields: [AuditEvent.Field] = [
            .init("grant", id), .init("user", user), .init("capability", capability), .init("host", host),
            .init("runas", runas), .init("not_before", String(notBefore)), .init("expires_at", String(expiresAt)),
            .init("reason", reason),
        ]
        if let c = commands { fields.append(.init("commands", c.joined(separator: "; "))) }
        if let r = requestID { fields.append(.init("request", r)) }
        if let p = policyVersion { fields.append(.init("policy_version", p)) }
        return AuditEvent(time: at, event: name, actor: actor, fields: fields)
    }
}
