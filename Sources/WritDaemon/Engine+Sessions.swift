import Glibc
import WritAudit
import WritCore
import WritEngine
import WritProcesses
import WritProtocol
import WritStore

struct TrackedSession {
    var id: Int64
    var identity: ProcessIdentity
    var user: String
    var kind: String
    var service: String
}

extension Engine {
    /// Reports from pam_writ.so (session open/close) and sudo_writ.so (accept, reject, exit).
    /// Only root peers may report: sudo and sshd run them as root, and a user must not be able to
    /// write records about anyone. The process is the peer's pid (SO_PEERCRED), never a number in
    /// the message.
    func report(_ r: WireRequest, peer: Peer) throws(WireError) -> WireResponse {
        guard peer.uid == 0 else {
            throw WireError("forbidden", "only root processes (sudo, sshd, login) report sessions")
        }
        guard let event = r.event, let user = r.user, !user.isEmpty else {
            throw WireError("bad_request", "a report needs an event and a user")
        }
        let now = self.now()
        let service = r.service ?? "?"
        var fields: [AuditEvent.Field] = [
            .init("user", user), .init("service", service), .init("pid", String(peer.pid)),
        ]
        if let runas = r.runas { fields.append(.init("runas", runas)) }
        if let c = r.commands?.first { fields.append(.init("command", Self.cut(c, bytes: 4096))) }
        if let g = r.grant { fields.append(.init("grant", g)) }
        if let t = r.tty { fields.append(.init("tty", t)) }
        if let d = r.detail { fields.append(.init("detail", d)) }
        let name: String
        switch event {
        case "session_open", "sudo_accept":
            name = event == "sudo_accept" ? "sudo.accept" : "session.open"
            let capability =
                r.capability.flatMap(Capability.init(rawValue:)) ?? (event == "sudo_accept" ? .sudo : .login)
            if let tracked = try track(
                peer: peer,
                user: user,
                capability: capability,
                grant: r.grant,
                service: service,
                tty: r.tty,
                reported: r,
                now: now
            ) {
                fields.append(.init("tracked_grant", tracked))
            }
        case "session_close", "sudo_exit":
            name = event == "sudo_exit" ? "sudo.exit" : "session.close"
            closeSession(peer: peer, now: now, reason: event)
        case "sudo_reject", "sudo_error":
            name = event == "sudo_reject" ? "sudo.reject" : "sudo.error"
            // Any user can make sudo refuse in a loop: within the account's budget each is a
            // record, past it they are counted (syslog still has every one from the module).
            let budget = sudoRefusals.spend(user, now: now)
            if budget == .countOnly { return WireResponse(ok: true) }
            fields += budgetFields(budget, what: "refused sudo runs", of: user)
        default: throw WireError("bad_request", "unknown report event \(LogText.escape(event, limit: 32))")
        }
        // Only the first record of one sudo is worth a line per module: when both the PAM session
        // hook and the audit plugin report one sudo, the second open is dropped by track().
        recordReport(AuditEvent(time: now, event: name, actor: user, fields: fields))
        return WireResponse(ok: true)
    }

    /// `text` cut to at most `bytes` bytes of UTF-8 (at a character boundary), saying how long it
    /// was: a sudo command line can be megabytes, and the audit keeps what a reader needs.
    static func cut(_ text: String, bytes: Int) -> String {
        guard text.utf8.count > bytes else { return text }
        var kept = ""
        var used = 0
        for character in text {
            let size = character.utf8.count
            guard used + size <= bytes else { break }
            kept.append(character)
            used += size
        }
        return kept + " …[cut: \(text.utf8.count) bytes in all]"
    }

