import FoundationEssentials
import Glibc
import WritAudit
import WritCore
import WritEngine
import WritExpr
import WritHooks
import WritPolicy
import WritProcesses
import WritProtocol
import WritStore

extension Engine {
    func requirePolicy() throws(WireError) -> Policy {
        guard let policy else {
            throw WireError(
                "policy",
                "writd has no valid policy, so it cannot take requests — an admin must fix \(config.policyPath) (writ policy validate) and reload writd"
            )
        }
        return policy
    }

    /// `via`: where the operation came from when not the CLI on this host (`slack:U…`), audited.
    func fileRequest(
        _ r: WireRequest,
        who: UserDirectory.Account,
        via: String?,
        context: [String: Value] = [:]
    ) throws(WireError) -> WireResponse {
        guard who.uid != 0 else { throw WireError("refused", "root is never restricted by Writ: no request is needed") }
        let policy = try requirePolicy()
        guard let capability = Capability(rawValue: r.capability ?? "") else {
            throw WireError(
                "bad_request",
                "unknown capability \(LogText.escape(r.capability ?? "")): use sudo or login"
            )
        }
        if let host = r.host, !HostIdentity(nodename: config.hostName).matches(host) {
            throw WireError(
                "refused",
                "this writd grants access to \(config.hostName) only; run writ request on \(LogText.escape(host, limit: 64)) itself"
            )
        }
        let now = self.now()
        try requireFilingBudget(who, at: now)
        try requireFewPending(who)
        try Self.requireShortCommandList(r.commands)
        let fields = try Self.requestFields(r.fields)
        let input = RequestInput(
            user: who.name,
            unixGroups: directory.groupNames(of: who),
            capability: capability,
            flow: r.flow,
            host: config.hostName,
            runas: r.runas,
            commands: r.commands,
            duration: r.duration,
            reason: try Self.note(r.reason, "reason", limit: Policy.reasonLimit),
            now: now,
            fields: fields,
            kind: "grant",
            context: context
        )
        let evaluation: Evaluation
        switch policy.evaluate(input) {
        case .failure(let refusal):
            recordRefusal(input, refusal: refusal, at: now)
            throw WireError("policy", refusal.description)
        case .success(let e): evaluation = e
        }
        // Check the commands now, so a request that could never become a grant is refused at once.
        if let commands = evaluation.commands { _ = try commandPatterns(commands) }
        let flow = evaluation.flow
        let request = try file(
            policy: policy,
            evaluation: evaluation,
            input: input,
            who: who,
            reason: r.reason,
            capability: capability,
            runas: evaluation.runas,
            commands: evaluation.commands,
            extending: nil,
            via: via,
            at: now
        )
        logger.info(
            "request \(request.core.id) by \(who.name) for \(capability.rawValue) (flow \(flow.name)): \(request.core.state.rawValue)"
        )
        var resp = WireResponse(ok: true)
        resp.request = request.view
        return resp
    }

    /// Files a new request (or an extension of `extending`) as the policy evaluated it.
    func file(
        policy: Policy,
        evaluation: Evaluation,
        input: RequestInput,
        who: UserDirectory.Account,
        reason: String?,
        capability: Capability,
        runas: String,
        commands: [String]?,
        extending grant: Grant?,
        via: String?,
        at now: Int64
    ) throws(WireError) -> EngineRequest {
        let flow = evaluation.flow
        var request = EngineRequest.new(
            policy: policy,
            evaluation: evaluation,
            input: input,
            reason: try Self.note(reason, "reason", limit: Policy.reasonLimit),
            requesterUID: who.uid,
            runas: runas,
            commands: .some(commands),
            extending: grant.map { ($0.id, $0.expiresAt) },
            policyVersion: policyVersion,
            policyCommit: policyCommit,
            membersOf: directory.members(ofGroup:),
            at: now
        )
        for error in evaluation.conditionErrors {
            logger.warning(
                "request \(request.core.id), flow \(flow.name): condition failed, treated as not deciding: \(error)"
            )
            Syslog.log(LOG_WARNING, "policy condition failed for request \(request.core.id): \(LogText.escape(error))")
        }
        try store(
            &request,
            evaluation: evaluation,
            input: input,
            who: who,
            via: via,
            at: now,
            what: grant == nil ? "file the request" : "file the extension"
        )
        flushAudit()
        rearm()
        switch evaluation.outcome {
        case .hook(let hook): startRequestHook(request, hook: hook, flow: flow, input: input)
        case .autoApproved: notifyHook("on_approve", request)
        case .autoDenied: notifyHook("on_deny", request)
        case .people: break
        }
        return request
    }

