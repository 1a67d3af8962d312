import Glibc
import WritAudit
import WritCore
import WritEngine
import WritProcesses
import WritStore

/// One answer of the server's grant feed, with the local clock around it.
public struct FleetAnswer: Sendable {
    public var grants: [EngineGrant]
    public var cursor: String
    /// A snapshot: every live grant for this host; a fleet grant not in it has ended.
    public var snapshot: Bool
    /// The server's clock when it answered, and the local clock when the request left and the
    /// answer came (milliseconds).
    public var serverTime: Int64
    public var sentAt: Int64
    public var receivedAt: Int64

    public init(
        grants: [EngineGrant],
        cursor: String,
        snapshot: Bool,
        serverTime: Int64,
        sentAt: Int64,
        receivedAt: Int64
    ) {
        self.grants = grants
        self.cursor = cursor
        self.snapshot = snapshot
        self.serverTime = serverTime
        self.sentAt = sentAt
        self.receivedAt = receivedAt
    }
}

/// What applying one answer did.
public struct FleetApplied: Sendable, Equatable {
    public var added = 0
    public var changed = 0
    public var ended = 0
    /// Grants not enforced here: their user has no account on this host (or is root), or the
    /// grant could not be written.
    public var skipped: [String] = []
    /// Nothing was applied (the store failed): the cursor stays, and the caller pauses.
    public var failed = false
}

extension Engine {
    /// The cursor the last applied answer left (nil before the first snapshot).
    public func fleetCursor() -> String? { try? state.meta("fleet_cursor") }

    /// Drops the cursor: the next call takes a snapshot (the server cannot follow from it).
    public func forgetFleetCursor() {
        do {
            try state.transaction { () throws(StoreError) in
                let s = try db.prepare("DELETE FROM d.meta WHERE key = 'fleet_cursor'")
                _ = try s.step()
            }
        } catch {
            logger.error("fleet: cannot drop the cursor: \(error.description)")
        }
    }

    /// When the server last answered (local seconds), for strict mode and `writ doctor`.
    public func fleetContact() -> Int64? { (try? state.meta("fleet_contact")).flatMap { Int64($0 ?? "") } }

    /// Strict mode: once the server has not answered for `limit` seconds, the grants it sent
    /// are refused for new use: in grants.db their window closes now, which the modules read as
    /// ended; writd's watch keeps their real end, so sessions already open go on to it. When the
    /// server answers again its times are put back (and a watch a restart closed meanwhile is
    /// opened again). Root's own local grants are untouched. Called every second.
    public func enforceFleetStaleness(limit: Int64) {
        let now = self.now()
        do {
            guard try state.meta("fleet_suspended") == nil, let contact = fleetContact(), now - contact > limit else {
                return
            }
            let count = try state.transaction { () throws(StoreError) -> Int in
                let s = try db.prepare(
                    """
                    UPDATE grants SET not_before = ?1 - 1, expires_at = ?1
                    WHERE revoked_at IS NULL AND expires_at > ?1
                      AND id IN (SELECT grant_id FROM d.fleet_grants WHERE ended = 0)
                    """
                )
                try s.bind(1, now)
                _ = try s.step()
                let n = Int(db.changes)
                try state.setMeta("fleet_suspended", String(now))
                try audit.queue(
                    db,
                    AuditEvent(
                        time: now,
                        event: "fleet.strict",
                        actor: "writd",
                        fields: [.init("silent_for", String(now - contact)), .init("grants", String(n))]
                    )
                )
                return n
            }
            flushAudit()
            logger.warning(
                "fleet: no answer from the server for \(now - contact) s: \(count) fleet grant(s) refused for new use (strict mode)"
            )
            Syslog.log(
                LOG_WARNING,
                "fleet: server silent for \(now - contact) s; \(count) grant(s) suspended (strict mode)"
            )
        } catch {
            logger.error("fleet: strict mode could not suspend the grants: \(error.description)")
        }
    }

