import Testing
import WritCore

@Suite("AccessRequest lifecycle")
struct AccessRequestTests {
    static let t0: Int64 = 1_700_000_000

    func request(
        approvers: Set<String> = ["bob", "carol"],
        required: Int = 1,
        selfApproval: Bool = false
    )
        -> AccessRequest
    {
        AccessRequest(
            id: "r_1",
            requester: "alice",
            capability: .sudo,
            duration: 1800,
            reason: "INC-4521 disk full",
            createdAt: Self.t0,
            pendingUntil: Self.t0 + 3600,
            approvers: approvers,
            requiredApprovals: required,
            selfApprovalAllowed: selfApproval
        )
    }

    @Test("one approval issues a grant whose clock starts at approval, not at the request")
    func approve() throws {
        var r = request()
        let actions = try r.apply(.approve(by: "bob", at: Self.t0 + 600, comment: "ok"))
        #expect(actions == [.issueGrant(notBefore: Self.t0 + 600, expiresAt: Self.t0 + 600 + 1800)])
        #expect(r.state == .approved)
        #expect(r.decidedBy == "bob")
    }

    @Test("a second approval of an approved request is refused: exactly one grant")
    func secondApproval() throws {
        var r = request()
        _ = try r.apply(.approve(by: "bob", at: Self.t0 + 1, comment: ""))
        #expect(throws: AccessRequest.Refusal.notPending(.approved)) {
            try r.apply(.approve(by: "carol", at: Self.t0 + 2, comment: ""))
        }
    }

    @Test("self-approval is refused unless the flow allows it")
    func selfApproval() throws {
        var r = request(approvers: ["alice", "bob"])
        #expect(throws: AccessRequest.Refusal.selfApproval) {
            try r.apply(.approve(by: "alice", at: Self.t0, comment: ""))
        }
        #expect(r.state == .pending)
        var allowed = request(approvers: ["bob"], selfApproval: true)
        #expect(try allowed.apply(.approve(by: "alice", at: Self.t0, comment: "")).count == 1)
    }

    @Test("someone who is not an approver can neither approve nor deny")
    func nonApprover() {
        var r = request()
        #expect(throws: AccessRequest.Refusal.notAnApprover("mallory")) {
            try r.apply(.approve(by: "mallory", at: Self.t0, comment: ""))
        }
        #expect(throws: AccessRequest.Refusal.notAnApprover("mallory")) {
            try r.apply(.deny(by: "mallory", at: Self.t0, reason: "no"))
        }
        #expect(r.state == .pending && r.approvals.isEmpty)
    }

    @Test("two approvals needed: distinct approvers, the grant on the second")
    func twoApprovals() throws {
        var r = request(required: 2)
        #expect(try r.apply(.approve(by: "bob", at: Self.t0 + 10, comment: "")) == [.recordApproval(remaining: 1)])
        #expect(throws: AccessRequest.Refusal.alreadyApproved("bob")) {
            try r.apply(.approve(by: "bob", at: Self.t0 + 11, comment: ""))
        }
        #expect(
            try r.apply(.approve(by: "carol", at: Self.t0 + 20, comment: ""))
                == [.issueGrant(notBefore: Self.t0 + 20, expiresAt: Self.t0 + 20 + 1800)]
        )
    }

    @Test("deny, cancel and expiry end the request; only the requester cancels")
    func otherEnds() throws {
        var denied = request()
        #expect(
            try denied.apply(.deny(by: "carol", at: Self.t0 + 5, reason: "not during the freeze")) == [.notifyDenied]
        )
        #expect(denied.state == .denied && denied.decisionNote == "not during the freeze")

        var cancelled = request()
        #expect(throws: AccessRequest.Refusal.onlyRequesterMayCancel) {
            try cancelled.apply(.cancel(by: "bob", at: Self.t0))
        }
        #expect(try cancelled.apply(.cancel(by: "alice", at: Self.t0 + 5)) == [.notifyCancelled])

        var unanswered = request()
        #expect(try unanswered.apply(.tick(at: Self.t0 + 3599)) == [])
        #expect(try unanswered.apply(.tick(at: Self.t0 + 4000)) == [.notifyExpired])
        #expect(unanswered.state == .expired && unanswered.decidedAt == Self.t0 + 3600)
        #expect(try unanswered.apply(.tick(at: Self.t0 + 5000)) == [])
    }

    @Test("an approval after the deadline loses, even before the tick marks the request expired")
    func lateApproval() {
        var r = request()
        #expect(throws: AccessRequest.Refusal.expired) {
            try r.apply(.approve(by: "bob", at: Self.t0 + 3600, comment: ""))
        }
        #expect(r.state == .pending)
    }

    @Test("refusals explain themselves on one line")
    func refusalText() {
        let all: [AccessRequest.Refusal] = [
            .notPending(.denied), .notAnApprover("x\ny"), .selfApproval, .alreadyApproved("bob"),
            .onlyRequesterMayCancel,
            .expired,
        ]
        for refusal in all { #expect(!refusal.description.contains("\n")) }
    }
}