    /// Records the reporting process as a session of the grant it runs under: the grant the
    /// module named if it is the user's and active, else the user's active grant of that
    /// capability that ends last. Returns the grant id, or nil when nothing is tracked.
    func track(
        peer: Peer,
        user: String,
        capability: Capability,
        grant: String?,
        service: String,
        tty: String?,
        reported: WireRequest,
        now: Int64
    ) throws(WireError) -> String? {
        // The process is the one that connected: its start time read at accept, or (when it was
        // gone by then: sudo -b) the one it reported itself (a root peer's word). Unless it runs
        // with root's real uid (sshd, login) it must be the user's own (sudo keeps the invoking
        // user as its real uid): a report can never make writd adopt someone else's process.
        guard let start = peer.startTime ?? reported.startTime else { return nil }
        let userUID = directory.user(named: user)?.uid
        if let realUID = peer.realUID, realUID != 0, userUID != realUID {
            logger.warning(
                "session report for \(LogText.escape(user, limit: 64)) from pid \(peer.pid) of uid \(realUID): ignored"
            )
            return nil
        }
        let identity = ProcessIdentity(pid: peer.pid, startTime: start)
        // The audit session is the user's own login only when its login uid is the user's: a
        // session opened by someone else (an admin's `su - alice`, a daemon started from an
        // admin's shell) must never become the scope of alice's grant.
        let loginUID = reported.loginUid ?? peer.loginUID
        let auditSession =
            (loginUID != nil && loginUID == userUID) ? (reported.auditSession ?? peer.auditSession) : nil
        // The run-as user the process runs as (sudo): the scope's owner.
        let runasUID = capability == .sudo ? reported.runas.flatMap { directory.user(named: $0)?.uid } : nil
        do {
            var grantID: String? = nil
            if let g = grant, let found = try state.grants.grant(id: g), found.user == user,
                found.state(at: now) == .active
            {
                grantID = found.id
            } else {
                grantID = try activeGrant(user: user, capability: capability, except: nil)
            }
            guard let grantID else { return nil }
            let ins = try db.prepare(
                """
                INSERT OR IGNORE INTO d.sessions
                    (grant_id, user, kind, service, pid, start_time, tty, opened_at, boot_id, audit_session, runas_uid)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                """
            )
            try ins.bind(1, grantID)
            try ins.bind(2, user)
            try ins.bind(3, capability.rawValue)
            try ins.bind(4, service)
            try ins.bind(5, Int64(identity.pid))
            try ins.bind(6, Int64(bitPattern: identity.startTime))
            try ins.bind(7, tty)
            try ins.bind(8, now)
            try ins.bind(9, BootID.current)
            // The login's audit session, which everything it starts keeps (SessionScope).
            try ins.bind(10, auditSession.map { Int64($0) })
            try ins.bind(11, runasUID.map { Int64($0) })
            _ = try ins.step()
            return grantID
        } catch {
            throw internalError("track the session", error)
        }
    }

    func closeSession(peer: Peer, now: Int64, reason: String) {
        guard let start = peer.startTime else { return }
        do {
            let s = try db.prepare(
                "UPDATE d.sessions SET closed_at = ?3, close_reason = ?4 WHERE pid = ?1 AND start_time = ?2 AND closed_at IS NULL"
            )
            try s.bind(1, Int64(peer.pid))
            try s.bind(2, Int64(bitPattern: start))
            try s.bind(3, now)
            try s.bind(4, reason)
            _ = try s.step()
        } catch {
            logger.error("session close: \(error.description)")
        }
    }

    /// The grant a session of `grant` goes on under when `grant` ends: the user's active grant
    /// of the same capability that ends last and allows at least as much — for sudo the same
    /// run-as user and no narrower command list (a session opened under a root grant must not
    /// live on under a grant for one command as postgres).
    func successor(of grant: Grant) throws(StoreError) -> String? {
        let now = self.now()
        // The user's active grants of the capability (an index probe), latest end first.
        let s = try db.prepare(
            """
            SELECT id FROM grants WHERE user = ?1 AND capability = ?2 AND revoked_at IS NULL
            AND not_before <= ?3 AND expires_at > ?3 AND id != ?4 ORDER BY expires_at DESC
            """
        )
        try s.bind(1, grant.user)
        try s.bind(2, grant.capability.rawValue)
        try s.bind(3, now)
        try s.bind(4, grant.id)
        var ids: [String] = []
        while try s.step() { ids.append(s.string(0)) }
        for id in ids {
            guard let other = try state.grants.grant(id: id) else { continue }
            if grant.capability == .login
                || (other.runas == grant.runas && (other.commands == nil || other.commands == grant.commands))
            {
                return other.id
            }
        }
        return nil
    }