    /// Applies one answer of the feed to grants.db, and its cursor, in one transaction: new
    /// grants are written with this host's uid for their user and local times that skew can
    /// only shorten; changed ends are moved; grants the server ended are revoked here and their
    /// sessions ended. writd stays grants.db's only writer.
    @discardableResult
    public func applyFleet(_ answer: FleetAnswer) -> FleetApplied {
        skew.add(sentAt: answer.sentAt, receivedAt: answer.receivedAt, serverTime: answer.serverTime)
        let now = self.now()
        var applied = FleetApplied()
        var ended: [(grant: Grant, reason: String)] = []
        do {
            try state.transaction { () throws(StoreError) in
                var seen: Set<String> = []
                for g in answer.grants {
                    seen.insert(g.id)
                    // One grant that cannot be written (a window the clock's uncertainty leaves
                    // empty, a field grants.db refuses) is skipped and logged, not allowed to hold
                    // back the rest of the answer: revocations above all.
                    try db.execute("SAVEPOINT fleet_grant")
                    do throws(StoreError) {
                        try applyOne(g, now: now, applied: &applied, ended: &ended)
                        try db.execute("RELEASE fleet_grant")
                    } catch {
                        try db.execute("ROLLBACK TO fleet_grant")
                        try db.execute("RELEASE fleet_grant")
                        logger.error(
                            "fleet: grant \(LogText.escape(g.id, limit: 40)) not applied: \(error.description)"
                        )
                        applied.skipped.append(g.user)
                    }
                }
                if answer.snapshot {
                    // Live here, absent from the snapshot: it ended on the server while this host
                    // did not hear (a revocation during a partition, a cursor too old).
                    for id in try liveFleetGrants() where !seen.contains(id) {
                        if let g = try endLocally(id, by: "writ-server", why: "not live on the server", now: now) {
                            ended.append((g, "revoked"))
                            applied.ended += 1
                        }
                    }
                }
                // With the server's times back, a suspension (strict mode) ends here too.
                applied.changed += try rebaseFleetGrants(now: now)
                try state.setMeta("fleet_cursor", answer.cursor)
                try state.setMeta("fleet_contact", String(now))
                if try state.meta("fleet_suspended") != nil {
                    let s = try db.prepare("DELETE FROM d.meta WHERE key = 'fleet_suspended'")
                    _ = try s.step()
                    try audit.queue(db, AuditEvent(time: now, event: "fleet.resume", actor: "writd", fields: []))
                    logger.notice("fleet: the server answers again; its grants are in force again")
                }
            }
        } catch {
            logger.error("fleet: applying the server's grants failed, the cursor stays: \(error.description)")
            applied.failed = true
            return applied
        }
        flushAudit()
        for (g, reason) in ended {
            logger.info("grant \(g.id) of \(g.user) \(reason) by the server")
            endSessions(of: g, reason: reason == "revoked" ? "revoked on the server" : reason)
        }
        rearm()
        for name in applied.skipped {
            logger.warning("fleet: a grant for \(name) is not enforced here: no such account (or root)")
        }
        return applied
    }

