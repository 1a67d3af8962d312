import Testing
import WritCore
import WritPolicy

@Suite("Policy.evaluate")
struct EvaluateTests {
    static let yaml = """
        version: 1
        groups:
          sre: [alice, bob]
          leads: [carol, dan]
        flows:
          - name: db-restart
            capability: sudo
            hosts: ["db-*"]
            runas: postgres
            commands: ["/usr/bin/systemctl restart postgresql", "/usr/bin/psql"]
            requesters: {unix_groups: [dba]}
            approvers: {groups: [leads]}
            approvals: 2
            duration: {default: 15m, max: 1h}
          - name: ops-sudo
            capability: sudo
            requesters: {groups: [sre], users: [erin]}
            approvers: {groups: [leads]}
            duration: {default: 30m, max: 2h}
            reason: {pattern: "^INC-[0-9]+", example: "INC-123 disk full"}
            auto_approve:
              - name: weekend-nights
                requester_in: {users: [alice]}
                window: {days: [fri, sat], from: "22:00", to: "06:00", tz: "+02:00"}
                max_duration: 1h
              - name: erin-always
                requester_in: {users: [erin]}
                max_duration: 45m
          - name: web-login
            capability: login
            hosts: ["web-*"]
            requesters: {groups: [sre]}
            approvers: {users: [carol]}
            reason: {required: false}
        """

    /// Friday 2024-01-05 00:00:00 UTC.
    static let friday: Int64 = 1_704_412_800
    /// Wednesday 2024-01-03 12:00 UTC: outside every window.
    static let wednesdayNoon: Int64 = 1_704_283_200

    let policy: Policy

    init() throws {
        policy = try Policy.parse(Self.yaml, file: "policy.yaml")
    }

    func input(
        _ capability: Capability = .sudo,
        by user: String = "alice",
        groups: Set<String> = [],
        flow: String? = nil,
        host: String = "app-01",
        runas: String? = nil,
        commands: [String]? = nil,
        duration: Int64? = nil,
        reason: String = "INC-1 disk full",
        now: Int64 = wednesdayNoon
    ) -> RequestInput {
        RequestInput(
            user: user,
            unixGroups: groups,
            capability: capability,
            flow: flow,
            host: host,
            runas: runas,
            commands: commands,
            duration: duration,
            reason: reason,
            now: now
        )
    }

    func refusal(_ input: RequestInput) -> PolicyRefusal? {
        if case .failure(let refusal) = policy.evaluate(input) { return refusal }
        return nil
    }

    // MARK: Selection

    @Test("without --flow, the first flow in file order that fits is chosen")
    func firstFitWins() throws {
        // alice is in dba and sre: on a db host, db-restart comes first.
        let db = try policy.evaluate(input(groups: ["dba"], host: "db-01")).get()
        #expect(db.flow.name == "db-restart")
        #expect(db.runas == "postgres")
        #expect(db.commands == ["/usr/bin/systemctl restart postgresql", "/usr/bin/psql"])
        #expect(db.duration == 900)
        // Asking to run as root does not fit db-restart, so ops-sudo is next.
        let root = try policy.evaluate(input(groups: ["dba"], host: "db-01", runas: "root")).get()
        #expect(root.flow.name == "ops-sudo")
        #expect(root.runas == "root")
        #expect(root.commands == nil)
        // Not in dba: db-restart is not one alice may request.
        #expect(try policy.evaluate(input(host: "db-01")).get().flow.name == "ops-sudo")
        // On another host, db-restart does not cover it.
        #expect(try policy.evaluate(input(groups: ["dba"], host: "app-01")).get().flow.name == "ops-sudo")
    }

    @Test("host patterns match the host name or its short name, case-insensitively, like grant scopes")
    func hostNames() throws {
        let fqdn = try policy.evaluate(input(by: "dave", groups: ["dba"], host: "DB-01.example.com")).get()
        #expect(fqdn.flow.name == "db-restart")
        #expect(refusal(input(by: "dave", groups: ["dba"], host: "app-01.db-01")) != nil)
    }

    @Test("the capability picks the flow: login goes to web-login")
    func capabilitySelects() throws {
        let login = try policy.evaluate(input(.login, host: "web-01", reason: "")).get()
        #expect(login.flow.name == "web-login")
        #expect(login.runas == "root")
        #expect(login.commands == nil)
        #expect(login.duration == 3600)
    }

