import Testing
import WritAudit
import WritProtocol
import WritStore

@testable import WritDaemon

/// The engine's side of Slack, without Slack: what a decision queues, and the flow's
/// `slack_approve` enforced for actions that come from Slack.
@Suite(.serialized) struct SlackEngineTests {
    static let integrations = """
        slack: {bot_token: xoxb-test, app_token: xapp-test, api_url: "http://127.0.0.1:9/api/", channel: C0DEFAULT}
        """
    static let policy = """
        version: 1
        flows:
          - name: ops
            capability: sudo
            requesters: {users: [daemon]}
            approvers: {users: [bin]}
            reason: {required: false}
          - name: vault
            capability: sudo
            runas: bin
            requesters: {users: [daemon]}
            approvers: {users: [bin]}
            reason: {required: false}
            slack_channel: C0VAULT
            slack_approve: cli
          - name: careful
            capability: sudo
            runas: sys
            requesters: {users: [daemon]}
            approvers: {users: [bin]}
            reason: {required: false}
            slack_approve: confirm
        """

    func file(_ f: Fixture, flow: String, runas: String? = nil) async throws -> String {
        let r = await f.call(Users.requester, .request) {
            $0.capability = "sudo"
            $0.flow = flow
            $0.runas = runas
        }
        return try #require(r.request?.id, "\(r.error?.message ?? "")")
    }

