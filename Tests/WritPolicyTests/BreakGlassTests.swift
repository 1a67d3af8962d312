import Testing
import WritCore
import WritExpr
import WritPolicy

/// PagerDuty break-glass in the policy, and the integrations file.
@Suite("Break-glass and integration settings")
struct BreakGlassTests {
    static let now: Int64 = 1_764_072_000

    let policy: Policy = {
        let yaml = """
            version: 1
            flows:
              - name: ops
                capability: sudo
                requesters: {users: [alice]}
                approvers: {users: [bob]}
                duration: {default: 30m, max: 4h}
                reason: {required: false}
                auto_deny: [{name: never-long, when: 'request.duration > duration("3h")', message: at most 3h}]
                break_glass:
                  pagerduty: {escalation_policies: [PEP1], schedules: [SCH1], max_level: 1}
                  max_duration: 1h
            """
        return try! Policy.parse(yaml, file: "p.yaml")
    }()

    func entry(
        policy: String = "PEP1",
        schedule: String? = "SCH1",
        level: Int64 = 1,
        start: Int64? = now - 3600,
        end: Int64? = now + 3600
    ) -> Value {
        .map([
            "escalation_policy": .string(policy), "escalation_policy_name": .string("Ops"),
            "schedule": schedule.map(Value.string) ?? .null, "level": .int(level),
            "start": start.map(Value.timestamp) ?? .null, "end": end.map(Value.timestamp) ?? .null,
        ])
    }

    func decide(_ entries: [Value]?, duration: Int64 = 7200, extra: [String: Value] = [:]) throws -> Evaluation {
        var context = extra
        if let entries { context["oncall"] = .list(entries) }
        return try policy.evaluate(
            RequestInput(
                user: "alice",
                capability: .sudo,
                host: "h",
                duration: duration,
                reason: "",
                now: Self.now,
                context: context
            )
        ).get()
    }

    @Test("on call now for the flow's escalation policy at level 1: approved, clamped, with evidence")
    func onCall() throws {
        let e = try decide([entry()])
        #expect(e.outcome == .autoApproved(rule: "break-glass", duration: 3600))
        #expect(
            e.evidence?.hasPrefix("on call in PagerDuty: escalation policy PEP1 (Ops), level 1, schedule SCH1") == true
        )
    }

    @Test("each way it must not happen: wrong level, wrong target, not on call now, no answer")
    func notOnCall() throws {
        #expect(try decide([entry(level: 2)]).outcome == .people)
        #expect(try decide([entry(policy: "OTHER", schedule: "OTHER2")]).outcome == .people)
        #expect(try decide([entry(start: Self.now + 60)]).outcome == .people)
        #expect(try decide([entry(end: Self.now)]).outcome == .people)
        #expect(try decide([]).outcome == .people)
        #expect(try decide(nil, extra: ["pagerduty_error": .string("timed out")]).outcome == .people)
    }

    @Test("a schedule alone qualifies; open-ended entries are on call now; the lowest level wins")
    func targetsAndLevels() throws {
        #expect(
            try decide([entry(policy: "OTHER", schedule: "SCH1", start: nil, end: nil)]).autoApproval == "break-glass"
        )
        let e = try decide([entry(level: 3), entry(level: 1)])
        #expect(e.evidence?.contains("level 1") == true)
        // Same level: the shift that ends first, whatever PagerDuty's order.
        let later = entry(end: Self.now + 7200)
        let sooner = entry(schedule: "SCH1", end: Self.now + 600)
        for order in [[later, sooner], [sooner, later]] {
            #expect(try decide(order).evidence?.hasSuffix("to 2025-11-25 12:10Z") == true)
        }
    }

    @Test("entries read back from the audit log (times as whole seconds) decide the same way")
    func replayedEntries() throws {
        let replayed: Value = .map([
            "escalation_policy": .string("PEP1"), "level": .int(1), "schedule": .null,
            "start": .int(Self.now + 60), "end": .int(Self.now + 3600),
        ])
        #expect(try decide([replayed]).outcome == .people)
    }

    @Test("auto_deny still comes first")
    func denyFirst() throws {
        #expect(
            try decide([entry()], duration: 4 * 3600).outcome == .autoDenied(rule: "never-long", message: "at most 3h")
        )
    }

    @Test("break_glass mistakes are reported where they are")
    func parseErrors() {
        let found = issues(
            minimalPolicy
                + "\n    break_glass: {pagerduty: {max_level: 0, schedules: []}, max_duration: 2h}"
        )
        #expect(found.count == 1)
        #expect(found.first?.contains("names no escalation_policies or schedules") == true)
        let over = issues(minimalPolicy + "\n    break_glass: {pagerduty: {schedules: [S1]}, max_duration: 2h}")
        #expect(over.first?.contains("over the flow's max 1h: break-glass cannot grant longer than its flow") == true)
    }

    @Test("the integrations file: tokens, URLs that keep them safe, and how users become emails")
    func settings() throws {
        let s = try IntegrationSettings.parse(
            """
            pagerduty: {token: abc, api_url: "https://pd.example.com/", timeout: 2s}
            identities:
              email_template: "{user}@example.com"
              emails: {alice: alice.smith@example.org}
            """,
            file: "i.yaml"
        )
        #expect(s.pagerDuty == .init(token: "abc", apiURL: "https://pd.example.com", timeoutMilliseconds: 2000))
        #expect(s.identities.email(of: "alice") == "alice.smith@example.org")
        #expect(s.identities.email(of: "bob") == "bob@example.com")
        do {
            _ = try IntegrationSettings.parse(
                "pagerduty: {token: abc, api_url: \"http://pd.example.com\"}\nidentities: {email_template: nope}\nslakc: {}\n",
                file: "i.yaml"
            )
            Issue.record("parsed")
        } catch {
            let lines = error.issues.map(\.description)
            #expect(lines.count == 3)
            #expect(lines.contains { $0.contains("'api_url' in pagerduty must be https://") })
            #expect(lines.contains { $0.contains("'email_template' in identities must contain {user} and @") })
            #expect(lines.contains { $0.contains("unknown key 'slakc'") })
        }
    }
}
