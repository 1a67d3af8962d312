import WritAudit
import WritCore
import WritEngine
import WritPolicy
import WritProcesses
import WritProtocol
import WritStore

/// What writd has to tell Slack, kept in writd's database until Slack has it.
///
/// A row is written in the same transaction as the change it reports (the audit record's
/// follower, `SlackOutbox.follow`), so a decision and the message about it commit together, and a
/// Slack outage or a restart delays messages but loses none. `SlackService` delivers the rows in
/// order; a row Slack refuses for good (`channel_not_found`) is logged and dropped, one Slack
/// cannot take now waits, and the rows behind it wait with it (a card is updated after it is
/// posted, never before).
enum SlackOutbox {
    /// Audit events that change what a request card says.
    static let cardEvents: Set<String> = [
        "request.create", "request.approval", "request.step", "request.escalate", "request.approve", "request.deny",
        "request.expire", "request.cancel", "grant.extend",
    ]
    /// Audit events the requester (or the grant's holder) is told about in a DM.
    static let directEvents: Set<String> = [
        "request.approve", "request.deny", "request.expire", "grant.revoke", "grant.expire",
    ]

    /// Queues the rows `event` needs (a card update, a DM: one row each, so a DM that must wait
    /// never repeats the card's thread reply); inside the event's transaction.
    static func follow(_ db: SQLiteDatabase, _ event: AuditEvent) throws(StoreError) {
        let card = cardEvents.contains(event.event)
        let direct = directEvents.contains(event.event)
        guard card || direct else { return }
        func field(_ name: String) -> String? { event.fields.first { $0.name == name }?.value }
        let isGrant = event.event.hasPrefix("grant.")
        let detail = field("note") ?? field("comment") ?? field("added") ?? field("evidence") ?? ""
        for kind in [card ? "card" : nil, direct ? "dm" : nil].compactMap({ $0 }) {
            try enqueue(
                db,
                kind: kind,
                event: event.event,
                request: field("request"),
                grant: isGrant ? field("grant") : nil,
                actor: event.actor,
                detail: detail,
                at: event.time
            )
        }
    }

    static func enqueue(
        _ db: SQLiteDatabase,
        kind: String,
        event: String,
        request: String?,
        grant: String?,
        actor: String,
        detail: String = "",
        at: Int64
    ) throws(StoreError) {
        // The row is its thread's head when no older row of the thread waits (an index probe).
        let s = try db.prepare(
            """
            INSERT INTO d.slack_outbox (kind, event, request_id, grant_id, actor, detail, created_at, thread, head)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NOT EXISTS (SELECT 1 FROM d.slack_outbox WHERE thread = ?8))
            """
        )
        try s.bind(1, kind)
        try s.bind(2, event)
        try s.bind(3, request)
        try s.bind(4, grant)
        try s.bind(5, actor)
        try s.bind(6, detail)
        try s.bind(7, at)
        try s.bind(8, request ?? grant ?? "")
        _ = try s.step()
    }

    /// A row older than this is dropped unsent (logged): a "your access works now" a day late
    /// misleads more than it helps.
    static let maximumAge: Int64 = 86400
}

/// A card writd posted for a request.
struct SlackCardRef: Sendable, Equatable {
    var channel: String
    var ts: String
}

/// One outbox row with what delivering it needs, read on the engine's actor.
struct SlackJob: Sendable {
    var seq: Int64
    /// `card`: post or update the request's card (and reply in its thread); `dm`: tell the person.
    var kind: String
    var event: String
    var actor: String
    var detail: String
    var attempts: Int
    var createdAt: Int64
    /// The request as it is now (a card always shows the latest state).
    var request: RequestView?
    var grant: Grant?
    var card: SlackCardRef?
    /// Where the request's card goes: the flow's `slack_channel`, else the default channel.
    var channel: String?
    var approveMode: SlackApproval
    /// The person the DM goes to: the requester, or the grant's holder.
    var recipient: String?
}

