import Testing
import WritAudit
import WritProtocol

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
        var answer = await f.engine.handle(r, peer: Users.approver1, via: "slack:U0BIN")
        #expect(answer.error?.message.contains("approved on a host only") == true)
        answer = await f.engine.handle(r, peer: Users.approver1)
        #expect(answer.request?.state == "approved")

        let careful = try await file(f, flow: "careful", runas: "sys")
        r.id = careful
        r.comment = "  "
        answer = await f.engine.handle(r, peer: Users.approver1, via: "slack:U0BIN")
        #expect(answer.error?.message.contains("needs a comment") == true)
        r.comment = "checked on a call"
        answer = await f.engine.handle(r, peer: Users.approver1, via: "slack:U0BIN")
        #expect(answer.request?.state == "approved")
        let lines = try AuditLog(path: f.config.auditPath).lines().filter { $0.contains("\"request.approve\"") }
        #expect(lines.last?.contains("\"via\":\"slack:U0BIN\"") == true)
    }
}
