import Glibc
import WritAudit
import WritCore
import WritEngine
import WritProcesses
import WritStore

extension Engine {
    /// Applies everything that fell due: pending requests that nobody answered, warnings before
    /// expiry, grants that ended (expired or revoked behind writd's back). Then arms the timer
    /// for the next deadline. Runs at start, when the timer fires, and when the clock is set.
    /// `reconcile`: also compare every watched grant with the store (revoked or removed behind
    /// writd's back: the CLI while writd was down, a restored backup). At start and on SIGHUP; the
    /// timer's ticks use the index on the watch table alone, so their cost does not grow with
    /// the number of active grants.
    public func tick(reconcile: Bool = false) {
        let now = self.now()
        var ended: [(grant: Grant, reason: String)] = []
        var expiredRequests: [EngineRequest] = []
        var failed = false
        do {
            try state.transaction { () throws(StoreError) in
                for var r in try EngineRequest.query(db, "WHERE state = 'pending' AND next_at <= ?1", [String(now)]) {
                    let (actions, effects) = r.tick(at: now, actor: "writd")
                    try write(effects, for: &r, by: "writd", at: now)
                    for action in actions {
                        switch action {
                        case .notifyExpired: expiredRequests.append(r)
                        case .escalated(let i):
                            logger.info("request \(r.core.id): step \(r.core.steps[i].name) escalated")
                        default: break
                        }
                    }
                    // Saved either way: next_at moves past a deadline that changed nothing.
                    try r.save(db)
                }
                let s = try db.prepare(
                    reconcile
                        ? """
                        SELECT w.grant_id FROM d.watch w JOIN grants g ON g.id = w.grant_id
                        WHERE w.ended_at IS NULL AND (g.expires_at <= ?1 OR g.revoked_at IS NOT NULL)
                        """
                        : "SELECT grant_id FROM d.watch WHERE ended_at IS NULL AND expires_at <= ?1"
                )
                try s.bind(1, now)
                var ids: [String] = []
                while try s.step() { ids.append(s.string(0)) }
                if reconcile {
                    // A watched grant that is no longer in the store has nothing left to end;
                    // without this its deadline would stay in the past.
                    let orphans = try db.prepare(
                        "UPDATE d.watch SET ended_at = ?1, end_reason = 'missing' WHERE ended_at IS NULL AND grant_id NOT IN (SELECT id FROM grants)"
                    )
                    try orphans.bind(1, now)
                    _ = try orphans.step()
                }
                for id in ids {
                    guard let g = try state.grants.grant(id: id) else {
                        try markEnded(id, at: now, reason: "missing")
                        continue
                    }
                    if g.revokedAt == nil && g.expiresAt > now {
                        // The store says later (an extension written behind writd's back).
                        let u = try db.prepare("UPDATE d.watch SET expires_at = ?2 WHERE grant_id = ?1")
                        try u.bind(1, id)
                        try u.bind(2, g.expiresAt)
                        _ = try u.step()
                        continue
                    }
                    let revoked = g.revokedAt != nil
                    let at = revoked ? (g.revokedAt ?? now) : g.expiresAt
                    let reason = revoked ? "revoked" : "expired"
                    try markEnded(id, at: at, reason: reason)
                    var e = grantEvent(
                        revoked ? "grant.revoke" : "grant.expire",
                        g,
                        actor: revoked ? (g.revokedBy ?? "?") : "writd",
                        at: at
                    )
                    if now > at + 1 { e.fields.append(.init("applied_at", String(now))) }
                    try audit.queue(db, e)
                    ended.append((g, reason))
                }
            }
        } catch {
            logger.error("tick: \(error.description)")
            failed = true
        }
        flushAudit()
        warnDue(now: now)
        for r in expiredRequests { notifyHook("on_expire", r) }
        for (g, reason) in ended {
            logger.info("grant \(g.id) of \(g.user) \(reason)")
            endSessions(of: g, reason: reason)
            if reason == "expired", let id = g.requestID, let r = try? EngineRequest.load(db, id: id) {
                notifyHook("on_expire", r, grant: g)
            }
        }
        endLeftoverSessions()
        if failed {
            // Retry soon, not at once: a persistent error (disk full) must not spin the CPU.
            timer?.arm(at: now + 5)
        } else {
            rearm()
        }
    }