    /// Saves a new request, and when a policy rule approves it at once, the grant it earns, all in
    /// one transaction with their audit records.
    func store(
        _ request: inout EngineRequest,
        evaluation: Evaluation,
        input: RequestInput,
        who: UserDirectory.Account,
        via: String?,
        at now: Int64,
        what: String
    ) throws(WireError) {
        do {
            try state.transaction { () throws(StoreError) in
                let (by, effects) = request.file(Filing(evaluation, asked: input), by: who.name, via: via, at: now)
                try write(effects, for: &request, by: by, at: now)
                try request.save(db)
            }
        } catch {
            if case .invalid(let message) = error { throw WireError("refused", message) }
            throw internalError(what, error)
        }
    }

    /// Writes the effects of one of the engine's steps (`EngineRequest.file`, `decide`, `cancel`,
    /// `tick`) in order, inside the caller's transaction: audit records to the outbox, the grant
    /// to grants.db.
    func write(
        _ effects: [EngineRequest.Effect],
        for request: inout EngineRequest,
        by: String,
        at now: Int64
    )
        throws(StoreError)
    {
        for effect in effects {
            switch effect {
            case .audit(let e): try audit.queue(db, e)
            case .issueGrant(let notBefore, let expiresAt):
                try issue(&request, notBefore: notBefore, expiresAt: expiresAt, approvedBy: by, at: now)
            }
        }
    }

    /// Writes the grant an approved request earns (or moves an extended grant's end), inside the
    /// caller's transaction.
    func issue(
        _ request: inout EngineRequest,
        notBefore: Int64,
        expiresAt: Int64,
        approvedBy: String,
        at now: Int64
    ) throws(StoreError) {
        if request.kind == "extend" {
            guard let id = request.extendsGrant, let grant = try state.grants.grant(id: id) else {
                throw .notFound(id: request.extendsGrant ?? "?")
            }
            guard grant.state(at: now) == .active else {
                throw .invalid("grant \(id) has ended; an extension cannot revive it — file a new request")
            }
            // More time, but never more left than the flow's maximum from now.
            let flowMax = policy?.flow(named: request.flow)?.maxDuration ?? request.core.duration
            let newEnd = min(grant.expiresAt + request.core.duration, now + flowMax)
            try state.grants.extend(id: id, to: newEnd)
            let s = try db.prepare("UPDATE d.watch SET expires_at = ?2, warn_at = ?3, warned = 0 WHERE grant_id = ?1")
            try s.bind(1, id)
            try s.bind(2, newEnd)
            try s.bind(3, newEnd - request.warnBefore)
            _ = try s.step()
            request.grantID = id
            try audit.queue(
                db,
                AuditEvent(
                    time: now,
                    event: "grant.extend",
                    actor: approvedBy,
                    fields: [
                        .init("grant", id), .init("user", grant.user), .init("request", request.core.id),
                        .init("old_expires_at", String(grant.expiresAt)), .init("expires_at", String(newEnd)),
                        .init("policy_version", request.policyVersion),
                    ]
                )
            )
            return
        }
        let grant = Grant(
            id: GrantID.generate(),
            user: request.core.requester,
            uid: request.requesterUID,
            capability: request.core.capability,
            host: request.host,
            runas: request.runas,
            commands: try request.commands.map { (c: [String]) throws(StoreError) -> [CommandPattern] in
                do throws(WireError) { return try commandPatterns(c) } catch { throw StoreError.invalid(error.message) }
            },
            notBefore: notBefore,
            expiresAt: expiresAt,
            revokedAt: nil,
            revokedBy: nil,
            reason: request.core.reason,
            approvedBy: approvedBy,
            requestID: request.core.id,
            policyVersion: request.policyVersion,
            createdAt: now
        )
        try state.grants.add(grant)
        try watch(grant, warnBefore: request.warnBefore)
        request.grantID = grant.id
        try audit.queue(db, grantEvent("grant.issue", grant, actor: approvedBy, at: now))
    }