    /// The user's active grant of `capability` that ends last, other than `except`.
    func activeGrant(user: String, capability: Capability, except: String?) throws(StoreError) -> String? {
        let now = self.now()
        let s = try db.prepare(
            """
            SELECT id FROM grants WHERE user = ?1 AND capability = ?2 AND revoked_at IS NULL
            AND not_before <= ?3 AND expires_at > ?3 AND id != ?4 ORDER BY expires_at DESC LIMIT 1
            """
        )
        try s.bind(1, user)
        try s.bind(2, capability.rawValue)
        try s.bind(3, now)
        try s.bind(4, except ?? "")
        return try s.step() ? s.string(0) : nil
    }

    func openSessions(grant: String) throws(StoreError) -> [TrackedSession] {
        let s = try db.prepare(
            "SELECT id, pid, start_time, user, kind, service FROM d.sessions WHERE grant_id = ?1 AND closed_at IS NULL AND boot_id = ?2"
        )
        try s.bind(1, grant)
        try s.bind(2, BootID.current)
        var out: [TrackedSession] = []
        while try s.step() {
            out.append(
                TrackedSession(
                    id: s.int64(0),
                    identity: ProcessIdentity(
                        pid: Int32(truncatingIfNeeded: s.int64(1)),
                        startTime: UInt64(bitPattern: s.int64(2))
                    ),
                    user: s.string(3),
                    kind: s.string(4),
                    service: s.string(5)
                )
            )
        }
        return out
    }

    /// Tells the sessions opened under `grant` that it ended, then ends them: SIGHUP, and SIGKILL
    /// after the grace period. Runs in the background; the outcome is audited per session.
    func endSessions(of grant: Grant, reason: String) {
        guard !ending.contains(grant.id) else { return }
        var sessions: [TrackedSession]
        var scopes: [SessionScope]
        do {
            sessions = try openSessions(grant: grant.id)
            scopes = try sessionScopes(of: grant)
            // A session runs under whatever grant of the same capability the user still holds:
            // renewing with a new request must not cost the user their open sessions, nor what
            // those sessions started (the rows that name an audit session move too).
            if !sessions.isEmpty || !scopes.isEmpty, let other = try successor(of: grant) {
                let s = try db.prepare(
                    """
                    UPDATE d.sessions SET grant_id = ?2
                    WHERE grant_id = ?1 AND (closed_at IS NULL OR audit_session IS NOT NULL) AND boot_id = ?3
                    """
                )
                try s.bind(1, grant.id)
                try s.bind(2, other)
                try s.bind(3, BootID.current)
                _ = try s.step()
                logger.info("\(sessions.count) session(s) of \(grant.id) now run under \(other)")
                sessions = []
                scopes = []
            }
        } catch {
            logger.error("sessions of \(grant.id): \(error.description)")
            return
        }
        let live = sessions.filter { ProcessTable.isAlive($0.identity) }
        let gone = sessions.filter { !ProcessTable.isAlive($0.identity) }
        if !gone.isEmpty { markClosed(gone, reason: "exited", report: nil, grant: grant) }
        guard !live.isEmpty || !scopes.isEmpty else { return }
        _ = TerminalNotifier.write(
            "writ: your \(grant.capability.rawValue) grant \(grant.id) has ended (\(reason)); this session is being closed. Ask again with: writ request \(grant.capability.rawValue) --reason \"…\"",
            toTerminalsOf: live.map(\.identity)
        )
        let grace = config.sessionGrace
        let key = nextTermination
        nextTermination += 1
        logger.notice(
            "ending \(live.count) session(s) of grant \(grant.id) and what \(scopes.count) audit session(s) started under it (\(reason))"
        )
        ending.insert(grant.id)
        terminations[key] = Task {
            let report = await SessionTerminator.end(live.map(\.identity), scopes: scopes, grace: grace)
            self.sessionsEnded(live, report: report, grant: grant, reason: reason, key: key)
        }
    }