    @Test("with --flow, that flow is used even when an earlier one would fit")
    func namedFlow() throws {
        let chosen = try policy.evaluate(input(groups: ["dba"], flow: "ops-sudo", host: "db-01")).get()
        #expect(chosen.flow.name == "ops-sudo")
    }

    // MARK: Commands and run-as

    @Test("requested commands must each be one of the flow's (trimmed); the grant gets exactly those")
    func commandSubset() throws {
        let one = try policy.evaluate(input(by: "dave", groups: ["dba"], host: "db-01", commands: ["  /usr/bin/psql "]))
            .get()
        #expect(one.flow.name == "db-restart")
        #expect(one.commands == ["/usr/bin/psql"])
        let none = try policy.evaluate(input(by: "dave", groups: ["dba"], host: "db-01", commands: [])).get()
        #expect(none.commands == ["/usr/bin/systemctl restart postgresql", "/usr/bin/psql"])
        let vim = refusal(
            input(by: "dave", groups: ["dba"], host: "db-01", commands: ["/usr/bin/psql", "/usr/bin/vim"])
        )
        #expect(
            vim
                == .commandNotAllowed(
                    flow: "db-restart",
                    command: "/usr/bin/vim",
                    allowed: ["/usr/bin/systemctl restart postgresql", "/usr/bin/psql"]
                )
        )
        #expect(
            vim?.description
                == "flow db-restart does not allow \"/usr/bin/vim\" — it allows \"/usr/bin/systemctl restart postgresql\", "
                + "\"/usr/bin/psql\"; ask for those, or pick another flow"
        )
    }

    @Test("a flow without commands allows any command list")
    func anyCommand() throws {
        let e = try policy.evaluate(input(commands: ["/usr/bin/vim /etc/hosts"])).get()
        #expect(e.flow.name == "ops-sudo")
        #expect(e.commands == ["/usr/bin/vim /etc/hosts"])
    }

    @Test("commands compare as bytes: a canonically equivalent spelling is not the flow's command")
    func commandBytes() {
        let yaml = minimalPolicy + "\n    commands: [\"/usr/bin/caf\u{E9}\"]"
        guard let policy = try? Policy.parse(yaml, file: "p.yaml") else {
            Issue.record("policy did not parse")
            return
        }
        let decomposed = "/usr/bin/cafe\u{301}"
        let result = policy.evaluate(input(commands: [decomposed], reason: "x"))
        #expect(
            result
                == .failure(.commandNotAllowed(flow: "ops-sudo", command: decomposed, allowed: ["/usr/bin/caf\u{E9}"]))
        )
    }

    @Test("run-as must be the flow's")
    func runasRefused() {
        let r = refusal(input(flow: "ops-sudo", runas: "postgres"))
        #expect(r == .runasNotAllowed(flow: "ops-sudo", requested: "postgres", allowed: "root"))
        #expect(
            r?.description
                == "flow ops-sudo runs commands as root, not postgres — ask for --runas root (or leave it out), or pick "
                + "another flow"
        )
    }

    @Test("--runas and --command do not apply to login")
    func sudoOnlyOptions() {
        let r = refusal(input(.login, host: "web-01", runas: "root", reason: ""))
        #expect(r == .sudoOnly(option: "--runas", flow: "web-login"))
        #expect(
            r?.description == "--runas applies to sudo requests only and flow web-login grants login — leave it out"
        )
        #expect(
            refusal(input(.login, host: "web-01", commands: ["/usr/bin/true"], reason: ""))
                == .sudoOnly(option: "--command", flow: "web-login")
        )
    }

    // MARK: Flow refusals

    @Test("no flow fits: say which flows the user may request on this host")
    func noFlow() {
        let r = refusal(input(.login, host: "db-01"))
        #expect(r == .noFlow(user: "alice", capability: .login, host: "db-01", requestable: ["ops-sudo (sudo)"]))
        #expect(r?.description == "no flow lets alice request login on db-01 — flows you may request: ops-sudo (sudo)")
        let nobody = refusal(input(by: "frank", host: "web-01"))
        #expect(nobody == .noFlow(user: "frank", capability: .sudo, host: "web-01", requestable: []))
        #expect(
            nobody?.description
                == "no flow lets frank request sudo on web-01 — frank may request no flow on this host; ask an admin "
                + "to add frank to a flow's requesters"
        )
    }

    @Test("an unknown --flow")
    func unknownFlow() {
        let r = refusal(input(flow: "db-admin", host: "web-01"))
        #expect(r == .unknownFlow(name: "db-admin", requestable: ["ops-sudo (sudo)", "web-login (login)"]))
        #expect(
            r?.description
                == "there is no flow named 'db-admin' — flows you may request: ops-sudo (sudo), web-login (login)"
        )
    }

    @Test("a --flow of another capability")
    func capabilityMismatch() {
        let r = refusal(input(.sudo, flow: "web-login", host: "web-01"))
        #expect(r == .capabilityMismatch(flow: "web-login", flowCapability: .login, requested: .sudo))
        #expect(
            r?.description
                == "flow web-login grants login, not sudo — request login with it, or leave out --flow to use a sudo flow"
        )
    }

    @Test("a --flow the user may not request")
    func notRequester() {
        let r = refusal(input(by: "dave", groups: ["dba"], flow: "ops-sudo", host: "db-01"))
        #expect(r == .notRequester(user: "dave", flow: "ops-sudo", requestable: ["db-restart (sudo)"]))
        #expect(r?.description == "dave may not request flow ops-sudo — flows you may request: db-restart (sudo)")
    }

    @Test("a --flow that does not cover the host")
    func hostNotCovered() {
        let r = refusal(input(.login, flow: "web-login", host: "db-01", reason: ""))
        #expect(r == .hostNotCovered(flow: "web-login", host: "db-01", hosts: ["web-*"]))
        #expect(
            r?.description
                == "flow web-login does not cover host db-01 (its hosts: web-*) — leave out --flow to find one that does"
        )
    }

    // MARK: Duration

    @Test("no duration: the flow's default; over the max: refused with the max to ask for")
    func durations() throws {
        #expect(try policy.evaluate(input()).get().duration == 1800)
        #expect(try policy.evaluate(input(duration: 7200)).get().duration == 7200)
        let r = refusal(input(duration: 4 * 3600))
        #expect(r == .durationOverMax(flow: "ops-sudo", requested: 14_400, max: 7200))
        #expect(r?.description == "duration 4h is over the flow's maximum 2h (flow ops-sudo) — ask for 2h or less")
        let zero = refusal(input(duration: 0))
        #expect(zero == .durationNotPositive(requested: 0))
        #expect(zero?.description == "duration 0s is not more than 0 — ask for a duration such as 30m")
    }

    // MARK: Reason

    @Test("a required reason that is missing or blank")
    func reasonMissing() {
        let blank = refusal(input(by: "dave", groups: ["dba"], host: "db-01", reason: "  \n"))
        #expect(blank == .reasonMissing(flow: "db-restart", pattern: nil, example: nil))
        #expect(blank?.description == "flow db-restart needs a reason — give one, e.g. --reason \"…\"")
        let withPattern = refusal(input(reason: ""))
        #expect(withPattern == .reasonMissing(flow: "ops-sudo", pattern: "^INC-[0-9]+", example: "INC-123 disk full"))
        #expect(
            withPattern?.description
                == "flow ops-sudo needs a reason matching ^INC-[0-9]+ — give one, e.g. --reason \"INC-123 disk full\""
        )
    }

    @Test("a reason must contain a match of the pattern")
    func reasonPattern() throws {
        let r = refusal(input(reason: "disk full, see INC"))
        #expect(r == .reasonMismatch(flow: "ops-sudo", pattern: "^INC-[0-9]+", example: "INC-123 disk full"))
        #expect(r?.description == "reason must match ^INC-[0-9]+ (flow ops-sudo) — e.g. --reason \"INC-123 disk full\"")
        // Leading spaces are trimmed before matching, so ^ anchors at the text.
        #expect(try policy.evaluate(input(reason: "  INC-42 restart")).get().flow.name == "ops-sudo")
        // Without ^ a match anywhere would do; with it, a later match is not enough.
        #expect(refusal(input(reason: "see INC-42")) == r)
    }

    @Test("reasons are limited to 500 characters (Unicode scalars), whatever the flow")
    func reasonLength() throws {
        let limit = "INC-1 " + String(repeating: "x", count: 494)
        #expect(try policy.evaluate(input(reason: limit)).get().flow.name == "ops-sudo")
        let over = refusal(input(reason: limit + "x"))
        #expect(over == .reasonTooLong(length: 501, limit: 500))
        #expect(over?.description == "the reason is 501 characters, over the limit of 500 — shorten it")
        // 250 decomposed letters are 500 scalars: at the limit. One more is over.
        let decomposed = String(repeating: "e\u{301}", count: 250)
        #expect(refusal(input(.login, host: "web-01", reason: decomposed)) == nil)
        #expect(
            refusal(input(.login, host: "web-01", reason: decomposed + "e\u{301}"))
                == .reasonTooLong(length: 502, limit: 500)
        )
    }

    @Test("a flow with reason.required false takes an empty reason")
    func reasonOptional() throws {
        #expect(try policy.evaluate(input(.login, host: "web-01", reason: "")).get().flow.name == "web-login")
    }

    // MARK: Auto-approval

    @Test("inside the window the rule approves, for at most its max_duration")
    func autoInsideWindow() throws {
        // Friday 23:00 at +02:00 is 21:00 UTC.
        let e = try policy.evaluate(input(now: Self.friday + 21 * 3600)).get()
        #expect(e.autoApproval == "weekend-nights")
        #expect(e.autoDuration == 1800)
        let long = try policy.evaluate(input(duration: 7200, now: Self.friday + 21 * 3600)).get()
        #expect(long.duration == 7200)
        #expect(long.autoDuration == 3600)
    }

    @Test("the window runs past midnight and belongs to the day it started, in the rule's offset")
    func autoWindowWrapsAndOffsets() throws {
        func rule(at now: Int64) throws -> String? {
            try policy.evaluate(input(now: now)).get().autoApproval
        }
        let hour: Int64 = 3600
        // Friday 22:00 local = 20:00 UTC: opens (in UTC it would still be closed).
        #expect(try rule(at: Self.friday + 20 * hour) == "weekend-nights")
        #expect(try rule(at: Self.friday + 20 * hour - 1) == nil)
        // Saturday 05:59 local (Friday's night) = Saturday 03:59 UTC.
        #expect(try rule(at: Self.friday + 24 * hour + 3 * hour + 59 * 60) == "weekend-nights")
        // Saturday 06:00 local: closed.
        #expect(try rule(at: Self.friday + 24 * hour + 4 * hour) == nil)
        // Sunday 03:00 local belongs to Saturday's night.
        #expect(try rule(at: Self.friday + 48 * hour + 1 * hour) == "weekend-nights")
        // Friday 03:00 local belongs to Thursday's night: not a day of the window.
        #expect(try rule(at: Self.friday + 1 * hour) == nil)
        // Monday 03:00 local belongs to Sunday's night: not a day of the window.
        #expect(try rule(at: Self.friday + 72 * hour + 1 * hour) == nil)
    }

    @Test("a rule applies only to its requesters; the first matching rule wins")
    func autoRuleSelection() throws {
        let bob = try policy.evaluate(input(by: "bob", now: Self.friday + 21 * 3600)).get()
        #expect(bob.autoApproval == nil)
        #expect(bob.autoDuration == nil)
        let erin = try policy.evaluate(input(by: "erin", duration: 7200)).get()
        #expect(erin.autoApproval == "erin-always")
        #expect(erin.autoDuration == 2700)

        let both = """
            version: 1
            flows:
              - name: ops-sudo
                capability: sudo
                requesters: {users: [alice]}
                duration: {max: 2h}
                auto_approve:
                  - name: first
                    requester_in: {unix_groups: [oncall]}
                    max_duration: 10m
                  - name: second
                    requester_in: {users: [alice]}
            """
        let policy = try Policy.parse(both, file: "p.yaml")
        let e = try policy.evaluate(input(groups: ["oncall"], reason: "x")).get()
        #expect(e.autoApproval == "first")
        #expect(e.autoDuration == 600)
        let notOnCall = try policy.evaluate(input(reason: "x")).get()
        #expect(notOnCall.autoApproval == "second")
        #expect(notOnCall.autoDuration == 3600)
    }

    @Test("requester text in refusals is escaped: it ends up in logs")
    func escapedText() {
        let r = refusal(input(by: "eve\nwrit: allowed", host: "web-01"))
        #expect(
            r?.description
                == "no flow lets eve\\nwrit: allowed request sudo on web-01 — eve\\nwrit: allowed may request no flow on "
                + "this host; ask an admin to add eve\\nwrit: allowed to a flow's requesters"
        )
    }

    @Test("a long list of requestable flows is cut to ten")
    func longList() {
        let names = (1...12).map { "f\($0) (sudo)" }
        #expect(
            PolicyRefusal.unknownFlow(name: "x", requestable: names).description
                == "there is no flow named 'x' — flows you may request: f1 (sudo), f2 (sudo), f3 (sudo), f4 (sudo), "
                + "f5 (sudo), f6 (sudo), f7 (sudo), f8 (sudo), f9 (sudo), f10 (sudo), … (2 more)"
        )
    }
}