    func watch(_ g: Grant, warnBefore: Int64) throws(StoreError) {
        let s = try db.prepare(
            "INSERT OR REPLACE INTO d.watch (grant_id, user, capability, expires_at, warn_at, warned) VALUES (?1, ?2, ?3, ?4, ?5, 0)"
        )
        try s.bind(1, g.id)
        try s.bind(2, g.user)
        try s.bind(3, g.capability.rawValue)
        try s.bind(4, g.expiresAt)
        try s.bind(5, g.expiresAt - warnBefore)
        _ = try s.step()
    }

    /// Parses and canonicalises a flow's command lines the way `writ grant add --command` does.
    func commandPatterns(_ lines: [String]) throws(WireError) -> [CommandPattern] {
        var out: [CommandPattern] = []
        for line in lines {
            var p: CommandPattern
            do throws(CommandPatternError) { p = try CommandPattern(parsing: line) } catch {
                throw WireError("policy", error.description)
            }
            do { p.path = try RootOnlyPath.canonicalProgram(p.path) } catch {
                throw WireError("policy", error.description)
            }
            out.append(p)
        }
        return out
    }

    /// `via`: where the operation came from when not the CLI on this host (`slack:U…`).
    func requestEvent(_ name: String, _ r: EngineRequest, actor: String, at: Int64, via: String?) -> AuditEvent {
        r.auditEvent(name, actor: actor, at: at, via: via)
    }

    func grantEvent(_ name: String, _ g: Grant, actor: String, at: Int64) -> AuditEvent {
        var fields: [AuditEvent.Field] = [
            .init("grant", g.id), .init("user", g.user), .init("capability", g.capability.rawValue),
            .init("host", g.host), .init("runas", g.runas), .init("not_before", String(g.notBefore)),
            .init("expires_at", String(g.expiresAt)), .init("reason", g.reason),
        ]
        if let c = g.commands { fields.append(.init("commands", c.map(\.description).joined(separator: "; "))) }
        if let r = g.requestID { fields.append(.init("request", r)) }
        if let p = g.policyVersion { fields.append(.init("policy_version", p)) }
        return AuditEvent(time: at, event: name, actor: actor, fields: fields)
    }

    func loadRequest(_ id: String?, who: UserDirectory.Account) throws(WireError) -> EngineRequest {
        guard let id, !id.isEmpty else {
            throw WireError("bad_request", "give a request id (see: writ status, writ requests)")
        }
        let r: EngineRequest?
        do { r = try EngineRequest.load(db, id: id) } catch { throw internalError("read request \(id)", error) }
        // Someone who may not see a request learns nothing, not even that it exists.
        guard let r, who.uid == 0 || r.core.requester == who.name || r.core.approvers.contains(who.name) else {
            throw WireError(
                "not_found",
                "no request \(LogText.escape(id, limit: 40)) that you can see — list yours with: writ status"
            )
        }
        return r
    }

    func getRequest(_ r: WireRequest, who: UserDirectory.Account) throws(WireError) -> WireResponse {
        var resp = WireResponse(ok: true)
        resp.request = try loadRequest(r.id, who: who).view
        return resp
    }

    func status(who: UserDirectory.Account) throws(WireError) -> WireResponse {
        let now = self.now()
        var resp = WireResponse(ok: true)
        do {
            let s = try db.prepare(
                "SELECT \(GrantStore.columns) FROM grants WHERE user = ?1 AND revoked_at IS NULL AND expires_at > ?2 ORDER BY expires_at"
            )
            try s.bind(1, who.name)
            try s.bind(2, now)
            var grants: [GrantView] = []
            while try s.step() { grants.append(try GrantStore.row(s).view(at: now)) }
            resp.grants = grants
            resp.requests = try EngineRequest.query(
                db,
                "WHERE requester = ?1 AND (state = 'pending' OR created_at > ?2) ORDER BY created_at",
                [who.name, String(now - 86400)]
            ).map(\.view)
        } catch {
            throw internalError("read your status", error)
        }
        return resp
    }

    func listRequests(_ r: WireRequest, who: UserDirectory.Account) throws(WireError) -> WireResponse {
        let now = self.now()
        let rows: [EngineRequest]
        do {
            rows =
                r.pendingOnly == false
                ? try EngineRequest.query(db, "WHERE created_at > ?1 ORDER BY created_at", [String(now - 7 * 86400)])
                : try EngineRequest.query(db, "WHERE state = 'pending' ORDER BY created_at")
        } catch { throw internalError("list requests", error) }
        var resp = WireResponse(ok: true)
        resp.requests = rows.filter { who.uid == 0 || $0.core.approvers.contains(who.name) }.map(\.view)
        return resp
    }

