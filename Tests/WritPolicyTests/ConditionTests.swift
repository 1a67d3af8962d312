import Glibc
import Testing
import WritCore
import WritExpr
import WritPolicy

/// `when:` conditions, auto_deny rules, approval steps, hooks and the top-level settings they use.
@Suite("Policy conditions, steps and hooks")
struct ConditionTests {
    static let t0: Int64 = 1_764_068_400  // 2025-11-25 11:00 UTC, a Tuesday

    func policy(_ flows: String, top: String = "") throws -> Policy {
        try Policy.parse("version: 1\n\(top)groups: {leads: [carol], sec: [sam]}\nflows:\n\(flows)", file: "p.yaml")
    }

    func input(
        _ user: String = "alice",
        duration: Int64? = 1800,
        reason: String = "INC-1 disk",
        now: Int64 = t0,
        fields: [String: String] = [:],
        context: [String: Value] = [:],
        groups: Set<String> = []
    ) -> RequestInput {
        RequestInput(
            user: user,
            unixGroups: groups,
            capability: .sudo,
            host: "web-01",
            duration: duration,
            reason: reason,
            now: now,
            fields: fields,
            context: context
        )
    }

    let flow = """
          - name: ops
            capability: sudo
            requesters: {users: [alice, bob]}
            approvers: {groups: [leads]}
            duration: {max: 4h}
        """

    // MARK: parsing

    @Test("a condition's syntax error points into the expression: plain, quoted and block scalars")
    func conditionPositions() {
        let plain = issues(minimalPolicy + "\n    auto_deny: [{name: x, message: m, when: request.user ==}]")
        #expect(plain.count == 1)
        #expect(plain.first?.hasPrefix("7:") == true)
        let quoted = issues(
            minimalPolicy + "\n    auto_approve:\n      - name: r\n        when: 'request.resaon == \"x\"'"
        )
        #expect(quoted.count == 1)
        // Column 15 is the opening quote; "resaon" starts 9 characters into the expression.
        #expect(quoted.first?.hasPrefix("9:24: 'when' in auto_approve rule r of flow ops-sudo:") == true)
        #expect(quoted.first?.contains("reason") == true)
        let block = issues(
            minimalPolicy
                + "\n    auto_approve:\n      - name: r\n        when: |\n          request.user == \"a\" &&\n            contxt.on_call"
        )
        #expect(block.count == 1)
        #expect(block.first?.hasPrefix("11:13:") == true)
    }