extension Engine {
    /// The rows due now, oldest first, each the oldest row of its request (or grant): rows about
    /// one request keep their order, and one that waits holds back only that request's. Also
    /// returns when the earliest waiting row falls due. A row that cannot be read is dropped with
    /// a log line rather than stalling the rest.
    func slackJobs(limit: Int = 20) -> (jobs: [SlackJob], wakeAt: Int64?) {
        let now = self.now()
        var jobs: [SlackJob] = []
        var rows: [(Int64, String, String, String?, String?, String, String, Int64, Int64, Int64)] = []
        var wakeAt: Int64?
        do {
            let s = try db.prepare(
                """
                SELECT seq, kind, event, request_id, grant_id, actor, detail, attempts, next_at, created_at
                FROM d.slack_outbox INDEXED BY slack_outbox_heads WHERE head = 1 AND next_at <= ?1
                ORDER BY seq LIMIT ?2
                """
            )
            try s.bind(1, now)
            try s.bind(2, Int64(limit))
            while try s.step() {
                rows.append(
                    (
                        s.int64(0), s.string(1), s.string(2), s.optionalString(3), s.optionalString(4), s.string(5),
                        s.string(6), s.int64(7), s.int64(8), s.int64(9)
                    )
                )
            }
            let w = try db.prepare(
                "SELECT min(next_at) FROM d.slack_outbox INDEXED BY slack_outbox_heads WHERE head = 1 AND next_at > ?1"
            )
            try w.bind(1, now)
            if try w.step(), !w.isNull(0) { wakeAt = w.int64(0) }
        } catch {
            logger.error("Slack outbox: \(error.description)")
            return ([], now + 5)
        }
        let settings = integrations.slackSettings
        for row in rows where row.8 <= now {
            do {
                let request = try row.3.flatMap { (id: String) throws(StoreError) in
                    try EngineRequest.load(db, id: id)
                }
                // The grant an event is about, or the one the request earned (its end time).
                let grantID = row.4 ?? request?.grantID
                let grant = try grantID.flatMap { (id: String) throws(StoreError) in try state.grants.grant(id: id) }
                let flow = request.flatMap { policy?.flow(named: $0.flow) }
                jobs.append(
                    SlackJob(
                        seq: row.0,
                        kind: row.1,
                        event: row.2,
                        actor: row.5,
                        detail: row.6,
                        attempts: Int(row.7),
                        createdAt: row.9,
                        request: request?.view,
                        grant: grant,
                        card: try request.flatMap { (r: EngineRequest) throws(StoreError) in try slackCard(r.core.id) },
                        channel: flow?.slackChannel ?? settings?.channel,
                        // A flow the policy no longer has gets no Approve button.
                        approveMode: flow?.slackApprove ?? .cli,
                        recipient: grant?.user ?? request?.core.requester
                    )
                )
            } catch {
                logger.error("Slack outbox: dropped row \(row.0) (\(row.2)), unreadable: \(error.description)")
                _ = slackDelivered(row.0)
            }
        }
        return (jobs, wakeAt)
    }

    /// After a pause (a refused token) or at a session's start: everything is due again now.
    func slackRescheduleAll(at: Int64? = nil) {
        do {
            let s = try db.prepare(
                at == nil
                    ? "UPDATE d.slack_outbox SET next_at = 0"
                    : "UPDATE d.slack_outbox SET next_at = max(next_at, ?1)"
            )
            if let at { try s.bind(1, at) }
            _ = try s.step()
        } catch {
            logger.error("Slack outbox: \(error.description)")
        }
    }

    func slackCard(_ requestID: String) throws(StoreError) -> SlackCardRef? {
        let s = try db.prepare("SELECT channel, ts FROM d.slack_cards WHERE request_id = ?1")
        try s.bind(1, requestID)
        guard try s.step() else { return nil }
        return SlackCardRef(channel: s.string(0), ts: s.string(1))
    }

    /// Drops a row that was delivered (or given up on). False when writd.db cannot be written:
    /// the caller then waits instead of sending the row again at once.
    @discardableResult
    func slackDelivered(_ seq: Int64) -> Bool {
        do {
            // The next row of its thread becomes the head (index probes only).
            try state.transaction { () throws(StoreError) in
                let d = try db.prepare(
                    """
                    UPDATE d.slack_outbox SET head = 1 WHERE seq = (
                        SELECT n.seq FROM d.slack_outbox n, d.slack_outbox o
                        WHERE o.seq = ?1 AND o.head = 1 AND n.thread = o.thread AND n.seq > o.seq
                        ORDER BY n.seq LIMIT 1)
                    """
                )
                try d.bind(1, seq)
                _ = try d.step()
                let x = try db.prepare("DELETE FROM d.slack_outbox WHERE seq = ?1")
                try x.bind(1, seq)
                _ = try x.step()
            }
            return true
        } catch {
            logger.error("Slack outbox: cannot record a delivery: \(error.description)")
            return false
        }
    }

    func slackSaveCard(_ requestID: String, _ ref: SlackCardRef) {
        do {
            let s = try db.prepare("INSERT OR REPLACE INTO d.slack_cards (request_id, channel, ts) VALUES (?1, ?2, ?3)")
            try s.bind(1, requestID)
            try s.bind(2, ref.channel)
            try s.bind(3, ref.ts)
            _ = try s.step()
        } catch {
            logger.error("Slack: cannot record the card of \(requestID): \(error.description)")
        }
    }