    func decide(
        _ r: WireRequest,
        who: UserDirectory.Account,
        from caller: Caller,
        approve: Bool
    ) throws(WireError) -> WireResponse {
        let via = caller.via
        var request = try loadRequest(r.id, who: who)
        let now = self.now()
        let decision: ApprovalEngine.Decision
        if approve {
            decision = .approve(comment: try Self.note(r.comment))
        } else {
            guard let reason = r.reason, !reason.trimmingSpaces.isEmpty else {
                throw WireError("bad_request", "say why you deny it: writ deny \(request.core.id) --reason \"…\"")
            }
            decision = .deny(reason: try Self.note(reason, "reason", limit: Policy.reasonLimit))
        }
        // From Slack, the flow decides whether a click may approve at all (`slack_approve`), here
        // and not only on the card: a form opened before the policy changed, or a forged
        // submission, must not approve a flow that wants `writ approve` on a host.
        if approve, case .slack = caller {
            let flow = policy?.flow(named: request.flow)
            switch flow?.slackApprove ?? .cli {
            case .cli:
                throw WireError(
                    "refused",
                    "flow \(request.flow) is approved on a host only: run `writ approve \(request.core.id)` there"
                )
            case .confirm where try Self.note(r.comment).isEmpty:
                throw WireError("refused", "flow \(request.flow) needs a comment to be approved from Slack")
            case .confirm, .allowed:
                break
            }
        }
        // Approvers are fixed when the request is filed, and must still be approvers of the flow
        // under the policy in force when they decide: removing someone from the policy takes
        // effect on pending requests too.
        // Approvers a hook added are the hook's choice, not the policy's: they stay.
        let addedByHook = request.core.steps[request.core.currentStep].addedApprovers.contains(who.name)
        if let policy, request.core.approvers.contains(who.name), !addedByHook {
            let current = policy.flow(named: request.flow).map {
                policy.approverUsers(of: $0, membersOf: directory.members(ofGroup:))
            }
            if current?.contains(who.name) != true {
                throw WireError(
                    "refused",
                    "\(who.name) is no longer an approver of flow \(request.flow) under the current policy"
                )
            }
        }
        let effects: [EngineRequest.Effect]
        do throws(EngineError) { effects = try request.decide(decision, by: who.name, via: via, at: now).effects } catch
        {
            logger.notice(
                "refused \(approve ? "approval" : "denial") of \(request.core.id) by \(who.name): \(error.description)"
            )
            Syslog.log(
                LOG_NOTICE,
                "refused \(approve ? "approval" : "denial") of \(request.core.id) by \(who.name): \(error.description)"
            )
            throw WireError("refused", error.description)
        }
        do {
            try state.transaction { () throws(StoreError) in
                try write(effects, for: &request, by: who.name, at: now)
                try request.save(db)
            }
        } catch {
            if case .invalid(let message) = error { throw WireError("refused", message) }
            throw internalError("record the decision", error)
        }
        flushAudit()
        rearm()
        if request.core.state == .approved { notifyHook("on_approve", request) }
        if request.core.state == .denied { notifyHook("on_deny", request) }
        logger.info(
            "request \(request.core.id): \(approve ? "approval" : "denial") by \(who.name), now \(request.core.state.rawValue)"
        )
        var resp = WireResponse(ok: true)
        resp.request = request.view
        return resp
    }

    func cancel(_ r: WireRequest, who: UserDirectory.Account, via: String?) throws(WireError) -> WireResponse {
        var request = try loadRequest(r.id, who: who)
        let now = self.now()
        let effects: [EngineRequest.Effect]
        do throws(EngineError) { effects = try request.cancel(by: who.name, via: via, at: now) } catch {
            throw WireError("refused", error.description)
        }
        do {
            try state.transaction { () throws(StoreError) in
                try write(effects, for: &request, by: who.name, at: now)
                try request.save(db)
            }
        } catch { throw internalError("cancel the request", error) }
        flushAudit()
        rearm()
        var resp = WireResponse(ok: true)
        resp.request = request.view
        return resp
    }

