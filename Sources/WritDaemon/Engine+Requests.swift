import Glibc
import WritAudit
import WritCore
import WritPolicy
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

    func fileRequest(_ r: WireRequest, who: UserDirectory.Account) throws(WireError) -> WireResponse {
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
        try requireFewPending(who)
        let input = RequestInput(
            user: who.name,
            unixGroups: UserDirectory.groupNames(of: who),
            capability: capability,
            flow: r.flow,
            host: config.hostName,
            runas: r.runas,
            commands: r.commands,
            duration: r.duration,
            reason: Self.note(r.reason),
            now: now
        )
        let evaluation: Evaluation
        switch policy.evaluate(input) {
        case .failure(let refusal): throw WireError("policy", refusal.description)
        case .success(let e): evaluation = e
        }
        // Check the commands now, so a request that could never become a grant is refused at once.
        if let commands = evaluation.commands { _ = try commandPatterns(commands) }
        let flow = evaluation.flow
        let request = try file(
            policy: policy,
            evaluation: evaluation,
            who: who,
            reason: r.reason,
            capability: capability,
            runas: evaluation.runas,
            commands: evaluation.commands,
            extending: nil,
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
        who: UserDirectory.Account,
        reason: String?,
        capability: Capability,
        runas: String,
        commands: [String]?,
        extending grant: Grant?,
        at now: Int64
    ) throws(WireError) -> StoredRequest {
        let flow = evaluation.flow
        var pendingUntil = now + flow.pendingTimeout
        // An extension nobody answers before the grant ends has nothing left to extend.
        if let grant { pendingUntil = min(pendingUntil, grant.expiresAt) }
        var request = StoredRequest(
            core: AccessRequest(
                id: StoredRequest.generateID(),
                requester: who.name,
                capability: capability,
                duration: evaluation.duration,
                reason: Self.note(reason),
                createdAt: now,
                pendingUntil: pendingUntil,
                approvers: policy.approverUsers(of: flow, membersOf: UserDirectory.members(ofGroup:)),
                requiredApprovals: flow.approvals,
                selfApprovalAllowed: flow.selfApproval
            ),
            kind: grant == nil ? "grant" : "extend",
            extendsGrant: grant?.id,
            requesterUID: who.uid,
            flow: flow.name,
            host: config.hostName,
            runas: runas,
            commands: commands,
            grantID: nil,
            autoRule: nil,
            warnBefore: flow.warnBefore,
            policyVersion: policyVersion
        )
        try store(
            &request,
            evaluation: evaluation,
            who: who,
            at: now,
            what: grant == nil ? "file the request" : "file the extension"
        )
        flushAudit()
        rearm()
        return request
    }

    /// Saves a new request, and when a policy rule approves it at once, the grant it earns, all in
    /// one transaction with their audit records.
    func store(
        _ request: inout StoredRequest,
        evaluation: Evaluation,
        who: UserDirectory.Account,
        at now: Int64,
        what: String
    ) throws(WireError) {
        do {
            try state.transaction { () throws(StoreError) in
                try audit.queue(db, requestEvent("request.create", request, actor: who.name, at: now))
                if let rule = evaluation.autoApproval {
                    let duration = evaluation.autoDuration ?? evaluation.duration
                    let by = "policy:" + rule.name
                    request.core = request.core.autoApproved(at: now, rule: rule.name, duration: duration)
                    request.autoRule = rule.name
                    try issue(&request, notBefore: now, expiresAt: now + duration, approvedBy: by, at: now)
                    try audit.queue(db, requestEvent("request.approve", request, actor: by, at: now))
                }
                try request.save(db)
            }
        } catch {
            if case .invalid(let message) = error { throw WireError("refused", message) }
            throw internalError(what, error)
        }
    }

    /// Writes the grant an approved request earns (or moves an extended grant's end), inside the
    /// caller's transaction.
    func issue(
        _ request: inout StoredRequest,
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

    func requestEvent(_ name: String, _ r: StoredRequest, actor: String, at: Int64) -> AuditEvent {
        var fields: [AuditEvent.Field] = [
            .init("request", r.core.id), .init("kind", r.kind), .init("requester", r.core.requester),
            .init("capability", r.core.capability.rawValue), .init("flow", r.flow), .init("host", r.host),
            .init("runas", r.runas), .init("duration", String(r.core.duration)), .init("reason", r.core.reason),
            .init("state", r.core.state.rawValue), .init("policy_version", r.policyVersion),
        ]
        if let g = r.extendsGrant { fields.append(.init("extends", g)) }
        if let c = r.commands { fields.append(.init("commands", c.joined(separator: "; "))) }
        if let rule = r.autoRule { fields.append(.init("rule", rule)) }
        if let note = r.core.decisionNote, !note.isEmpty { fields.append(.init("note", note)) }
        if name == "request.approval", let last = r.core.approvals.last {
            fields.append(.init("approvals", "\(r.core.approvals.count)/\(r.core.requiredApprovals)"))
            if !last.comment.isEmpty { fields.append(.init("comment", last.comment)) }
        }
        return AuditEvent(time: at, event: name, actor: actor, fields: fields)
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

    func loadRequest(_ id: String?, who: UserDirectory.Account) throws(WireError) -> StoredRequest {
        guard let id, !id.isEmpty else {
            throw WireError("bad_request", "give a request id (see: writ status, writ requests)")
        }
        let r: StoredRequest?
        do { r = try StoredRequest.load(db, id: id) } catch { throw internalError("read request \(id)", error) }
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
            resp.requests = try StoredRequest.query(
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
        let rows: [StoredRequest]
        do {
            rows =
                r.pendingOnly == false
                ? try StoredRequest.query(db, "WHERE created_at > ?1 ORDER BY created_at", [String(now - 7 * 86400)])
                : try StoredRequest.query(db, "WHERE state = 'pending' ORDER BY created_at")
        } catch { throw internalError("list requests", error) }
        var resp = WireResponse(ok: true)
        resp.requests = rows.filter { who.uid == 0 || $0.core.approvers.contains(who.name) }.map(\.view)
        return resp
    }

    func decide(_ r: WireRequest, who: UserDirectory.Account, approve: Bool) throws(WireError) -> WireResponse {
        var request = try loadRequest(r.id, who: who)
        let now = self.now()
        let event: AccessRequest.Event
        if approve {
            event = .approve(by: who.name, at: now, comment: Self.note(r.comment))
        } else {
            guard let reason = r.reason, !reason.trimmingSpaces.isEmpty else {
                throw WireError("bad_request", "say why you deny it: writ deny \(request.core.id) --reason \"…\"")
            }
            event = .deny(by: who.name, at: now, reason: Self.note(reason))
        }
        // Approvers are fixed when the request is filed, and must still be approvers of the flow
        // under the policy in force when they decide: removing someone from the policy takes
        // effect on pending requests too.
        if let policy, request.core.approvers.contains(who.name) {
            let current = policy.flow(named: request.flow).map {
                policy.approverUsers(of: $0, membersOf: UserDirectory.members(ofGroup:))
            }
            if current?.contains(who.name) != true {
                throw WireError(
                    "refused",
                    "\(who.name) is no longer an approver of flow \(request.flow) under the current policy"
                )
            }
        }
        let actions: [AccessRequest.Action]
        do throws(AccessRequest.Refusal) { actions = try request.core.apply(event) } catch {
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
                for action in actions {
                    switch action {
                    case .recordApproval:
                        try audit.queue(db, requestEvent("request.approval", request, actor: who.name, at: now))
                    case .issueGrant(let notBefore, let expiresAt):
                        try issue(&request, notBefore: notBefore, expiresAt: expiresAt, approvedBy: who.name, at: now)
                        try audit.queue(db, requestEvent("request.approve", request, actor: who.name, at: now))
                    case .notifyDenied:
                        try audit.queue(db, requestEvent("request.deny", request, actor: who.name, at: now))
                    case .notifyExpired, .notifyCancelled:
                        break
                    }
                }
                try request.save(db)
            }
        } catch {
            if case .invalid(let message) = error { throw WireError("refused", message) }
            throw internalError("record the decision", error)
        }
        flushAudit()
        rearm()
        logger.info(
            "request \(request.core.id): \(approve ? "approval" : "denial") by \(who.name), now \(request.core.state.rawValue)"
        )
        var resp = WireResponse(ok: true)
        resp.request = request.view
        return resp
    }

    func cancel(_ r: WireRequest, who: UserDirectory.Account) throws(WireError) -> WireResponse {
        var request = try loadRequest(r.id, who: who)
        let now = self.now()
        do throws(AccessRequest.Refusal) { _ = try request.core.apply(.cancel(by: who.name, at: now)) } catch {
            throw WireError("refused", error.description)
        }
        do {
            try state.transaction { () throws(StoreError) in
                try audit.queue(db, requestEvent("request.cancel", request, actor: who.name, at: now))
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
    func extend(_ r: WireRequest, who: UserDirectory.Account) throws(WireError) -> WireResponse {
        let policy = try requirePolicy()
        guard let id = r.id, let duration = r.duration else {
            throw WireError("bad_request", "usage: writ extend GRANT-ID --for DURATION --reason TEXT")
        }
        let now = self.now()
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
            (try? StoredRequest.query(db, "WHERE state = 'pending' AND kind = 'extend' AND extends_grant = ?1", [id]))
            ?? []
        if let other = pendingExtensions.first {
            throw WireError(
                "refused",
                "an extension of \(id) is already pending (\(other.core.id)) — wait for it, or cancel it: writ cancel \(other.core.id)"
            )
        }
        guard let requestID = grant.requestID, let original = try? StoredRequest.load(db, id: requestID) else {
            throw WireError(
                "refused",
                "grant \(id) was written by an admin, not through a flow — ask an admin to add time (writ grant add)"
            )
        }
        let input = RequestInput(
            user: who.name,
            unixGroups: UserDirectory.groupNames(of: who),
            capability: grant.capability,
            flow: original.flow,
            host: config.hostName,
            runas: grant.runas,
            commands: original.commands,
            duration: duration,
            reason: Self.note(r.reason),
            now: now
        )
        let evaluation: Evaluation
        switch policy.evaluate(input) {
        case .failure(let refusal): throw WireError("policy", refusal.description)
        case .success(let e): evaluation = e
        }
        let request = try file(
            policy: policy,
            evaluation: evaluation,
            who: who,
            reason: r.reason,
            capability: grant.capability,
            runas: grant.runas,
            commands: original.commands,
            extending: grant,
            at: now
        )
        var resp = WireResponse(ok: true)
        resp.request = request.view
        return resp
    }
}

extension AccessRequest {
    /// The request approved by a policy rule rather than a person.
    func autoApproved(at: Int64, rule: String, duration: Int64) -> AccessRequest {
        AccessRequest(
            restoring: id,
            requester: requester,
            capability: capability,
            duration: duration,
            reason: reason,
            createdAt: createdAt,
            pendingUntil: pendingUntil,
            approvers: approvers,
            requiredApprovals: requiredApprovals,
            selfApprovalAllowed: selfApprovalAllowed,
            state: .approved,
            approvals: [],
            decidedAt: at,
            decidedBy: "policy:" + rule,
            decisionNote: "auto-approved by rule \(rule)"
        )
    }
}

extension Engine {
    /// User text kept with a request (reason, comment): trimmed, and at most 1,000 characters.
    static func note(_ text: String?) -> String {
        String((text ?? "").trimmingSpaces.prefix(1000))
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

extension String {
    var trimmingSpaces: Substring {
        var s = self[...]
        while let f = s.first, f.isWhitespace { s = s.dropFirst() }
        while let l = s.last, l.isWhitespace { s = s.dropLast() }
        return s
    }
}