    /// Slack could not take the row now: try again at `at`. False when writd.db cannot be written.
    @discardableResult
    func slackRetry(_ seq: Int64, error: String, at: Int64) -> Bool {
        do {
            let s = try db.prepare(
                "UPDATE d.slack_outbox SET attempts = attempts + 1, next_at = ?2, last_error = ?3 WHERE seq = ?1"
            )
            try s.bind(1, seq)
            try s.bind(2, at)
            try s.bind(3, error)
            _ = try s.step()
            return true
        } catch {
            logger.error("Slack outbox: \(error.description)")
            return false
        }
    }

    /// How many rows wait, and the oldest one's error, as one line for `writ doctor` (nil: none).
    func slackBacklog() -> String? {
        guard let s = try? db.prepare("SELECT count(*), min(created_at) FROM d.slack_outbox"), (try? s.step()) == true,
            s.int64(0) > 0
        else { return nil }
        let count = s.int64(0)
        let age = max(0, now() - s.int64(1))
        let e = try? db.prepare(
            "SELECT last_error FROM d.slack_outbox WHERE last_error IS NOT NULL ORDER BY seq LIMIT 1"
        )
        let lastError = (try? e?.step()) == true ? e?.optionalString(0) : nil
        return "slack outbox: \(count) message(s) waiting, the oldest for \(DurationText.format(age))"
            + (lastError.map { " (last error: \($0))" } ?? "")
    }

    // MARK: identities

    /// The Slack user id writd pinned to `user`, or the unix user pinned to `slackID`.
    func slackPinned(unix user: String? = nil, slackID: String? = nil) -> (unix: String, slackID: String)? {
        guard
            let s = try? db.prepare(
                user != nil
                    ? "SELECT unix_user, slack_id FROM d.slack_users WHERE unix_user = ?1"
                    : "SELECT unix_user, slack_id FROM d.slack_users WHERE slack_id = ?1"
            )
        else { return nil }
        guard (try? s.bind(1, user ?? slackID ?? "")) != nil, (try? s.step()) == true else { return nil }
        return (s.string(0), s.string(1))
    }

    /// Pins `user` to `slackID` the first time they are matched by email; later matches must
    /// agree. Audited: who a Slack account speaks for is a security fact.
    func slackPin(unix user: String, slackID: String, email: String) -> Bool {
        if let pinned = slackPinned(unix: user) { return pinned.slackID == slackID }
        if slackPinned(slackID: slackID) != nil { return false }
        let now = self.now()
        do {
            try state.transaction { () throws(StoreError) in
                let s = try db.prepare(
                    "INSERT INTO d.slack_users (unix_user, slack_id, email, pinned_at) VALUES (?1, ?2, ?3, ?4)"
                )
                try s.bind(1, user)
                try s.bind(2, slackID)
                try s.bind(3, email)
                try s.bind(4, now)
                _ = try s.step()
                try audit.queue(
                    db,
                    AuditEvent(
                        time: now,
                        event: "slack.pin",
                        actor: "writd",
                        fields: [.init("user", user), .init("slack_id", slackID), .init("email", email)]
                    )
                )
            }
        } catch {
            logger.error("Slack: cannot pin \(user) to \(slackID): \(error.description)")
            return false
        }
        flushAudit()
        logger.notice("Slack: \(user) is \(slackID) (matched by email \(email), pinned)")
        return true
    }

    // MARK: what Slack's forms need

    /// The flows `user` may request on this host, for the `/writ` form.
    func slackRequestableFlows(user: String) -> [Flow] {
        guard let policy, let account = directory.user(named: user) else { return [] }
        return policy.flows(
            requestableBy: user,
            unixGroups: directory.groupNames(of: account),
            host: config.hostName
        )
    }

    /// A request's flow setting for Slack approvals, and the request (nil: no such request).
    func slackApproval(of requestID: String) -> (mode: SlackApproval, request: RequestView)? {
        guard let r = try? EngineRequest.load(db, id: requestID) else { return nil }
        return (policy?.flow(named: r.flow)?.slackApprove ?? .cli, r.view)
    }

    /// A grant's holder and the request that issued it (the Extend button).
    func slackGrant(_ id: String) -> (grant: Grant, request: RequestView?)? {
        guard let g = try? state.grants.grant(id: id) else { return nil }
        let r = g.requestID.flatMap { try? EngineRequest.load(db, id: $0) }
        return (g, r?.view)
    }

}