    /// `writ extend`: more time on an active grant, asked for through the flow that issued it.
    func extend(
        _ r: WireRequest,
        who: UserDirectory.Account,
        via: String?,
        context: [String: Value] = [:]
    ) throws(WireError) -> WireResponse {
        let policy = try requirePolicy()
        guard let id = r.id, let duration = r.duration else {
            throw WireError("bad_request", "usage: writ extend GRANT-ID --for DURATION --reason TEXT")
        }
        let now = self.now()
        try requireFilingBudget(who, at: now)
        let grant: Grant?
        do { grant = try state.grants.grant(id: id) } catch { throw internalError("read grant \(id)", error) }
        guard let grant, grant.user == who.name else {
            throw WireError(
                "not_found",
                "you have no grant \(LogText.escape(id, limit: 40)) — see yours with: writ status"
            )
        }
        guard grant.state(at: now) == .active else {
            throw WireError(
                "refused",
                "grant \(id) is \(grant.state(at: now).rawValue): only an active grant can be extended — file a new request"
            )
        }
        let pendingExtensions =
            (try? EngineRequest.query(db, "WHERE state = 'pending' AND kind = 'extend' AND extends_grant = ?1", [id]))
            ?? []
        if let other = pendingExtensions.first {
            throw WireError(
                "refused",
                "an extension of \(id) is already pending (\(other.core.id)) — wait for it, or cancel it: writ cancel \(other.core.id)"
            )
        }
        guard let requestID = grant.requestID, let original = try? EngineRequest.load(db, id: requestID) else {
            throw WireError(
                "refused",
                "grant \(id) was written by an admin, not through a flow — ask an admin to add time (writ grant add)"
            )
        }
        let input = RequestInput(
            user: who.name,
            unixGroups: directory.groupNames(of: who),
            capability: grant.capability,
            flow: original.flow,
            host: config.hostName,
            // Login grants carry root as their run-as user; a login flow refuses any --runas.
            runas: grant.capability == .sudo ? grant.runas : nil,
            commands: original.commands,
            duration: duration,
            reason: try Self.note(r.reason, "reason", limit: Policy.reasonLimit),
            now: now,
            fields: original.fields,
            kind: "extend",
            context: context
        )
        let evaluation: Evaluation
        switch policy.evaluate(input) {
        case .failure(let refusal):
            recordRefusal(input, refusal: refusal, at: now)
            throw WireError("policy", refusal.description)
        case .success(let e): evaluation = e
        }
        let request = try file(
            policy: policy,
            evaluation: evaluation,
            input: input,
            who: who,
            reason: r.reason,
            capability: grant.capability,
            runas: grant.runas,
            commands: original.commands,
            extending: grant,
            via: via,
            at: now
        )
        var resp = WireResponse(ok: true)
        resp.request = request.view
        return resp
    }
}

extension Engine {
    /// `--field name=value`, checked (`RequestLimits.fields`).
    static func requestFields(_ list: [RequestField]?) throws(WireError) -> [String: String] {
        do { return try RequestLimits.fields((list ?? []).map { ($0.name, $0.value) }) } catch {
            throw WireError("bad_request", error.description)
        }
    }

    /// A refused request is audited too: `writ policy replay` shows what a new policy would have
    /// allowed, and a stream of refusals is worth seeing. Within `refusals` (the account's
    /// budget): past it they are counted, and the next record says how many were not recorded.
    func recordRefusal(_ input: RequestInput, refusal: PolicyRefusal, at now: Int64) {
        let budget = refusals.spend(input.user, now: now)
        if budget == .countOnly { return }
        var fields: [AuditEvent.Field] = [
            .init("requester", input.user), .init("kind", input.kind), .init("capability", input.capability.rawValue),
            .init("host", input.host), .init("reason", input.reason),
            .init("groups", input.unixGroups.sorted().joined(separator: ",")),
            .init("message", refusal.description), .init("policy_version", policyVersion),
        ]
        fields += Filing.Asked(input).fields
        for (k, v) in input.fields.sorted(by: { $0.key < $1.key }) { fields.append(.init("field.\(k)", v)) }
        if !input.context.isEmpty { fields.append(.init("context", EngineRequest.contextJSON(input.context))) }
        if let commit = policyCommit { fields.append(.init("policy_commit", commit)) }
        fields += budgetFields(budget, what: "refused requests", of: input.user)
        recordAlone(AuditEvent(time: now, event: "request.refuse", actor: input.user, fields: fields))
    }

    /// Records an event that changes nothing else (a refusal): queued in its own transaction,
    /// then appended.
    func recordAlone(_ event: AuditEvent) {
        do {
            try state.transaction { () throws(StoreError) in try audit.queue(db, event) }
        } catch {
            logger.error("audit: cannot record \(event.event): \(error.description)")
        }
        flushAudit()
    }