    /// Sessions still open under grants that ended: a crash or restart between marking a grant
    /// ended and ending its sessions leaves them here, and they are ended now.
    func endLeftoverSessions() {
        do {
            let s = try db.prepare(
                """
                SELECT DISTINCT s.grant_id FROM d.sessions s JOIN d.watch w ON w.grant_id = s.grant_id
                WHERE s.closed_at IS NULL AND s.boot_id = ?1 AND w.ended_at IS NOT NULL
                """
            )
            try s.bind(1, BootID.current)
            var ids: [String] = []
            while try s.step() { ids.append(s.string(0)) }
            for id in ids where !ending.contains(id) {
                guard let g = try state.grants.grant(id: id) else { continue }
                endSessions(of: g, reason: g.revokedAt != nil ? "revoked" : "expired")
            }
        } catch {
            logger.error("leftover sessions: \(error.description)")
        }
    }

    /// Sessions recorded in an earlier boot name no process of this one.
    func closeSessionsOfEarlierBoots() {
        do {
            let s = try db.prepare(
                "UPDATE d.sessions SET closed_at = ?1, close_reason = 'reboot' WHERE closed_at IS NULL AND boot_id != ?2"
            )
            try s.bind(1, now())
            try s.bind(2, BootID.current)
            _ = try s.step()
        } catch {
            logger.error("sessions of earlier boots: \(error.description)")
        }
    }

    /// Arms the wall-clock timer for the earliest deadline.
    func rearm() {
        guard let timer else { return }
        let next = (try? nextDeadline()) ?? nil
        timer.arm(at: next)
    }

    func nextDeadline() throws(StoreError) -> Int64? {
        let s = try db.prepare(
            """
            SELECT min(t) FROM (
                SELECT min(next_at) AS t FROM d.requests WHERE state = 'pending'
                UNION ALL SELECT min(expires_at) FROM d.watch WHERE ended_at IS NULL
                UNION ALL SELECT min(warn_at) FROM d.watch WHERE ended_at IS NULL AND warned = 0
            )
            """
        )
        guard try s.step() else { return nil }
        return s.optionalInt64(0)
    }

    /// Watches grants written while writd was not running (the CLI writes the store directly then).
    /// Grants that had already ended are recorded as such, silently: writd tracked no session
    /// under them.
    func syncWatch(now: Int64) throws(StoreError) -> Int {
        try state.transaction { () throws(StoreError) in
            let s = try db.prepare(
                """
                INSERT OR IGNORE INTO d.watch (grant_id, user, capability, expires_at, warn_at, warned, ended_at, end_reason)
                SELECT id, user, capability, expires_at, expires_at - ?2, 0,
                       CASE WHEN revoked_at IS NOT NULL OR expires_at <= ?1 THEN coalesce(revoked_at, expires_at) END,
                       CASE WHEN revoked_at IS NOT NULL THEN 'revoked' WHEN expires_at <= ?1 THEN 'expired' END
                FROM grants WHERE id NOT IN (SELECT grant_id FROM d.watch)
                """
            )
            try s.bind(1, now)
            try s.bind(2, config.defaultWarnBefore)
            _ = try s.step()
            return Int(db.changes)
        }
    }

    /// Writes the warning to the terminals of sessions opened under grants about to end.
    func warnDue(now: Int64) {
        do {
            let s = try db.prepare(
                "SELECT grant_id, capability, expires_at FROM d.watch WHERE ended_at IS NULL AND warned = 0 AND warn_at <= ?1"
            )
            try s.bind(1, now)
            var due: [(String, String, Int64)] = []
            while try s.step() { due.append((s.string(0), s.string(1), s.int64(2))) }
            for (id, capability, expiresAt) in due where expiresAt > now {
                let sessions = try openSessions(grant: id)
                let left = DurationText.format(max(0, expiresAt - now))
                let paths = TerminalNotifier.write(
                    "writ: your \(capability) grant \(id) ends in \(left) — sessions opened under it will be closed. To keep working: writ extend \(id) --for 30m --reason \"…\"",
                    toTerminalsOf: sessions.map(\.identity)
                )
                try state.transaction { () throws(StoreError) in
                    let u = try db.prepare("UPDATE d.watch SET warned = 1 WHERE grant_id = ?1")
                    try u.bind(1, id)
                    _ = try u.step()
                    if integrations.slackEnabled {
                        try SlackOutbox.enqueue(
                            db,
                            kind: "dm",
                            event: "grant.warn",
                            request: nil,
                            grant: id,
                            actor: "writd",
                            at: now
                        )
                    }
                }
                if !paths.isEmpty { logger.info("warned \(paths.joined(separator: ",")) of grant \(id)") }
            }
        } catch {
            logger.error("warnings: \(error.description)")
        }
    }
}
