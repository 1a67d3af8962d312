import Testing
import WritCore
import WritPolicy

@Suite("Policy.reach: who could get a grant (writ doctor's lockout check)")
struct ReachTests {
    static let yaml = """
        version: 1
        groups:
          sre: [alice, bob]
        flows:
          - name: ops
            capability: sudo
            requesters: {groups: [sre], unix_groups: [dba]}
            approvers: {unix_groups: [leads]}
          - name: db
            capability: sudo
            hosts: ["db-*"]
            requesters: {users: [carol]}
            approvers: {users: [bob]}
          - name: pair
            capability: sudo
            requesters: {users: [dan]}
            approvers: {unix_groups: [pairs]}
            approvals: 2
          - name: oncall
            capability: sudo
            requesters: {users: [frank]}
            approvers: {users: [bob]}
            auto_approve:
              - name: always
                requester_in: {users: [frank]}
          - name: logins
            capability: login
            requesters: {users: [gina]}
            approvers: {users: [bob]}
          - name: nights
            capability: sudo
            requesters: {users: [ivan, judy]}
            approvers: {unix_groups: [nobody-yet]}
            auto_approve:
              - name: ivan-only
                requester_in: {users: [ivan]}
              - name: weekends
                requester_in: {users: [judy]}
                window: {days: [sat, sun], from: "00:00", to: "24:00", tz: UTC}
          - name: two-steps
            capability: sudo
            requesters: {users: [kim]}
            steps:
              - name: first
                approvers: {unix_groups: [solo]}
              - name: second
                approvers: {unix_groups: [solo]}
          - name: db-only
            capability: sudo
            runas: postgres
            requesters: {users: [lee]}
            approvers: {users: [bob]}
        """

    let policy: Policy
    init() throws { policy = try Policy.parse(Self.yaml, file: "p.yaml") }

    /// Unix groups as a host would report them (the parser cannot see these: no static check).
    func members(_ group: String) -> [String] {
        switch group {
        case "dba": ["hank"]
        case "leads": ["hank"]
        case "pairs": ["dan", "erin"]
        case "solo": ["mia"]
        default: []
        }
    }

    @Test("requesters with someone else to approve, or a rule, can get a grant; others cannot")
    func reach() {
        let reach = policy.reach(capability: .sudo, host: "web-1", membersOf: members)
        #expect(reach["alice"] == ["ops"])
        #expect(reach["bob"] == ["ops"])
        // hank may request ops (Unix group dba), but hank is its only approver.
        #expect(reach["hank"] == nil)
        // Two approvals needed, dan cannot be one of them: only erin is left.
        #expect(reach["dan"] == nil)
        // An auto-approval rule needs no people.
        #expect(reach["frank"] == ["oncall"])
        // A flow for other hosts does not reach this one; a login flow is not sudo.
        #expect(reach["carol"] == nil)
        #expect(reach["gina"] == nil)
        #expect(policy.reach(capability: .sudo, host: "db-7", membersOf: members)["carol"] == ["db"])
        #expect(policy.reach(capability: .login, host: "web-1", membersOf: members)["gina"] == ["logins"])
        // A rule counts only for the requesters it names, and not when a window decides.
        #expect(reach["ivan"] == ["nights"])
        #expect(reach["judy"] == nil)
        // One person cannot give two steps their approvals.
        #expect(reach["kim"] == nil)
        // A run-as-limited flow counts where scoped grants get through, not at a PAM line without
        // the plugin.
        #expect(reach["lee"] == ["db-only"])
        #expect(
            policy.reach(capability: .sudo, host: "web-1", scopedGrantsPass: false, membersOf: members)["lee"] == nil
        )
    }

    @Test("the starting policy (groups that do not exist yet) reaches nobody")
    func startingPolicy() throws {
        let starting = try Policy.parse(
            """
            version: 1
            flows:
              - name: sudo
                capability: sudo
                requesters: {unix_groups: [writ-requesters]}
                approvers: {unix_groups: [writ-approvers]}
            """,
            file: "p.yaml"
        )
        #expect(starting.reach(capability: .sudo, host: "h", membersOf: { _ in [] }).isEmpty)
    }
}
