import FoundationEssentials
import Glibc
import Testing
import WritExpr
import WritPolicy

@testable import WritHooks

/// hooks/python/writ_hook.py end to end, and every example in examples/hooks.
@Suite("Python helper and examples")
struct PythonHookTests {
    let runner = testRunner()

    func decide(_ spec: HookSpec, _ input: HookInput = sampleInput()) async -> Result<HookDecision, HookFailure> {
        await runner.decide(spec, input: input)
    }

    func python(_ box: Sandbox, _ name: String, _ body: String) throws -> String {
        try box.write(name, "#!/usr/bin/env python3\nimport writ_hook\n\n" + body)
    }

    @Test func helperDecisions() async throws {
        try await Sandbox.with { box in
            let approve = try python(
                box,
                "approve.py",
                """
                def decide(req):
                    assert req.user == "alice" and req.groups == ["sre"] and req.policy.flow == "ops-sudo"
                    assert req.commands == ["/usr/bin/systemctl restart nginx"] and req.decision is None
                    if req.context.get("on_call"):
                        return writ_hook.approve("on call\\nin PagerDuty", duration=99999)
                    return writ_hook.defer()

                writ_hook.run(decide)
                """
            )
            // A longer duration is cut to the request's; control characters become spaces.
            #expect(
                await decide(HookSpec(path: approve), sampleInput(context: ["on_call": true]))
                    == .success(HookDecision(kind: .approve, reason: "on call in PagerDuty", duration: 1800))
            )
            #expect(await decide(HookSpec(path: approve)) == .success(HookDecision(kind: .defer, reason: "")))

            let deny = try python(
                box,
                "deny.py",
                """
                writ_hook.run(lambda req: writ_hook.deny("x" * 600 if req.fields["ticket"] == "INC-1" else "no"))
                """
            )
            guard case .success(let denied) = await decide(HookSpec(path: deny)) else {
                Issue.record("deny failed")
                return
            }
            #expect(denied.kind == .deny && denied.reason.count == 500 && denied.reason.hasSuffix("…"))

            let deferring = try python(
                box,
                "defer.py",
                """
                writ_hook.run(lambda req: writ_hook.defer(f"{req.host} needs a DBA", add_approvers=["carol", "dave"]))
                """
            )
            #expect(
                await decide(HookSpec(path: deferring))
                    == .success(
                        HookDecision(kind: .defer, reason: "web-01 needs a DBA", addApprovers: ["carol", "dave"])
                    )
            )

            let raises = try python(
                box,
                "raises.py",
                """
                def decide(req):
                    raise ValueError("the CMDB is down")

                writ_hook.run(decide)
                """
            )
            guard case .failure(.exited(1, let stderr)) = await decide(HookSpec(path: raises)) else {
                Issue.record("an exception did not exit 1")
                return
            }
            #expect(stderr.hasSuffix("writ hook failed: ValueError: the CMDB is down"), "\(stderr)")

            let nothing = try python(box, "nothing.py", "writ_hook.run(lambda req: None)\n")
            guard case .failure(.exited(1, let why)) = await decide(HookSpec(path: nothing)) else {
                Issue.record("returning None did not exit 1")
                return
            }
            #expect(why.contains("decide() returned None"))

