import WritAudit
import WritCore
import WritEngine
import WritPolicy
import WritProcesses
import WritProtocol
import WritStore

extension Engine {
    /// `writ revoke` (the grant's user, an approver of the flow that issued it, or root) and
    /// `writ grant revoke` (root). Sessions opened under the grant are ended at once.
    func revoke(_ r: WireRequest, who: UserDirectory.Account) throws(WireError) -> WireResponse {
        guard let id = r.id, !id.isEmpty else { throw WireError("bad_request", "give a grant id (see: writ status)") }
        let now = self.now()
        let found: Grant?
        do { found = try state.grants.grant(id: id) } catch { throw internalError("read grant \(id)", error) }
        var allowed = who.uid == 0
        if let g = found, !allowed {
            allowed = g.user == who.name
            if !allowed, let rid = g.requestID, let req = try? EngineRequest.load(db, id: rid) {
                allowed = req.core.approvers.contains(who.name)
            }
        }
        guard let grant = found, allowed else {
            throw WireError(
                "not_found",
                "no grant \(LogText.escape(id, limit: 40)) that you can revoke — see: writ status"
            )
        }
        guard grant.state(at: now) == .active || grant.state(at: now) == .pending else {
            throw WireError("refused", "grant \(id) is already \(grant.state(at: now).rawValue); nothing to revoke")
        }
        let actor = who.uid == 0 ? "root" : who.name
        let why = try Engine.note(r.reason, "reason", limit: Policy.reasonLimit)
        do {
            try state.transaction { () throws(StoreError) in
                _ = try state.grants.revoke(id: id, by: actor, now: now)
                try markEnded(id, at: now, reason: "revoked")
                var e = grantEvent("grant.revoke", grant, actor: actor, at: now)
                if !why.isEmpty { e.fields.append(.init("why", why)) }
                try audit.queue(db, e)
            }
        } catch { throw internalError("revoke \(id)", error) }
        flushAudit()
        endSessions(of: grant, reason: "revoked by \(actor)")
        rearm()
        var resp = WireResponse(ok: true)
        var after = grant
        after.revokedAt = now
        after.revokedBy = actor
        resp.grant = after.view(at: now)
        return resp
    }

    func markEnded(_ id: String, at: Int64, reason: String) throws(StoreError) {
        let s = try db.prepare(
            "UPDATE d.watch SET ended_at = ?2, end_reason = ?3 WHERE grant_id = ?1 AND ended_at IS NULL"
        )
        try s.bind(1, id)
        try s.bind(2, at)
        try s.bind(3, reason)
        _ = try s.step()
    }

    /// `writ grant add` through writd (root only): the CLI has validated and canonicalised the
    /// grant; writd checks the account again and writes it with its audit record.
    func grantAdd(_ r: WireRequest, who: UserDirectory.Account) throws(WireError) -> WireResponse {
        guard who.uid == 0 else {
            throw WireError("forbidden", "writ grant add needs root — engineers use: writ request")
        }
        guard let name = r.user, let target = directory.user(named: name) else {
            throw WireError("bad_request", "no such user \(LogText.escape(r.user ?? "")) on this host")
        }
        guard target.uid != 0 else { throw WireError("bad_request", "\(name) is uid 0, which Writ never restricts") }
        let maximum: Int64 = 31 * 86400
        guard let capability = Capability(rawValue: r.capability ?? ""), let duration = r.duration, duration > 0,
            duration <= maximum, (r.startsIn ?? 0) <= maximum
        else {
            throw WireError(
                "bad_request",
                "grant_add needs a capability, a duration of at most 31d and --starts-in at most 31d"
            )
        }
        let now = self.now()
        let start = now + max(0, r.startsIn ?? 0)
        let reason = try Engine.note(r.reason, "reason", limit: Policy.reasonLimit)
        guard !reason.isEmpty else {
            throw WireError(
                "bad_request",
                "writ grant add needs --reason: the audit log must say why root granted access"
            )
        }
        var commands: [CommandPattern]? = nil
        if let lines = r.commands, !lines.isEmpty {
            commands = []
            for line in lines {
                do throws(CommandPatternError) { commands?.append(try CommandPattern(parsing: line)) } catch {
                    throw WireError("bad_request", error.description)
                }
            }
        }
        let grant = Grant(
            id: GrantID.generate(),
            user: target.name,
            uid: target.uid,
            capability: capability,
            host: r.host ?? "*",
            runas: r.runas ?? "root",
            commands: commands,
            notBefore: start,
            expiresAt: start + duration,
            revokedAt: nil,
            revokedBy: nil,
            reason: reason,
            approvedBy: "cli:root",
            requestID: nil,
            policyVersion: nil,
            createdAt: now
        )
        do {
            try state.transaction { () throws(StoreError) in
                try state.grants.add(grant)
                try watch(grant, warnBefore: config.defaultWarnBefore)
                try audit.queue(db, grantEvent("grant.add", grant, actor: "cli:root", at: now))
            }
        } catch { throw internalError("add the grant", error) }
        flushAudit()
        rearm()
        var resp = WireResponse(ok: true)
        resp.grant = grant.view(at: now)
        return resp
    }

    func grantList(_ r: WireRequest, who: UserDirectory.Account) throws(WireError) -> WireResponse {
        guard who.uid == 0 else {
            throw WireError("forbidden", "writ grant list needs root — see your own with: writ status")
        }
        let now = self.now()
        var resp = WireResponse(ok: true)
        do {
            resp.grants = try state.grants.list(includeEnded: r.includeEnded ?? false, now: now).map {
                $0.view(at: now)
            }
        } catch {
            throw internalError("list grants", error)
        }
        return resp
    }
}