    private func applyOne(
        _ g: EngineGrant,
        now: Int64,
        applied: inout FleetApplied,
        ended: inout [(grant: Grant, reason: String)]
    ) throws(StoreError) {
        // Only grants the server sent may be changed by it: root's own grants on this host are
        // not the server's to revoke or move, and an id they hold is not taken over.
        let isFleet = try fleetGrantKnown(g.id)
        var local = try state.grants.grant(id: g.id)
        if local != nil && !isFleet {
            logger.warning(
                "fleet: the server sent grant \(LogText.escape(g.id, limit: 40)), an id of a local grant: ignored"
            )
            applied.skipped.append(g.user)
            return
        }
        if !isFleet { local = nil }
        // The server says it is over: revoked, or ended there.
        if g.revokedAt != nil || g.endedAt != nil {
            try setFleetEnded(g.id)
            guard local != nil else { return }
            if let done = try endLocally(
                g.id,
                by: g.revokedBy ?? "writ-server",
                why: g.endReason ?? (g.revokedAt != nil ? "revoked" : "ended"),
                now: now
            ) {
                ended.append((done, "revoked"))
                applied.ended += 1
            }
            return
        }
        guard let start = skew.localStart(g.notBefore), let end = skew.localEnd(g.expiresAt) else { return }
        guard start < end else {
            // Shorter than what this host's clock can be sure of: not enforced here.
            logger.warning(
                "fleet: grant \(LogText.escape(g.id, limit: 40)) is too short for this host's clock bounds: not enforced"
            )
            applied.skipped.append(g.user)
            return
        }
        guard Self.plausible(g) else {
            logger.warning(
                "fleet: grant \(LogText.escape(g.id, limit: 40)) has fields grants.db does not take: not enforced"
            )
            applied.skipped.append(g.user)
            return
        }
        try recordFleetTimes(g)
        if var existing = local {
            // Revoked here (root's writ grant revoke on this host) stays revoked.
            guard existing.revokedAt == nil, existing.expiresAt != end || existing.notBefore != start else { return }
            let event = end > existing.expiresAt ? "grant.extend" : "grant.shorten"
            existing.expiresAt = end
            existing.notBefore = start
            try setLocalTimes(g.id, notBefore: start, expiresAt: end)
            var e = grantEvent(event, existing, actor: g.approvedBy, at: now)
            e.fields.append(.init("via", "writ-server"))
            try audit.queue(db, e)
            applied.changed += 1
            return
        }
        guard let account = directory.user(named: g.user), account.uid != 0,
            let capability = Capability(rawValue: g.capability)
        else {
            applied.skipped.append(g.user)
            return
        }
        var commands: [CommandPattern]?
        if let lines = g.commands {
            var parsed: [CommandPattern] = []
            for line in lines {
                guard let p = try? CommandPattern(parsing: line) else {
                    applied.skipped.append(g.user)
                    return
                }
                parsed.append(p)
            }
            commands = parsed
        }
        let grant = Grant(
            id: g.id,
            user: g.user,
            uid: account.uid,
            capability: capability,
            host: g.host,
            runas: g.runas,
            commands: commands,
            notBefore: start,
            expiresAt: end,
            revokedAt: nil,
            revokedBy: nil,
            reason: g.reason,
            approvedBy: g.approvedBy,
            requestID: g.requestID,
            policyVersion: nil,
            createdAt: now
        )
        try state.grants.add(grant)
        try watch(grant, warnBefore: config.defaultWarnBefore)
        var e = grantEvent("grant.issue", grant, actor: g.approvedBy, at: now)
        e.fields.append(.init("via", "writ-server"))
        try audit.queue(db, e)
        applied.added += 1
    }

    /// Revokes a fleet grant here (the server ended it); the grant as it was, or nil when it
    /// had ended here already.
    private func endLocally(_ id: String, by: String, why: String, now: Int64) throws(StoreError) -> Grant? {
        try setFleetEnded(id)
        guard try state.grants.grant(id: id) != nil else { return nil }
        // Strict mode may have closed the grant's window in grants.db while the server was
        // silent; writd's watch keeps its real end. While that is open, the grant is revoked now,
        // its sessions ended, whatever grants.db's times say.
        let (grant, revoked) = try state.grants.revoke(
            id: id,
            by: by,
            now: now,
            evenIfEnded: try watchOpen(id, at: now)
        )
        guard revoked else { return nil }
        try markEnded(id, at: now, reason: "revoked")
        var e = grantEvent("grant.revoke", grant, actor: by, at: now)
        e.fields.append(.init("via", "writ-server"))
        e.fields.append(.init("why", why))
        try audit.queue(db, e)
        return grant
    }

    /// What the server sends must look like what `writ grant add` would write: printable, bounded
    /// names and reason, a capability grants.db knows.
    static func plausible(_ g: EngineGrant) -> Bool {
        func printable(_ s: String, _ limit: Int) -> Bool {
            !s.isEmpty && s.utf8.count <= limit && !s.utf8.contains { $0 < 0x20 || $0 == 0x7F }
        }
        return printable(g.id, 64) && printable(g.user, 256) && printable(g.host, 253) && printable(g.runas, 256)
            && (g.reason.isEmpty || printable(g.reason, 4096)) && printable(g.approvedBy, 256)
            && (g.commands?.count ?? 0) <= 32 && (g.commands ?? []).allSatisfy { printable($0, 4096) }
    }