    /// What the grant's sessions may have started outside their process trees: for every audit
    /// session a session of this grant ran in (this boot, open or closed; recorded only when the
    /// session's login uid is the grant's user), a login grant takes the whole audit session; a
    /// sudo grant the processes whose real uid is the run-as user the sudo ran as, started no
    /// earlier than the first such sudo in that session. None when the run-as user is the user
    /// (that would be all of the user's own processes).
    func sessionScopes(of grant: Grant) throws(StoreError) -> [SessionScope] {
        let s = try db.prepare(
            """
            SELECT audit_session, runas_uid, min(start_time) FROM d.sessions
            WHERE grant_id = ?1 AND boot_id = ?2 AND audit_session IS NOT NULL GROUP BY audit_session, runas_uid
            """
        )
        try s.bind(1, grant.id)
        try s.bind(2, BootID.current)
        let userUID = directory.user(named: grant.user)?.uid
        let grantRunas = directory.user(named: grant.runas)?.uid
        var scopes: [SessionScope] = []
        while try s.step() {
            guard let id = UInt32(exactly: s.int64(0)) else { continue }
            switch grant.capability {
            case .login:
                scopes.append(SessionScope(auditSession: id, owner: nil, notBefore: 0))
            case .sudo:
                let owner = s.isNull(1) ? grantRunas : UInt32(exactly: s.int64(1))
                guard let owner, owner != userUID else { continue }
                scopes.append(SessionScope(auditSession: id, owner: owner, notBefore: UInt64(bitPattern: s.int64(2))))
            }
        }
        return scopes
    }

    func sessionsEnded(_ sessions: [TrackedSession], report: EndReport, grant: Grant, reason: String, key: Int) {
        terminations[key] = nil
        ending.remove(grant.id)
        markClosed(sessions, reason: "ended: \(reason)", report: report, grant: grant)
        if sessions.isEmpty && !(report.hungUp.isEmpty && report.killed.isEmpty) {
            // Only what the grant's sessions left behind (sudo -b, setsid…) was still running.
            recordAlone(
                AuditEvent(
                    time: now(),
                    event: "session.end",
                    actor: "writd",
                    fields: [
                        .init("grant", grant.id), .init("user", grant.user), .init("kind", grant.capability.rawValue),
                        .init("service", "audit-session"), .init("why", reason),
                        .init("hangup", report.hungUp.map(String.init).joined(separator: ",")),
                        .init("killed", report.killed.map(String.init).joined(separator: ",")),
                        .init("ms", String(report.elapsedNanoseconds / 1_000_000)),
                    ]
                )
            )
        }
        if !report.survivors.isEmpty {
            logger.error("processes \(report.survivors) of grant \(grant.id) survived SIGKILL")
            Syslog.log(LOG_ERR, "processes of grant \(grant.id) survived SIGKILL: \(report.survivors)")
        }
    }

    func markClosed(_ sessions: [TrackedSession], reason: String, report: EndReport?, grant: Grant) {
        let now = self.now()
        do {
            try state.transaction { () throws(StoreError) in
                for session in sessions {
                    // The close reason writd gives wins over the module's own "sudo_exit", which
                    // races with it when writd's SIGHUP makes sudo exit.
                    let s = try db.prepare(
                        "UPDATE d.sessions SET closed_at = coalesce(closed_at, ?2), close_reason = ?3 WHERE id = ?1"
                    )
                    try s.bind(1, session.id)
                    try s.bind(2, now)
                    try s.bind(3, reason)
                    _ = try s.step()
                    guard let report else { continue }
                    try audit.queue(
                        db,
                        AuditEvent(
                            time: now,
                            event: "session.end",
                            actor: "writd",
                            fields: [
                                .init("grant", grant.id), .init("user", session.user), .init("kind", session.kind),
                                .init("service", session.service), .init("pid", String(session.identity.pid)),
                                .init("why", reason),
                                .init("hangup", report.hungUp.map(String.init).joined(separator: ",")),
                                .init("killed", report.killed.map(String.init).joined(separator: ",")),
                                .init("ms", String(report.elapsedNanoseconds / 1_000_000)),
                            ]
                        )
                    )
                }
            }
        } catch {
            logger.error("closing sessions of \(grant.id): \(error.description)")
        }
        flushAudit()
    }
}

/// This boot's id: process start times count from boot, so a session row from an earlier boot
/// names no process of this one.
enum BootID {
    static let current: String = {
        guard let bytes = try? FileBytes.read("/proc/sys/kernel/random/boot_id", limit: 64) else { return "unknown" }
        return String(decoding: bytes, as: UTF8.self).trimmingSpaces.description
    }()
}