            let notified = try python(
                box,
                "notify.py",
                """
                import sys
                def notify(event):
                    assert event.event == "on_expire" and event.decision.state == "expired"
                    print("ignored output")
                writ_hook.run_notify(notify)
                """
            )
            let expired = sampleInput(event: "on_expire", decision: HookInput.Decision(state: "expired"))
            #expect(await runner.notify(HookSpec(path: notified), input: expired) == nil)
            let failing = try python(box, "fails.py", "writ_hook.run_notify(lambda e: 1 / 0)\n")
            guard case .exited(1, let stderr)? = await runner.notify(HookSpec(path: failing), input: expired) else {
                Issue.record("a failing notification was not reported")
                return
            }
            #expect(stderr.contains("ZeroDivisionError"))
        }
    }

    @Test func oncallExample() async throws {
        try await Sandbox.with { box in
            let hook = try box.copy(fromRepository: "examples/hooks/oncall_auto_approve.py")
            try box.write("oncall.txt", "# on call this week\nbob\ncarol  # until Friday\n", mode: 0o644)
            let spec = HookSpec(path: hook, environment: ["WRIT_ONCALL_FILE": box.root + "/oncall.txt"])
            #expect(
                await decide(spec, sampleInput(context: ["on_call": true]))
                    == .success(HookDecision(kind: .approve, reason: "alice is on call"))
            )
            #expect(await decide(spec, sampleInput(context: [:])).map(\.kind) == .success(.defer))
            let carol = await decide(spec, sampleInput(user: "carol"))
            if geteuid() == 0 {
                #expect(carol.map(\.reason) == .success("carol is listed in \(box.root)/oncall.txt"))
                // A list others could edit is ignored.
                chmod(box.root + "/oncall.txt", 0o666)
                #expect(await decide(spec, sampleInput(user: "carol")).map(\.kind) == .success(.defer))
            } else {
                #expect(carol.map(\.kind) == .success(.defer))  // not root's: ignored
            }
        }
    }

    @Test func ticketAndWebhookExamples() async throws {
        try await Sandbox.with { box in
            let script = try box.write("server.py", httpServerScript, mode: 0o644)
            let server = try Background.start(["/usr/bin/python3", script, box.out])
            defer { server.stop() }
            let port = try #require(await box.waitFor(box.out + "/port", seconds: 30), "the HTTP server did not start")

            let ticket = try box.copy(fromRepository: "examples/hooks/require_ticket.py")
            let spec = HookSpec(
                path: ticket,
                environment: ["TICKET_URL": "http://127.0.0.1:\(port)/rest/api/2/issue/{ticket}"]
            )
            #expect(
                await decide(spec, sampleInput(reason: "restart nginx", fields: [:])).map(\.kind) == .success(.deny)
            )
            #expect(
                await decide(spec, sampleInput(reason: "INC-1 restart nginx", fields: [:]))
                    == .success(HookDecision(kind: .defer, reason: "ticket INC-1 exists"))
            )
            #expect(
                await decide(spec, sampleInput(reason: "INC-404 restart nginx", fields: [:]))
                    == .success(HookDecision(kind: .deny, reason: "ticket INC-404 does not exist"))
            )
            let down = HookSpec(path: ticket, environment: ["TICKET_URL": "http://127.0.0.1:1/issue/{ticket}"])
            let unreachable = await decide(down, sampleInput(reason: "INC-1 restart nginx"))
            #expect(unreachable.map(\.kind) == .success(.defer))
            #expect((try? unreachable.get().reason)?.contains("could not check ticket INC-1") == true)
            guard case .failure(.exited(1, _)) = await decide(HookSpec(path: ticket)) else {
                Issue.record("a missing TICKET_URL did not fail")
                return
            }

            let webhook = try box.copy(fromRepository: "examples/hooks/notify_webhook.py")
            let approved = sampleInput(
                event: "on_approve",
                decision: HookInput.Decision(
                    state: "approved",
                    by: "bob",
                    note: "ok",
                    grantId: "g-7",
                    expiresAt: 1_764_001_800
                )
            )
            let notify = HookSpec(path: webhook, environment: ["WEBHOOK_URL": "http://127.0.0.1:\(port)/hooks/writ"])
            #expect(await runner.notify(notify, input: approved) == nil)
            let posted = try #require(await box.waitFor(box.out + "/posted.json", seconds: 2))
            let body = try JSONDecoder().decode(JSONValue.self, from: Data(posted.utf8))
            guard case .object(let object) = body else {
                Issue.record("not an object: \(posted)")
                return
            }
            #expect(object["event"] == "on_approve")
            #expect(
                object["text"]
                    == "writ: alice's request r-0001 for ops-sudo on web-01 was approved by bob (INC-1 restart nginx)"
            )
            #expect(
                object["decision"]
                    == .object([
                        "state": "approved", "by": "bob", "note": "ok", "grant_id": "g-7", "expires_at": 1_764_001_800,
                    ])
            )
            let unreachableHook = HookSpec(path: webhook, environment: ["WEBHOOK_URL": "http://127.0.0.1:1/x"])
            guard case .exited(1, let why)? = await runner.notify(unreachableHook, input: approved) else {
                Issue.record("an unreachable webhook was not reported")
                return
            }
            #expect(why.contains("HTTPFailure"))
        }
    }

    @Test func businessHoursExample() async throws {
        try await Sandbox.with { box in
            let hook = try box.copy(fromRepository: "examples/hooks/business_hours.sh")
            let spec = HookSpec(path: hook)
            let wednesdayMorning: Int64 = 1_764_151_200  // 2025-11-26 10:00 UTC
            let wednesdayNight = wednesdayMorning + 10 * 3600
            let saturdayMorning = wednesdayMorning + 3 * 86400
            #expect(await decide(spec, sampleInput(now: wednesdayMorning)).map(\.kind) == .success(.defer))
            let night = await decide(spec, sampleInput(now: wednesdayNight))
            #expect(night.map(\.kind) == .success(.deny))
            #expect((try? night.get().reason)?.contains("outside business hours (Mon-Fri 09:00-17:00 UTC)") == true)
            #expect(await decide(spec, sampleInput(now: saturdayMorning)).map(\.kind) == .success(.deny))
        }
    }
}
