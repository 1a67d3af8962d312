import Testing
import WritCore
import WritPolicy

@Suite("Policy.parse: valid policies")
struct ParseTests {
    @Test("the reference example in examples/policy.yaml loads, with every value as documented")
    func referenceExample() throws {
        let policy = try Policy.load(path: examplePolicyPath)
        #expect(
            policy.groups == [
                "sre": ["alice", "bob"], "dba": ["dave", "erin"], "leads": ["carol", "frank"], "security": ["sam"],
            ]
        )
        #expect(policy.flows.map(\.name) == ["ops-sudo", "db-restart", "prod-db", "web-login"])
        #expect(policy.timeZoneOffset == 3600)
        #expect(policy.hookUser == "writ-hook")

        let ops = try #require(policy.flow(named: "ops-sudo"))
        #expect(ops.description == "root on this host for incidents")
        #expect(ops.capability == .sudo)
        #expect(ops.hosts == ["*"])
        #expect(ops.runas == "root")
        #expect(ops.commands == nil)
        #expect(ops.requesters == Principals(users: ["alice"], unixGroups: ["ops"], groups: ["sre"]))
        #expect(ops.approvers == Principals(groups: ["leads"]))
        #expect(ops.approvals == 1)
        #expect(ops.selfApproval == false)
        #expect(ops.defaultDuration == 1800)
        #expect(ops.maxDuration == 7200)
        #expect(ops.reasonRequired == true)
        #expect(ops.reasonPattern == "^INC-[0-9]+")
        #expect(ops.reasonExample == "INC-4521 disk full on db-01")
        #expect(ops.pendingTimeout == 1800)
        #expect(ops.warnBefore == 300)
        #expect(ops.autoDeny.map(\.name) == ["long-at-night"])
        #expect(ops.autoDeny.first?.condition.source == "time.hour < 6 && request.duration > duration(\"1h\")")
        #expect(ops.autoApprove.first?.condition?.source == "has(context.on_call) && context.on_call == true")
        #expect(
            Array(ops.autoApprove.dropFirst()) == [
                AutoRule(
                    name: "sre-off-hours",
                    requesterIn: Principals(groups: ["sre"]),
                    window: TimeWindow(days: [5], fromMinute: 1080, toMinute: 480, utcOffsetSeconds: 7200),
                    maxDuration: 3600
                ),
                AutoRule(
                    name: "sre-weekends",
                    requesterIn: Principals(groups: ["sre"]),
                    window: TimeWindow(days: [6, 0], fromMinute: 0, toMinute: 1440, utcOffsetSeconds: 0),
                    maxDuration: 3600
                ),
            ]
        )

        let db = try #require(policy.flow(named: "db-restart"))
        #expect(db.hosts == ["db-*"])
        #expect(db.runas == "postgres")
        #expect(db.commands == ["/usr/bin/systemctl restart postgresql", "/usr/bin/pg_ctlcluster 15 main restart"])
        #expect(db.approvals == 2)
        #expect(db.selfApproval == true)
        #expect(db.defaultDuration == 900)
        #expect(db.maxDuration == 3600)
        #expect(db.reasonPattern == "^(INC|CHG)-[0-9]+")
        // From defaults:
        #expect(db.pendingTimeout == 3600)
        #expect(db.warnBefore == 300)

        let prod = try #require(policy.flow(named: "prod-db"))
        #expect(prod.steps.map(\.name) == ["team", "security"])
        #expect(prod.steps[1].escalation == Escalation(after: 1800, to: Principals(groups: ["leads"])))
        #expect(prod.steps[1].condition != nil)
        #expect(prod.hooks.onRequest?.path == "/etc/writ/hooks/require_ticket.py")
        #expect(prod.hooks.onRequest?.environment["TICKET_URL"] == "https://tickets.example.com/api/issues/{ticket}")
        #expect(prod.hooks.onApprove == HookSpec(path: "/etc/writ/hooks/notify_webhook.py"))

        let web = try #require(policy.flow(named: "web-login"))
        #expect(web.capability == .login)
        #expect(web.hosts == ["web-*"])
        #expect(web.requesters == Principals(unixGroups: ["developers"]))
        #expect(web.reasonRequired == false)
        #expect(web.defaultDuration == 3600)
        #expect(web.maxDuration == 28_800)
        #expect(web.autoApprove == [])
    }

    @Test("a flow that says only the required keys gets the built-in values")
    func builtInDefaults() throws {
        let flow = try #require(try Policy.parse(minimalPolicy, file: "p.yaml").flow(named: "ops-sudo"))
        #expect(flow.description == "")
        #expect(flow.hosts == ["*"])
        #expect(flow.runas == "root")
        #expect(flow.commands == nil)
        #expect(flow.approvals == 1)
        #expect(flow.selfApproval == false)
        #expect(flow.defaultDuration == 3600)
        #expect(flow.maxDuration == 3600)
        #expect(flow.reasonRequired == true)
        #expect(flow.reasonPattern == nil)
        #expect(flow.reasonExample == nil)
        #expect(flow.pendingTimeout == 3600)
        #expect(flow.warnBefore == 300)
        #expect(flow.autoApprove == [])
    }

    @Test("only a max: the default is an hour, or the max when that is shorter; only a default: it is also the max")
    func partialDurations() throws {
        func durations(_ line: String) throws -> [Int64] {
            let flow = try #require(try Policy.parse(minimalPolicy + "\n    " + line, file: "p.yaml").flows.first)
            return [flow.defaultDuration, flow.maxDuration]
        }
        #expect(try durations("duration: {max: 4h}") == [3600, 14_400])
        #expect(try durations("duration: {max: 20m}") == [1200, 1200])
        #expect(try durations("duration: {default: 2h}") == [7200, 7200])
    }

    @Test("defaults apply field by field; a flow's own value wins")
    func defaultsMerge() throws {
        let yaml = """
            version: 1
            defaults:
              hosts: ["db-*"]
              runas: postgres
              approvals: 2
              duration: {default: 15m, max: 4h}
              reason: {required: false, pattern: "^CHG-"}
              pending_timeout: 10m
              warn_before: 0s
            flows:
              - name: a
                capability: sudo
                requesters: {users: [alice]}
                approvers: {users: [bob, carol]}
                duration: {max: 1h}
                reason: {required: true}
              - name: b
                capability: login
                hosts: ["web-*"]
                requesters: {users: [alice]}
                approvers: {users: [bob, carol]}
                approvals: 1
            """
        let policy = try Policy.parse(yaml, file: "p.yaml")
        let a = try #require(policy.flow(named: "a"))
        #expect(a.hosts == ["db-*"])
        #expect(a.runas == "postgres")
        #expect(a.approvals == 2)
        #expect(a.defaultDuration == 900)
        #expect(a.maxDuration == 3600)
        #expect(a.reasonRequired == true)
        #expect(a.reasonPattern == "^CHG-")
        #expect(a.pendingTimeout == 600)
        #expect(a.warnBefore == 0)
        let b = try #require(policy.flow(named: "b"))
        #expect(b.hosts == ["web-*"])
        // A login flow has no run-as user: the default's postgres does not apply.
        #expect(b.runas == "root")
        #expect(b.approvals == 1)
        #expect(b.maxDuration == 14_400)
    }

    @Test("a flow with auto_approve rules needs no approvers; a rule without max_duration gets the flow's")
    func autoApproveOnly() throws {
        let yaml = """
            version: 1
            flows:
              - name: oncall
                capability: sudo
                requesters: {unix_groups: [oncall]}
                duration: {max: 90m}
                auto_approve:
                  - name: always
                    requester_in: {unix_groups: [oncall]}
            """
        let flow = try #require(try Policy.parse(yaml, file: "p.yaml").flows.first)
        #expect(flow.approvers == Principals())
        #expect(
            flow.autoApprove == [
                AutoRule(name: "always", requesterIn: Principals(unixGroups: ["oncall"]), maxDuration: 5400)
            ]
        )
    }

    @Test("quoted and plain values read the same; true/false in any common case; commands are trimmed")
    func scalarForms() throws {
        let yaml = """
            version: "1"
            flows:
              - name: ops-sudo
                capability: "sudo"
                requesters: {users: ["alice"]}
                approvers: {users: [bob]}
                self_approval: False
                reason: {required: TRUE}
                commands: ["  /usr/bin/systemctl restart nginx  "]
            """
        let flow = try #require(try Policy.parse(yaml, file: "p.yaml").flows.first)
        #expect(flow.selfApproval == false)
        #expect(flow.reasonRequired == true)
        #expect(flow.commands == ["/usr/bin/systemctl restart nginx"])
    }

    @Test("approverUsers expands policy groups and asks for Unix group members")
    func approverUsers() throws {
        let yaml = """
            version: 1
            groups:
              leads: [carol, dan]
            flows:
              - name: ops-sudo
                capability: sudo
                requesters: {users: [alice]}
                approvers: {users: [bob, carol], unix_groups: [dba, empty], groups: [leads]}
            """
        let policy = try Policy.parse(yaml, file: "p.yaml")
        let flow = try #require(policy.flows.first)
        var asked: [String] = []
        let users = policy.approverUsers(of: flow) { group in
            asked.append(group)
            return group == "dba" ? ["erin", "bob"] : []
        }
        #expect(users == ["bob", "carol", "dan", "erin"])
        #expect(asked == ["dba", "empty"])
    }

    @Test("Principals.contains: by user, by Unix group, by policy group, and nobody else")
    func principalsContains() {
        let p = Principals(users: ["alice"], unixGroups: ["ops"], groups: ["sre"])
        let groups = ["sre": ["bob"], "other": ["carol"]]
        #expect(p.contains(user: "alice", unixGroups: [], policyGroups: groups))
        #expect(p.contains(user: "zed", unixGroups: ["users", "ops"], policyGroups: groups))
        #expect(p.contains(user: "bob", unixGroups: [], policyGroups: groups))
        #expect(!p.contains(user: "carol", unixGroups: ["users"], policyGroups: groups))
        // A group named like a user is not that user.
        #expect(!p.contains(user: "sre", unixGroups: [], policyGroups: groups))
    }

    @Test("200 flows parse, and the last one is found and evaluated")
    func bigPolicy() throws {
        var yaml = "version: 1\ngroups:\n  sre: [alice, bob]\nflows:\n"
        for i in 0..<200 {
            yaml += """
                  - name: flow-\(i)
                    description: flow number \(i)
                    capability: sudo
                    hosts: ["host-\(i)", "host-\(i).example.com"]
                    runas: root
                    commands: ["/usr/bin/systemctl restart svc-\(i)", "/usr/bin/journalctl -u svc-\(i)"]
                    requesters: {groups: [sre], unix_groups: [team-\(i)]}
                    approvers: {users: [carol, dan], groups: [sre]}
                    approvals: 2
                    duration: {default: 30m, max: 2h}
                    reason: {required: true, pattern: "^INC-[0-9]+"}
                    auto_approve:
                      - name: nights
                        requester_in: {users: [alice]}
                        window: {days: [sat, sun], from: "22:00", to: "06:00", tz: "-05:30"}
                        max_duration: 1h

                """
        }
        let policy = try Policy.parse(yaml, file: "big.yaml")
        #expect(policy.flows.count == 200)
        #expect(policy.flow(named: "flow-150")?.hosts == ["host-150", "host-150.example.com"])
        let input = RequestInput(
            user: "bob",
            capability: .sudo,
            host: "host-199",
            commands: ["/usr/bin/journalctl -u svc-199"],
            reason: "INC-7 logs",
            now: 1_704_067_200
        )
        let evaluation = try policy.evaluate(input).get()
        #expect(evaluation.flow.name == "flow-199")
        #expect(evaluation.commands == ["/usr/bin/journalctl -u svc-199"])
        #expect(evaluation.duration == 1800)
        #expect(evaluation.autoApproval == nil)
    }
}
