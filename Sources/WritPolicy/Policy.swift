/// writd's approval policy: which flows exist, who may request them and who approves.
///
/// Made by `Policy.parse` (text) or `Policy.load` (a file), which check everything they can
/// without asking the host (Unix groups are resolved when a request is made). A policy that
/// parses is internally consistent: every policy group a flow names exists, every duration is
/// within its maximum, every reason pattern compiles, every approval count can be met.
public struct Policy: Sendable {
    /// Policy groups: name → user names.
    public let groups: [String: [String]]
    /// In file order, which is the order `evaluate` tries them in.
    public let flows: [Flow]
    private let flowIndex: [String: Int]
    /// Seconds east of UTC of the clock `time.*` in conditions reads (`timezone:`).
    public let timeZoneOffset: Int
    /// The account hooks run as (`hook_user:`, built-in `writ-hook`).
    public let hookUser: String

    /// The account hooks run as when the policy names none: created by scripts/install.sh, used
    /// for nothing else (every process of the hook user can see a running hook's input).
    public static let builtInHookUser = "writ-hook"

    init(groups: [String: [String]], flows: [Flow], timeZoneOffset: Int = 0, hookUser: String = builtInHookUser) {
        self.groups = groups
        self.flows = flows
        self.timeZoneOffset = timeZoneOffset
        self.hookUser = hookUser
        var index: [String: Int] = [:]
        // The parser refuses duplicate names; keeping the first anyway mirrors file order.
        for (i, flow) in flows.enumerated() where index[flow.name] == nil { index[flow.name] = i }
        self.flowIndex = index
    }

    /// The flow called `name`, if any.
    public func flow(named name: String) -> Flow? {
        flowIndex[name].map { flows[$0] }
    }

    /// Everyone who may approve requests of `flow`: its approver users, the members of its
    /// policy groups, and the members of its Unix groups as `membersOf` reports them (the caller
    /// asks the host: this module does not read `/etc/group`).
    public func approverUsers(of flow: Flow, membersOf: (String) -> [String]) -> Set<String> {
        var result: Set<String> = []
        for step in flow.steps {
            result.formUnion(users(step.approvers, membersOf: membersOf))
            if let e = step.escalation { result.formUnion(users(e.to, membersOf: membersOf)) }
        }
        return result
    }

    /// The users `principals` names: directly, through policy groups, and through Unix groups as
    /// `membersOf` reports them.
    public func users(_ principals: Principals, membersOf: (String) -> [String]) -> Set<String> {
        var result = principals.staticUsers(policyGroups: groups)
        for group in principals.unixGroups { result.formUnion(membersOf(group)) }
        return result
    }

    /// The grant length when neither the flow nor `defaults` says: short, because a forgotten
    /// grant is standing access.
    static let builtInDefaultDuration: Int64 = 3600
    static let builtInPendingTimeout: Int64 = 3600
    static let builtInWarnBefore: Int64 = 300
    /// The longest grant the store and the CLI accept (`writ grant add --for`).
    static let longestGrant: Int64 = 31 * 86_400
    /// Longer reasons are refused rather than cut: a cut reason can change its meaning.
    public static let reasonLimit = 500
    /// Most regex states one `reason_pattern` check may visit (a 500-scalar reason against a
    /// pattern of 4,000 instructions; real patterns take a few thousand).
    public static let reasonPatternWork = 2_000_000
}