    @Test("auto_deny rules need a name, a condition and a message")
    func denyRuleKeys() {
        let found = issues(minimalPolicy + "\n    auto_deny:\n      - {name: x}")
        #expect(
            found == [
                "8:9: 'when' is missing in auto_deny rule x of flow ops-sudo: say which requests it denies, e.g. when: 'request.duration > duration(\"4h\")'",
                "8:9: 'message' is missing in auto_deny rule x of flow ops-sudo: tell the requester why, and what to do instead",
            ]
        )
    }

    @Test("an auto_approve rule with no test at all is refused")
    func ruleWithoutTest() {
        #expect(
            issues(minimalPolicy + "\n    auto_approve: [{name: everyone, max_duration: 1h}]") == [
                "7:20: auto_approve rule everyone of flow ops-sudo needs requester_in, window or when — say whose requests it approves, e.g. requester_in: {groups: [sre]} (write when: 'true' to approve every request)"
            ]
        )
    }

    @Test("steps replace approvers; both at once is an error")
    func stepsAndApprovers() {
        let found = issues(minimalPolicy + "\n    steps: [{name: a, approvers: {users: [carol]}}]")
        #expect(
            found == [
                "6:5: 'approvers' in flow ops-sudo cannot be used with 'steps': each step names its own approvers and approvals"
            ]
        )
    }

    @Test("step mistakes: duplicate names, nobody to approve, escalation without 'after'")
    func stepMistakes() {
        let yaml = """
            version: 1
            flows:
              - name: f
                capability: sudo
                requesters: {users: [alice]}
                steps:
                  - {name: a, approvers: {users: [bob]}}
                  - {name: a, approvers: {users: []}}
                  - {name: c, approvers: {users: [carol]}, escalate: {to: {users: [dan]}}}
            """
        #expect(
            issues(yaml) == [
                "8:16: step name 'a' is already used in flow f at line 7: step names must be unique within a flow",
                "8:30: 'approvers' in step a of flow f names nobody: list users, unix_groups or groups",
                "9:58: 'after' is missing in the escalation of step c of flow f: say how long the step waits, e.g. after: 30m",
            ]
        )
    }

    @Test("hook mistakes: a relative path, a fixed variable in env, a long timeout")
    func hookMistakes() {
        let yaml =
            minimalPolicy + """

                    hooks:
                      on_request: hooks/x.py
                      on_approve: {path: /etc/writ/hooks/n.py, env: {PATH: /tmp}}
                      on_deny: {path: /etc/writ/hooks/n.py, timeout: 2m}
                      on_expired: /x
                """
        let found = issues(yaml)
        #expect(found.count == 4)
        #expect(
            found[0].hasPrefix(
                "8:19: hook on_request in the hooks of flow ops-sudo is 'hooks/x.py': give the executable's absolute path"
            )
        )
        #expect(
            found[1]
                == "9:54: 'env' in hook on_approve the hooks of flow ops-sudo: PATH is set by writd and cannot be changed here"
        )
        #expect(found[2].hasPrefix("10:54: 'timeout' in hook on_deny the hooks of flow ops-sudo is 2m: at most 60s"))
        #expect(
            found[3].hasPrefix(
                "11:7: unknown key 'on_expired' in the hooks of flow ops-sudo — did you mean 'on_expire'?"
            )
        )
    }

    @Test("hook_user may not be root; timezone must be a fixed offset")
    func topLevel() {
        let found = issues("version: 1\ntimezone: Europe/Paris\nhook_user: root\nflows:\n" + minimalFlow)
        #expect(found.count == 2)
        #expect(found[0].hasPrefix("2:11: 'timezone' is 'Europe/Paris': only UTC or a fixed offset"))
        #expect(found[1].hasPrefix("3:12: 'hook_user' must not be root"))
    }

    @Test("the hook user may not request or approve: it could answer for a running hook")
    func hookUserNotAPrincipal() {
        let found = issues("version: 1\nhook_user: bob\nflows:\n" + minimalFlow)
        #expect(found.count == 1)
        #expect(found.first?.hasPrefix("2:12: 'hook_user' bob requests or approves in a flow") == true)
    }

    @Test("a flow with only an on_request hook needs no approvers")
    func hookOnlyFlow() throws {
        let p = try policy(
            """
              - name: h
                capability: sudo
                requesters: {users: [alice]}
                hooks: {on_request: /etc/writ/hooks/x.py}
            """
        )
        let e = try p.evaluate(input()).get()
        #expect(
            e.outcome == .hook(HookSpec(path: "/etc/writ/hooks/x.py", timeoutMilliseconds: 5000, environment: [:]))
        )
    }

    // MARK: evaluation

    @Test("auto_deny comes before auto_approve, and its message is the requester's answer")
    func denyFirst() throws {
        let p = try policy(
            flow + """

                    auto_deny: [{name: long, when: 'request.duration > duration("2h")', message: ask for 2h or less}]
                    auto_approve: [{name: all, when: 'true', max_duration: 4h}]
                """
        )
        #expect(
            try p.evaluate(input(duration: 3 * 3600)).get().outcome
                == .autoDenied(rule: "long", message: "ask for 2h or less")
        )
        #expect(try p.evaluate(input(duration: 3600)).get().outcome == .autoApproved(rule: "all", duration: 3600))
    }

    @Test("conditions see fields, groups, context and the time in the policy's time zone")
    func inputs() throws {
        let p = try policy(
            flow + """

                    auto_approve:
                      - {name: ticket, when: 'has(request.fields.ticket) && request.fields.ticket.startsWith("INC-")', max_duration: 1h}
                      - {name: night, when: 'time.hour >= 22 && time.weekday == "tue"', max_duration: 1h}
                      - {name: oncall, when: 'context.on_call == true && "sre" in request.groups', max_duration: 1h}
                """,
            top: "timezone: \"+12:00\"\n"
        )
        #expect(try p.evaluate(input(fields: ["ticket": "INC-9"])).get().autoApproval == "ticket")
        // Not the ticket rule: the next one that holds (23:00 on a Tuesday at +12:00).
        #expect(try p.evaluate(input(fields: ["ticket": "CHG-9"])).get().autoApproval == "night")
        // 11:00 UTC is 23:00 at +12:00, still Tuesday.
        #expect(try p.evaluate(input()).get().autoApproval == "night")
        #expect(try p.evaluate(input(now: Self.t0 - 7200)).get().autoApproval == nil)
        let later = Self.t0 + 3 * 3600  // Wednesday at +12:00
        #expect(
            try p.evaluate(input(now: later, context: ["on_call": .bool(true)], groups: ["sre"])).get().autoApproval
                == "oncall"
        )
        #expect(try p.evaluate(input(now: later, context: ["on_call": .bool(true)])).get().autoApproval == nil)
    }

    @Test("a condition that fails to evaluate decides nothing, and says why")
    func failingCondition() throws {
        let p = try policy(
            flow + """

                    auto_approve: [{name: a, when: 'context.on_call', max_duration: 1h}]
                """
        )
        let e = try p.evaluate(input()).get()
        #expect(e.outcome == .people)
        #expect(e.conditionErrors.count == 1)
        #expect(e.conditionErrors[0].hasPrefix("auto_approve rule a: "))
    }

    @Test("a deny rule that fails to evaluate lets nothing approve: the request goes to people")
    func failingDenyRule() throws {
        // The requester controls the error: leaving out --field ticket must not dodge the rule.
        let p = try policy(
            flow + """

                    auto_deny: [{name: needs-change, when: '!request.fields.ticket.startsWith("CHG-")', message: name a change}]
                    auto_approve: [{name: everyone, when: 'true', max_duration: 1h}]
                    hooks: {on_request: /etc/writ/hooks/x}
                """
        )
        let e = try p.evaluate(input()).get()
        #expect(e.outcome == .people)
        #expect(e.conditionErrors.count == 1)
        #expect(e.conditionErrors[0].hasPrefix("auto_deny rule needs-change: "))
        #expect(
            try p.evaluate(input(fields: ["ticket": "INC-1"])).get().outcome
                == .autoDenied(rule: "needs-change", message: "name a change")
        )
        #expect(
            try p.evaluate(input(fields: ["ticket": "CHG-1"])).get().outcome
                == .autoApproved(rule: "everyone", duration: 1800)
        )
    }

    @Test("steps apply in order when their condition holds; a failing condition keeps the step")
    func stepsWithConditions() throws {
        let p = try policy(
            """
              - name: s
                capability: sudo
                requesters: {users: [alice]}
                duration: {max: 4h}
                steps:
                  - {name: team, approvers: {groups: [leads]}}
                  - name: security
                    when: 'request.duration > duration("1h")'
                    approvers: {groups: [sec]}
                    escalate: {after: 30m, to: {users: [ciso]}}
                  - {name: broken, when: 'context.x', approvers: {users: [zed]}}
            """
        )
        let short = try p.evaluate(input(duration: 1800)).get()
        #expect(short.steps.map(\.name) == ["team", "broken"])
        let long = try p.evaluate(input(duration: 7200)).get()
        #expect(long.steps.map(\.name) == ["team", "security", "broken"])
        #expect(long.steps[1].escalation == Escalation(after: 1800, to: Principals(users: ["ciso"])))
        #expect(
            p.route(long.steps, membersOf: { _ in [] })
                == "team: carol (1); security: sam (1) escalates after 30m to ciso; broken: zed (1)"
        )
    }

    @Test("a request no step applies to is refused: nobody could approve it")
    func noStep() throws {
        let p = try policy(
            """
              - name: s
                capability: sudo
                requesters: {users: [alice]}
                steps: [{name: only-long, when: 'request.duration > duration("1h")', approvers: {users: [carol]}}]
            """
        )
        #expect(throws: PolicyRefusal.noStep(flow: "s")) { try p.evaluate(input(duration: 600)).get() }
    }

    @Test("a hook may approve for less than asked, never more; a failed hook leaves people")
    func hookResolution() {
        #expect(
            HookVerdict.approve(reason: "", duration: 600).resolution(forDuration: 1800)
                == .approved(duration: 600, reason: "")
        )
        #expect(
            HookVerdict.approve(reason: "", duration: 9999).resolution(forDuration: 1800)
                == .approved(duration: 1800, reason: "")
        )
        #expect(HookVerdict.failed("boom").resolution(forDuration: 1800) == .people(addApprovers: []))
    }

    @Test("policy evaluation with 200 flows, conditions on every one, picks the right flow")
    func manyFlows() throws {
        var flows = ""
        for i in 0..<200 {
            flows += """
                  - name: f\(i)
                    capability: sudo
                    hosts: ["h\(i)-*"]
                    requesters: {users: [alice]}
                    approvers: {users: [carol]}
                    auto_approve: [{name: r\(i), when: 'request.reason.matches("^INC-[0-9]+") && request.duration <= duration("1h")', max_duration: 1h}]

                """
        }
        let p = try Policy.parse("version: 1\nflows:\n" + flows, file: "p.yaml")
        var i = input(duration: 1800)
        i.host = "h199-db"
        let e = try p.evaluate(i).get()
        #expect(e.flow.name == "f199")
        #expect(e.autoApproval == "r199")
    }
}