    /// Whether writd still watches the grant: not ended, its real end still to come.
    private func watchOpen(_ id: String, at now: Int64) throws(StoreError) -> Bool {
        let s = try db.prepare("SELECT 1 FROM d.watch WHERE grant_id = ?1 AND ended_at IS NULL AND expires_at > ?2")
        try s.bind(1, id)
        try s.bind(2, now)
        return try s.step()
    }

    private func fleetGrantKnown(_ id: String) throws(StoreError) -> Bool {
        let s = try db.prepare("SELECT 1 FROM d.fleet_grants WHERE grant_id = ?1")
        try s.bind(1, id)
        return try s.step()
    }

    private func liveFleetGrants() throws(StoreError) -> [String] {
        let s = try db.prepare("SELECT grant_id FROM d.fleet_grants WHERE ended = 0")
        var ids: [String] = []
        while try s.step() { ids.append(s.string(0)) }
        return ids
    }

    private func recordFleetTimes(_ g: EngineGrant) throws(StoreError) {
        let s = try db.prepare(
            "INSERT OR REPLACE INTO d.fleet_grants (grant_id, server_not_before, server_expires_at, ended) VALUES (?1, ?2, ?3, 0)"
        )
        try s.bind(1, g.id)
        try s.bind(2, g.notBefore)
        try s.bind(3, g.expiresAt)
        _ = try s.step()
    }

    private func setFleetEnded(_ id: String) throws(StoreError) {
        let s = try db.prepare("UPDATE d.fleet_grants SET ended = 1 WHERE grant_id = ?1")
        try s.bind(1, id)
        _ = try s.step()
    }

    /// Moves a live grant's local times, and its watch (an earlier end warns again).
    private func setLocalTimes(_ id: String, notBefore: Int64, expiresAt: Int64) throws(StoreError) {
        let g = try db.prepare(
            "UPDATE grants SET not_before = ?2, expires_at = ?3 WHERE id = ?1 AND revoked_at IS NULL"
        )
        try g.bind(1, id)
        try g.bind(2, notBefore)
        try g.bind(3, expiresAt)
        _ = try g.step()
        // A watch closed while the grant was suspended (strict mode, and a restart that saw it
        // ended) opens again when the grant is in force again.
        let w = try db.prepare(
            """
            UPDATE d.watch SET expires_at = ?2, warn_at = ?2 - ?3, warned = 0, ended_at = NULL, end_reason = NULL
            WHERE grant_id = ?1 AND (ended_at IS NULL OR (?2 > ?4 AND end_reason = 'expired'))
            """
        )
        try w.bind(1, id)
        try w.bind(2, expiresAt)
        try w.bind(3, config.defaultWarnBefore)
        try w.bind(4, now())
        _ = try w.step()
    }

    /// The local times of every live fleet grant, from the server's and the current clock
    /// bounds: after a clock step they move (ends only ever to what the bounds allow).
    private func rebaseFleetGrants(now: Int64) throws(StoreError) -> Int {
        let s = try db.prepare(
            """
            SELECT f.grant_id, f.server_not_before, f.server_expires_at, g.not_before, g.expires_at
            FROM d.fleet_grants f JOIN grants g ON g.id = f.grant_id
            WHERE f.ended = 0 AND g.revoked_at IS NULL
            """
        )
        var moves: [(String, Int64, Int64)] = []
        while try s.step() {
            guard let start = skew.localStart(s.int64(1)), let end = skew.localEnd(s.int64(2)) else { continue }
            if start != s.int64(3) || end != s.int64(4) { moves.append((s.string(0), start, end)) }
        }
        for (id, start, end) in moves { try setLocalTimes(id, notBefore: start, expiresAt: end) }
        return moves.count
    }
}
