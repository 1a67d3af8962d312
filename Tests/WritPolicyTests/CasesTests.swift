import Glibc
import Testing
import WritCore
import WritExpr
import WritPolicy

/// `writ policy test` cases, `writ policy replay`, and the policy's git provenance.
@Suite("Policy test cases, replay and provenance")
struct CasesTests {
    static let casesPath = PolicyCases.defaultPath(forPolicy: examplePolicyPath)

    @Test("every case next to the reference policy passes (hooks given by the cases)")
    func exampleCases() throws {
        let policy = try Policy.load(path: examplePolicyPath)
        let suite = try PolicyCases.load(path: Self.casesPath)
        #expect(suite.cases.count >= 12)
        for c in suite.cases {
            let result = suite.run(c, policy: policy) { _, _, _ in
                Issue.record("case \(c.name) ran a hook: every example case gives its answer")
                return (.failed("not run"), "")
            }
            #expect(PolicyCases.mismatches(c, result) == [], "\(c.name): \(result.summary)")
        }
    }

    @Test("a case that expects the wrong thing fails with a line saying what happened instead")
    func failingCase() throws {
        let policy = try Policy.parse(minimalPolicy, file: "p.yaml")
        let suite = try PolicyCases.parse(
            """
            version: 1
            cases:
              - name: wrong
                request: {user: alice, capability: sudo, reason: "x"}
                expect: {outcome: approved, rule: nope}
              - name: wrong approvers
                request: {user: alice, capability: sudo, reason: "x"}
                expect: {outcome: pending, approvers: [carol]}
            """,
            file: "t.yaml"
        )
        let r0 = suite.run(suite.cases[0], policy: policy) { _, _, _ in (.failed(""), "") }
        #expect(
            PolicyCases.mismatches(suite.cases[0], r0) == [
                "expected approved, got pending (flow ops-sudo) — approve: bob (1)"
            ]
        )
        let r1 = suite.run(suite.cases[1], policy: policy) { _, _, _ in (.failed(""), "") }
        #expect(PolicyCases.mismatches(suite.cases[1], r1) == ["step approve: expected approvers carol, got bob"])
    }

    @Test("the hook runs when a case gives no answer, and its answer decides")
    func hookRunsWithoutAnswer() throws {
        let policy = try Policy.parse(
            "version: 1\nflows:\n  - {name: h, capability: sudo, requesters: {users: [alice]}, reason: {required: false}, hooks: {on_request: /etc/writ/hooks/x}}",
            file: "p.yaml"
        )
        let suite = try PolicyCases.parse(
            "version: 1\ncases:\n  - {name: c, request: {user: alice, capability: sudo}, expect: {outcome: approved, by: hook on_request, duration: 10m}}",
            file: "t.yaml"
        )
        var ran = 0
        let r = suite.run(suite.cases[0], policy: policy) { hook, _, _ in
            ran += 1
            #expect(hook.path == "/etc/writ/hooks/x")
            return (.approve(reason: "ok", duration: 600), "ran")
        }
        #expect(ran == 1)
        #expect(PolicyCases.mismatches(suite.cases[0], r) == [])
    }

    @Test("mistakes in a cases file are reported at file:line:column")
    func caseFileErrors() {
        do {
            _ = try PolicyCases.parse(
                "version: 1\ncases:\n  - name: x\n    request: {user: a, capability: sudo, colour: red}\n    expect: {outcome: maybe}\n    time: yesterday\n",
                file: "t.yaml"
            )
            Issue.record("parsed")
        } catch {
            let lines = error.issues.map { "\($0.line):\($0.column): \($0.message)" }
            #expect(lines.count == 3)
            #expect(lines[0].hasPrefix("4:42: unknown key 'colour'"))
            #expect(lines[1].hasPrefix("5:23: unknown outcome 'maybe'"))
            #expect(lines[2].hasPrefix("6:11: 'time' in case x must be an RFC 3339 time"))
        }
    }

    @Test("RFC 3339 times, with Z and offsets")
    func timestamps() {
        #expect(Calendar.timestamp("1970-01-01T00:00:00Z") == 0)
        #expect(Calendar.timestamp("2026-11-25T22:30:00Z") == 1_795_645_800)
        #expect(Calendar.timestamp("2026-11-25T23:30:00+01:00") == 1_795_645_800)
        #expect(Calendar.timestamp("2024-02-29T12:00:00.5-05:30") == 1_709_227_800)
        #expect(Calendar.timestamp("2026-13-01T00:00:00Z") == nil)
        #expect(Calendar.timestamp("yesterday") == nil)
    }

    // MARK: replay

    func record(_ fields: [(String, String)]) -> [(String, String)] { fields }

    @Test("replay re-decides recorded requests and names what would change")
    func replay() throws {
        let old: [[(String, String)]] = [
            [
                ("seq", "1"), ("time", "1764068400"), ("event", "request.create"), ("actor", "alice"),
                ("request", "r_1"), ("kind", "grant"), ("requester", "alice"), ("capability", "sudo"),
                ("flow", "ops-sudo"), ("host", "web-01"), ("runas", "root"), ("duration", "1800"),
                ("reason", "INC-1"), ("groups", ""), ("route", "approve: bob (1)"), ("asked_duration", "1800"),
            ],
            [
                ("seq", "2"), ("time", "1764068460"), ("event", "request.approve"), ("actor", "bob"),
                ("request", "r_1"),
            ],
            [
                ("seq", "3"), ("time", "1764068500"), ("event", "request.refuse"), ("actor", "mallory"),
                ("requester", "mallory"), ("capability", "sudo"), ("host", "web-01"), ("reason", "x"),
                ("message", "no flow lets mallory request sudo"),
            ],
            [
                ("seq", "4"), ("time", "1764068600"), ("event", "request.create"), ("actor", "alice"),
                ("request", "r_2"), ("kind", "grant"), ("requester", "alice"), ("capability", "sudo"),
                ("flow", "ops-sudo"), ("host", "web-01"), ("runas", "root"), ("duration", "600"),
                ("reason", "INC-2"), ("groups", ""), ("route", "approve: bob (1)"), ("asked_duration", "600"),
            ],
        ]
        // Unchanged policy: nothing changes.
        let same = try Policy.parse(minimalPolicy, file: "p.yaml")
        let unchanged = PolicyReplay.replay(old, policy: same, membersOf: { _ in [] })
        #expect(unchanged.count == 3)
        #expect(unchanged.allSatisfy { !$0.changed })
        // New policy: short requests are auto-approved, and mallory may now ask.
        let changed = try Policy.parse(
            """
            version: 1
            flows:
              - name: ops-sudo
                capability: sudo
                requesters: {users: [alice, mallory]}
                approvers: {users: [bob, carol]}
                auto_approve: [{name: short, when: 'request.duration <= duration("10m")'}]
            """,
            file: "p.yaml"
        )
        let out = PolicyReplay.replay(old, policy: changed, membersOf: { _ in [] })
        #expect(out.map(\.change) == ["routed differently", "no longer refused", "newly auto-approved"])
        #expect(out[0].now == .people(route: "approve: bob,carol (1)"))
        #expect(out[2].now == .autoApproved(by: "auto_approve rule short", duration: 600))
        #expect(PolicyReplay.replay(old, policy: changed, since: 1_764_068_550, membersOf: { _ in [] }).count == 1)
        // A request that named no duration is replayed with none: a new default applies to it.
        var noDuration = old[3]
        noDuration.removeAll { $0.0 == "asked_duration" }
        let defaulted = PolicyReplay.replay([noDuration], policy: changed, membersOf: { _ in [] })
        #expect(defaulted.first?.now == .people(route: "approve: bob,carol (1)"))
    }

    // MARK: provenance

    @Test("the git commit of a checkout is read from HEAD, a loose ref or packed-refs")
    func gitCommit() throws {
        var template = Array("/tmp/writ-prov-XXXXXX".utf8CString)
        guard let dir = mkdtemp(&template).map({ String(cString: $0) }) else { throw TempDirError() }
        defer { _ = system("rm -rf '\(dir)'") }
        let hash = "0123456789abcdef0123456789abcdef01234567"
        _ = system("mkdir -p '\(dir)/.git/refs/heads' '\(dir)/policies' && touch '\(dir)/policies/policy.yaml'")
        #expect(PolicyProvenance.gitCommit(forFileAt: "\(dir)/policies/policy.yaml") == nil)
        _ = system("echo 'ref: refs/heads/main' > '\(dir)/.git/HEAD'")
        _ = system("printf '# pack-refs\\n\(hash) refs/heads/main\\n' > '\(dir)/.git/packed-refs'")
        #expect(PolicyProvenance.gitCommit(forFileAt: "\(dir)/policies/policy.yaml") == hash)
        let loose = "fedcba9876543210fedcba9876543210fedcba98"
        _ = system("echo \(loose) > '\(dir)/.git/refs/heads/main'")
        #expect(PolicyProvenance.gitCommit(forFileAt: "\(dir)/policies/policy.yaml") == loose)
        // A FIFO in place of the ref is not read (it would block).
        _ = system("rm '\(dir)/.git/refs/heads/main' && mkfifo '\(dir)/.git/refs/heads/main'")
        #expect(PolicyProvenance.gitCommit(forFileAt: "\(dir)/policies/policy.yaml") == hash)
        // A HEAD naming a ref outside refs/ is not followed.
        _ = system("echo 'ref: ../../etc/passwd' > '\(dir)/.git/HEAD'")
        #expect(PolicyProvenance.gitCommit(forFileAt: "\(dir)/policies/policy.yaml") == nil)
    }

    struct TempDirError: Error {}
}

