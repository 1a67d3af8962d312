import Testing
import WritCore

@Suite("AccessRequest approval steps")
struct ApprovalStepTests {
    static let t0: Int64 = 1_700_000_000

    /// Team (one of bob, carol), then security (one of sam), escalating to the CISO after 30 min.
    func request(required: Int = 1) -> AccessRequest {
        AccessRequest(
            id: "r_1",
            requester: "alice",
            capability: .sudo,
            duration: 1800,
            reason: "INC-1",
            createdAt: Self.t0,
            pendingUntil: Self.t0 + 7200,
            steps: [
                .init(name: "team", approvers: ["bob", "carol"], required: required),
                .init(name: "security", approvers: ["sam"], escalateAfter: 1800, escalateTo: ["ciso"]),
            ]
        )
    }

    @Test("steps are taken in order; the grant is issued when the last one is approved")
    func inOrder() throws {
        var r = request()
        #expect(r.currentStep == 0)
        #expect(r.requiredApprovals == 2)
        #expect(r.approvers == ["bob", "carol", "sam"])
        let first = try r.apply(.approve(by: "bob", at: Self.t0 + 60, comment: ""))
        #expect(first == [.recordApproval(remaining: 1), .stepCompleted(step: 0, next: 1)])
        #expect(r.currentStep == 1)
        #expect(r.steps[1].startedAt == Self.t0 + 60)
        #expect(r.state == .pending)
        let second = try r.apply(.approve(by: "sam", at: Self.t0 + 120, comment: "ok"))
        #expect(second == [.issueGrant(notBefore: Self.t0 + 120, expiresAt: Self.t0 + 120 + 1800)])
        #expect(r.state == .approved)
        #expect(r.approvals.map(\.step) == [0, 1])
    }

    @Test("a later step's approver cannot approve before its step, and is told which step waits")
    func laterStepFirst() throws {
        var r = request()
        #expect(throws: AccessRequest.Refusal.notThisStep("sam", step: "team")) {
            try r.apply(.approve(by: "sam", at: Self.t0 + 60, comment: ""))
        }
        #expect(r.approvals.isEmpty)
    }

    @Test("one person approves one step at most, even when named in both")
    func distinctAcrossSteps() throws {
        var r = AccessRequest(
            id: "r_2",
            requester: "alice",
            capability: .sudo,
            duration: 60,
            reason: "x",
            createdAt: Self.t0,
            pendingUntil: Self.t0 + 600,
            steps: [.init(name: "a", approvers: ["bob"]), .init(name: "b", approvers: ["bob", "sam"])]
        )
        _ = try r.apply(.approve(by: "bob", at: Self.t0 + 1, comment: ""))
        #expect(throws: AccessRequest.Refusal.alreadyApproved("bob")) {
            try r.apply(.approve(by: "bob", at: Self.t0 + 2, comment: ""))
        }
        _ = try r.apply(.approve(by: "sam", at: Self.t0 + 3, comment: ""))
        #expect(r.state == .approved)
    }

    @Test("a step needing two approvals waits for both before the next starts")
    func twoInAStep() throws {
        var r = request(required: 2)
        #expect(try r.apply(.approve(by: "bob", at: Self.t0 + 1, comment: "")) == [.recordApproval(remaining: 2)])
        #expect(r.currentStep == 0)
        _ = try r.apply(.approve(by: "carol", at: Self.t0 + 2, comment: ""))
        #expect(r.currentStep == 1)
    }

    @Test("an unanswered step escalates once, at its start plus escalate_after, and the new approver may approve")
    func escalation() throws {
        var r = request()
        _ = try r.apply(.approve(by: "bob", at: Self.t0 + 100, comment: ""))
        #expect(r.nextDeadline == Self.t0 + 100 + 1800)
        #expect(throws: AccessRequest.Refusal.notAnApprover("ciso")) {
            try r.apply(.approve(by: "ciso", at: Self.t0 + 200, comment: ""))
        }
        #expect(try r.apply(.tick(at: Self.t0 + 1899)) == [])
        #expect(try r.apply(.tick(at: Self.t0 + 1900)) == [.escalated(step: 1)])
        #expect(try r.apply(.tick(at: Self.t0 + 1901)) == [])
        #expect(r.steps[1].approvers == ["sam", "ciso"])
        #expect(r.nextDeadline == Self.t0 + 7200)
        _ = try r.apply(.approve(by: "ciso", at: Self.t0 + 2000, comment: ""))
        #expect(r.state == .approved)
    }

    @Test("the first step's escalation counts from the request's creation")
    func firstStepEscalation() throws {
        var r = AccessRequest(
            id: "r_3",
            requester: "alice",
            capability: .login,
            duration: 60,
            reason: "x",
            createdAt: Self.t0,
            pendingUntil: Self.t0 + 600,
            steps: [.init(name: "team", approvers: ["bob"], escalateAfter: 300, escalateTo: ["lead"])]
        )
        #expect(r.nextDeadline == Self.t0 + 300)
        #expect(try r.apply(.tick(at: Self.t0 + 300)) == [.escalated(step: 0)])
        // Expiry still wins when it comes first.
        #expect(try r.apply(.tick(at: Self.t0 + 600)) == [.notifyExpired])
    }

    @Test("any step's approver may deny at any step")
    func denyAnyStep() throws {
        var r = request()
        _ = try r.apply(.deny(by: "sam", at: Self.t0 + 5, reason: "no change ticket"))
        #expect(r.state == .denied)
    }

    @Test("approvers a hook adds join the first step, and only while it is current")
    func addApprovers() throws {
        var late = request()
        _ = try late.apply(.approve(by: "bob", at: Self.t0 + 1, comment: ""))
        #expect(late.addApprovers(["dave"]) == [])
        #expect(late.steps[1].approvers == ["sam"])
        var r = request()
        #expect(r.addApprovers(["dave", "bob"]) == ["dave"])
        #expect(r.steps[0].approvers == ["bob", "carol", "dave"])
        #expect(r.steps[1].approvers == ["sam"])
        _ = try r.apply(.approve(by: "dave", at: Self.t0 + 5, comment: ""))
        #expect(r.currentStep == 1)
    }
}