    /// User text kept with a request (reason, comment), trimmed. Longer text is refused with its
    /// length, never cut: a cut reason can change its meaning.
    static func note(_ text: String?, _ what: String = "comment", limit: Int = 1000) throws(WireError) -> String {
        do { return try RequestLimits.note(text, what, limit: limit) } catch {
            throw WireError("bad_request", error.description)
        }
    }

    /// The audit fields that say what an `AuditBudget` did: how many were not recorded before
    /// this record, or that further ones will be counted only.
    func budgetFields(_ verdict: AuditBudget.Verdict, what: String, of user: String) -> [AuditEvent.Field] {
        switch verdict {
        case .record(let notRecorded) where notRecorded > 0:
            return [.init("not_recorded_before", String(notRecorded))]
        case .recordAndMute:
            logger.warning("\(user) is over the audit budget for \(what): further ones are counted, not recorded")
            Syslog.log(LOG_WARNING, "\(user) is over the audit budget for \(what): further ones are counted")
            return [.init("budget", "over: further \(what) of \(user) are counted, not recorded, until it refills")]
        default:
            return []
        }
    }

    /// One account may file 30 requests and extensions at once, then one every 20 s: each is
    /// audited (and its cancel), so a loop of request and cancel cannot grow the log (and the
    /// Slack outbox) at the disk's speed.
    func requireFilingBudget(_ who: UserDirectory.Account, at now: Int64) throws(WireError) {
        guard let wait = filings.take(who.name, now: now) else { return }
        let budget = refusals.spend(who.name, now: now)
        if budget != .countOnly {
            var fields: [AuditEvent.Field] = [.init("requester", who.name), .init("message", "rate limited")]
            fields += budgetFields(budget, what: "refused requests", of: who.name)
            recordAlone(AuditEvent(time: now, event: "request.limit", actor: who.name, fields: fields))
        }
        throw WireError(
            "rate_limited",
            "you filed \(filings.burst) requests in a short time; try again in \(wait) s"
        )
    }

    /// At most 32 commands, each at most 4,096 bytes, 16 KiB in all: a command list is for
    /// people to read and approve, and it is stored and audited with the request.
    static func requireShortCommandList(_ commands: [String]?) throws(WireError) {
        do { try RequestLimits.commands(commands) } catch { throw WireError("bad_request", error.description) }
    }

    /// A user may have at most 20 requests pending: enough for anyone, too few to flood approvers.
    func requireFewPending(_ who: UserDirectory.Account) throws(WireError) {
        let pending: Int
        do {
            let s = try db.prepare("SELECT count(*) FROM d.requests WHERE requester = ?1 AND state = 'pending'")
            try s.bind(1, who.name)
            _ = try s.step()
            pending = Int(s.int64(0))
        } catch { throw internalError("count your requests", error) }
        if pending >= 20 {
            throw WireError("refused", "you have 20 pending requests — cancel some first (writ status, writ cancel ID)")
        }
    }
}

extension Engine {
    /// `writ flows`: the flows of the policy in force that the caller may request on this host.
    func listFlows(who: UserDirectory.Account) throws(WireError) -> WireResponse {
        guard let policy else {
            throw WireError("policy", "writd has no valid policy loaded, so nothing can be requested — ask an admin")
        }
        let groups = directory.groupNames(of: who)
        var resp = WireResponse(ok: true)
        resp.flows = policy.flows.filter { flow in
            flow.covers(host: config.hostName)
                && flow.requesters.contains(user: who.name, unixGroups: groups, policyGroups: policy.groups)
        }.map { flow in
            var automatic = flow.autoApprove.map { "auto_approve \($0.name)" }
            if flow.breakGlass != nil { automatic.append("break_glass (on call in PagerDuty)") }
            if flow.hooks.onRequest != nil { automatic.append("on_request hook") }
            let first = flow.steps.first.map { policy.users($0.approvers, membersOf: directory.members(ofGroup:)) }
            return FlowView(
                name: flow.name,
                description: flow.description,
                capability: flow.capability.rawValue,
                runas: flow.runas,
                commands: flow.commands,
                defaultDuration: flow.defaultDuration,
                maxDuration: flow.maxDuration,
                approvers: (first ?? []).sorted(),
                approvals: flow.approvals,
                steps: flow.steps.count,
                reasonRequired: flow.reasonRequired,
                reasonPattern: flow.reasonPattern,
                automatic: automatic
            )
        }
        return resp
    }
}