    @Test("a decision queues its card update and its DM with it; one request's rows go in order")
    func outbox() async throws {
        let f = try await Fixture(policy: Self.policy, integrations: Self.integrations)
        defer { f.cleanup() }
        let id = try await file(f, flow: "ops")
        _ = await f.call(Users.approver1, .approve) { $0.id = id }
        var seen: [String] = []
        for _ in 0..<5 {
            let (jobs, _) = await f.engine.slackJobs()
            #expect(jobs.count <= 1)  // one request: one row per round, in order
            guard let job = jobs.first else { break }
            #expect(job.request?.id == id)
            #expect(job.channel == "C0DEFAULT")
            seen.append("\(job.kind) \(job.event)")
            if job.event == "request.approve" { #expect(job.grant != nil) }  // the DM says until when
            await f.engine.slackDelivered(job.seq)
        }
        #expect(seen == ["card request.create", "card request.approve", "dm request.approve"])
    }

    @Test("a waiting row holds back only its own request's rows; the next row of a thread follows its head")
    func outboxThreads() async throws {
        let f = try await Fixture(policy: Self.policy, integrations: Self.integrations)
        defer { f.cleanup() }
        let a = try await file(f, flow: "ops")
        let b = try await file(f, flow: "ops")
        _ = await f.call(Users.approver1, .approve) { $0.id = a }
        _ = await f.call(Users.approver1, .approve) { $0.id = b }
        // a's card cannot be posted now: it waits a minute, and a's other rows with it.
        let first = try #require(await f.engine.slackJobs().jobs.first)
        #expect(first.request?.id == a && first.event == "request.create")
        await f.engine.slackRetry(first.seq, error: "HTTP 503", at: f.clock.now + 60)
        var seen: [String] = []
        while let job = await f.engine.slackJobs().jobs.first {
            seen.append("\(job.request?.id == b ? "b" : "a") \(job.kind) \(job.event)")
            await f.engine.slackDelivered(job.seq)
        }
        #expect(seen == ["b card request.create", "b card request.approve", "b dm request.approve"])
        #expect(await f.engine.slackJobs().wakeAt == f.clock.now + 60)
        f.clock.advance(60)
        seen = []
        while let job = await f.engine.slackJobs().jobs.first {
            seen.append("\(job.request?.id == a ? "a" : "b") \(job.kind) \(job.event)")
            await f.engine.slackDelivered(job.seq)
        }
        #expect(seen == ["a card request.create", "a card request.approve", "a dm request.approve"])
    }

    @Test("a backlog of 20,000 rows is scheduled through the index of thread heads")
    func outboxBacklog() async throws {
        let f = try await Fixture(policy: Self.policy, integrations: Self.integrations)
        defer { f.cleanup() }
        // 10,000 threads of two rows, the oldest 9,990 heads waiting (Slack down), 10 due.
        let now = f.clock.now
        try await f.engine.queueBacklog(threads: 10_000, waiting: 9_990, until: now + 300)
        let (jobs, wakeAt) = await f.engine.slackJobs()
        #expect(jobs.count == 10)
        #expect(Set(jobs.map(\.seq)).count == 10)
        #expect(jobs.allSatisfy { $0.event == "request.create" })  // heads only, never the second row
        #expect(wakeAt == now + 300)
        // Delivering a head promotes its thread's next row, and only that one.
        for job in jobs { await f.engine.slackDelivered(job.seq) }
        let next = await f.engine.slackJobs().jobs
        #expect(next.count == 10 && next.allSatisfy { $0.event == "request.cancel" })
    }

    @Test("without Slack configured nothing is queued")
    func noSlack() async throws {
        let f = try await Fixture(policy: Self.policy)
        defer { f.cleanup() }
        _ = try await file(f, flow: "ops")
        #expect(await f.engine.slackJobs().jobs.isEmpty)
    }

    @Test("from Slack, slack_approve decides: cli refuses, confirm needs a comment; the CLI is unaffected")
    func approveModes() async throws {
        let f = try await Fixture(policy: Self.policy, integrations: Self.integrations)
        defer { f.cleanup() }
        let vault = try await file(f, flow: "vault", runas: "bin")
        var r = WireRequest(op: .approve)
        r.id = vault
        r.comment = "looks fine"
        var answer = await f.engine.handle(r, from: .slack(member: "U0BIN", uid: Users.approver1.uid))
        #expect(answer.error?.message.contains("approved on a host only") == true)
        answer = await f.engine.handle(r, from: .socket(Users.approver1))
        #expect(answer.request?.state == "approved")

        let careful = try await file(f, flow: "careful", runas: "sys")
        r.id = careful
        r.comment = "  "
        answer = await f.engine.handle(r, from: .slack(member: "U0BIN", uid: Users.approver1.uid))
        #expect(answer.error?.message.contains("needs a comment") == true)
        r.comment = "checked on a call"
        answer = await f.engine.handle(r, from: .slack(member: "U0BIN", uid: Users.approver1.uid))
        #expect(answer.request?.state == "approved")
        let lines = try AuditLog(path: f.config.auditPath).lines().filter { $0.contains("\"request.approve\"") }
        #expect(lines.last?.contains("\"via\":\"slack:U0BIN\"") == true)

        // Slack has no process on the host and files, extends and decides only: even mapped to
        // root (which identities never do) it can neither report a session, reload the policy,
        // add or revoke a grant nor read the audit log.
        let asRoot = Caller.slack(member: "U0ROOT", uid: 0)
        var report = WireRequest(op: .report)
        report.event = "sudo_accept"
        report.user = "alice"
        #expect(await f.engine.handle(report, from: asRoot).error?.code == "forbidden")
        for op in [Operation.reload, .grantAdd, .grantRevoke, .revoke, .status, .requests] {
            #expect(await f.engine.handle(WireRequest(op: op), from: asRoot).error?.code == "forbidden", "\(op)")
        }
        #expect(await f.engine.serve(WireRequest(op: .audit), from: asRoot).error?.code == "forbidden")
        #expect(await f.engine.handle(WireRequest(op: .reload), from: .socket(Users.root)).ok)
    }
}

extension Engine {
    /// `threads` requests' rows in the outbox (a card and its update each, ids that no request
    /// has), the first `waiting` threads' heads due at `until`.
    func queueBacklog(threads: Int, waiting: Int, until: Int64) throws {
        func id(_ i: Int) -> String { "r_backlog" + String(repeating: "0", count: 6 - String(i).count) + String(i) }
        try state.transaction { () throws(StoreError) in
            for i in 0..<threads {
                for event in ["request.create", "request.cancel"] {
                    try SlackOutbox.enqueue(
                        db,
                        kind: "card",
                        event: event,
                        request: id(i),
                        grant: nil,
                        actor: "daemon",
                        at: now()
                    )
                }
            }
            let s = try db.prepare("UPDATE d.slack_outbox SET next_at = ?1 WHERE head = 1 AND thread < ?2")
            try s.bind(1, until)
            try s.bind(2, id(waiting))
            _ = try s.step()
        }
    }
}