@Suite("Policy replay and hooks")
struct ReplayHookTests {
    @Test("a request whose hook was asked then and would be asked now is not shown as changed")
    func hookAskedBothTimes() throws {
        let policy = try Policy.parse(
            "version: 1\nflows:\n  - {name: h, capability: sudo, requesters: {users: [alice]}, approvers: {users: [bob]}, reason: {required: false}, hooks: {on_request: /etc/writ/hooks/x}}",
            file: "p.yaml"
        )
        let create: [(String, String)] = [
            ("time", "100"), ("event", "request.create"), ("request", "r_1"), ("requester", "alice"),
            ("capability", "sudo"), ("host", "web-01"), ("runas", "root"), ("duration", "600"),
            ("route", "approve: bob (1)"),
        ]
        let asked: [(String, String)] = [
            ("time", "101"), ("event", "hook.run"), ("request", "r_1"), ("result", "defer"),
        ]
        let approved: [(String, String)] = [
            ("time", "102"), ("event", "request.approve"), ("actor", "bob"), ("request", "r_1"),
        ]
        let withHook = PolicyReplay.replay([create, asked, approved], policy: policy, membersOf: { _ in [] })
        #expect(withHook.map(\.changed) == [false])
        // Without a hook.run record the hook was not asked then: a change.
        let without = PolicyReplay.replay([create, approved], policy: policy, membersOf: { _ in [] })
        #expect(without.map(\.change) == ["routed differently"])
    }
}
