import WritCore
import WritExpr

/// One kind of access that may be requested: what it grants, who may ask, who approves, for how
/// long. Flows are only made by `Policy.parse`, which has checked every field (and every rule
/// between fields), so their properties are read-only.
public struct Flow: Sendable, Equatable {
    /// Unique in the policy; what `writ request --flow` names.
    public let name: String
    public let description: String
    public let capability: Capability
    /// Globs over the host's names (`Glob.matches`); `["*"]` when the file says nothing.
    public let hosts: [String]
    /// The user sudo runs commands as (`root` when the file says nothing). Sudo flows only.
    public let runas: String
    /// Command lines as written in the file (trimmed), each one valid for
    /// `CommandPattern(parsing:)`; `nil` lets the grant run any command. Sudo flows only.
    public let commands: [String]?
    public let requesters: Principals
    /// The approval steps, taken in order; a step whose `condition` is false for a request is
    /// skipped. A flow written with plain `approvers:`/`approvals:` has one step, `approve`.
    public let steps: [ApprovalStep]
    /// The first step's approvers; empty only when the flow has auto-approve rules or a hook.
    public var approvers: Principals { steps.first?.approvers ?? Principals() }
    /// How many distinct approvers the first step needs (at least 1).
    public var approvals: Int { steps.first?.approvals ?? 1 }
    /// Whether the requester's own approval counts toward `approvals` (`AccessRequest`'s
    /// `selfApprovalAllowed`). The parser then requires `approvals` of at least 2, so that
    /// nobody grants themselves access alone.
    public let selfApproval: Bool
    /// Seconds granted when the request names no duration.
    public let defaultDuration: Int64
    /// The longest grant this flow gives, in seconds.
    public let maxDuration: Int64
    public let reasonRequired: Bool
    /// A regular expression a reason must contain a match of: the RE2-style syntax of
    /// docs/conditions.md, matched in linear time (requesters type the reason).
    public let reasonPattern: String?
    /// `reasonPattern` compiled once, when the policy loads.
    let reasonRegex: LinearRegex?
    /// A reason that matches `reasonPattern`, shown to people whose reason does not.
    public let reasonExample: String?
    /// How long a request waits for approvals before it expires, in seconds.
    public let pendingTimeout: Int64
    /// How long before a grant ends its holder is warned, in seconds (0: no warning).
    public let warnBefore: Int64
    /// Checked in order, before `autoApprove`; the first that applies denies the request.
    public let autoDeny: [DenyRule]
    /// On-call break-glass: approves without people when an integration says the requester is on
    /// call now for one of its targets (checked after `autoDeny`, before `autoApprove`).
    public let breakGlass: BreakGlass?
    /// Checked in order; the first that applies approves the request without people.
    public let autoApprove: [AutoRule]
    /// Executables run at points of a request's life (`on_request` may decide it).
    public let hooks: FlowHooks
    /// The Slack channel of this flow's request cards (an id or `#name`); nil: the default
    /// channel of integrations.yaml.
    public let slackChannel: String?
    /// Whether a click in Slack may approve a request of this flow.
    public let slackApprove: SlackApproval
    /// In a fleet: the hosts (globs) whose users' `writ approve` counts for this flow's requests
    /// on any host, besides the request's own host. Empty: an approval through a host counts only
    /// for requests for that host, so a compromised host cannot approve access anywhere else.
    public let approveFromHosts: [String]

    init(
        name: String,
        description: String = "",
        capability: Capability,
        hosts: [String] = ["*"],
        runas: String = "root",
        commands: [String]? = nil,
        requesters: Principals,
        approvers: Principals = Principals(),
        approvals: Int = 1,
        steps: [ApprovalStep]? = nil,
        selfApproval: Bool = false,
        defaultDuration: Int64 = Policy.builtInDefaultDuration,
        maxDuration: Int64 = Policy.builtInDefaultDuration,
        reasonRequired: Bool = true,
        reasonPattern: String? = nil,
        reasonExample: String? = nil,
        pendingTimeout: Int64 = Policy.builtInPendingTimeout,
        warnBefore: Int64 = Policy.builtInWarnBefore,
        autoDeny: [DenyRule] = [],
        breakGlass: BreakGlass? = nil,
        autoApprove: [AutoRule] = [],
        hooks: FlowHooks = FlowHooks(),
        slackChannel: String? = nil,
        slackApprove: SlackApproval = .allowed,
        approveFromHosts: [String] = []
    ) {
        self.name = name
        self.description = description
        self.capability = capability
        self.hosts = hosts
        self.runas = runas
        self.commands = commands
        self.requesters = requesters
        self.steps = steps ?? [ApprovalStep(name: "approve", approvers: approvers, approvals: approvals)]
        self.selfApproval = selfApproval
        self.defaultDuration = defaultDuration
        self.maxDuration = maxDuration
        self.reasonRequired = reasonRequired
        self.reasonPattern = reasonPattern
        // The parser has compiled it once already; a pattern that does not compile matches nothing.
        self.reasonRegex = reasonPattern.flatMap { pattern in try? LinearRegex(pattern) }
        self.reasonExample = reasonExample
        self.pendingTimeout = pendingTimeout
        self.warnBefore = warnBefore
        self.autoDeny = autoDeny
        self.breakGlass = breakGlass
        self.autoApprove = autoApprove
        self.hooks = hooks
        self.slackChannel = slackChannel
        self.slackApprove = slackApprove
        self.approveFromHosts = approveFromHosts
    }

    /// Whether a user's approval through `approver` (a host, its certificate's name) counts for
    /// a request for `requestHost`: the same host, or one `approve_from_hosts` names. Full names
    /// only: authority is not given to a host whose short name happens to match.
    public func acceptsApproval(through approver: String, forRequestOn requestHost: String) -> Bool {
        approver.lowercased() == requestHost.lowercased() || approveFromHosts.contains { Glob.matches($0, approver) }
    }

    /// Whether one of the flow's host globs matches `host` or its short name (the part before the
    /// first dot): the same names a grant's host scope is matched against (`HostIdentity`), so a
    /// flow for `db-01` covers the host `db-01.example.com`, as a grant for `db-01` does.
    public func covers(host: String) -> Bool {
        covers(HostIdentity(nodename: host))
    }

    /// `covers(host:)` with the host's names worked out once, for many flows.
    func covers(_ identity: HostIdentity) -> Bool {
        hosts.contains { identity.matches($0) }
    }
}

/// How a flow's requests may be approved from Slack (`slack_approve:`).
public enum SlackApproval: String, Sendable, Equatable {
    /// The card's Approve button approves, after Slack's confirmation dialog.
    case allowed
    /// The Approve button opens a form where the approver types why they approve.
    case confirm
    /// Not from Slack at all: the card shows `writ approve ID`, to run on a host.
    case cli
}

/// A set of people named three ways: user names, Unix groups (resolved on the host, at the time
/// of the check) and policy groups (defined under `groups:` in the same file).
public struct Principals: Sendable, Equatable {
    public var users: [String]
    public var unixGroups: [String]
    /// Names of groups defined in the policy's `groups:`.
    public var groups: [String]

    public init(users: [String] = [], unixGroups: [String] = [], groups: [String] = []) {
        self.users = users
        self.unixGroups = unixGroups
        self.groups = groups
    }

    /// Whether nobody is named at all.
    public var isEmpty: Bool { users.isEmpty && unixGroups.isEmpty && groups.isEmpty }

    /// Whether `user` is one of these people.
    /// - Parameters:
    ///   - unixGroups: the Unix groups `user` belongs to (primary and supplementary).
    ///   - policyGroups: the policy's `groups:`.
    public func contains(user: String, unixGroups userGroups: Set<String>, policyGroups: [String: [String]]) -> Bool {
        if users.contains(user) { return true }
        if unixGroups.contains(where: userGroups.contains) { return true }
        return groups.contains { policyGroups[$0]?.contains(user) ?? false }
    }

    /// The users named directly or through policy groups: everyone known without asking the host.
    func staticUsers(policyGroups: [String: [String]]) -> Set<String> {
        var result = Set(users)
        for group in groups { result.formUnion(policyGroups[group] ?? []) }
        return result
    }
}

/// Approves a request without people when every test it has passes: the requester is one of
/// `requesterIn`, the request is made inside `window`, and `condition` is true. A rule has at
/// least one of the three.
public struct AutoRule: Sendable, Equatable {
    /// Unique within its flow; recorded with the decision.
    public var name: String
    public var requesterIn: Principals?
    public var window: TimeWindow?
    public var condition: Condition?
    /// The longest grant this rule gives, in seconds: a longer request is approved for this long.
    public var maxDuration: Int64

    public init(
        name: String,
        requesterIn: Principals? = nil,
        window: TimeWindow? = nil,
        condition: Condition? = nil,
        maxDuration: Int64
    ) {
        self.name = name
        self.requesterIn = requesterIn
        self.window = window
        self.condition = condition
        self.maxDuration = maxDuration
    }
}

/// Denies a request without people when `condition` is true; `message` tells the requester why
/// and what to do instead.
public struct DenyRule: Sendable, Equatable {
    public var name: String
    public var condition: Condition
    public var message: String
}

/// A flow's PagerDuty break-glass rule: the requester is on call now for one of
/// `escalationPolicies` or `schedules`, at an escalation level of at most `maxLevel`.
public struct BreakGlass: Sendable, Equatable {
    public var escalationPolicies: [String]
    public var schedules: [String]
    public var maxLevel: Int
    /// The longest grant it gives, in seconds (a longer request is approved for this long).
    public var maxDuration: Int64

    public init(escalationPolicies: [String] = [], schedules: [String] = [], maxLevel: Int = 1, maxDuration: Int64) {
        self.escalationPolicies = escalationPolicies
        self.schedules = schedules
        self.maxLevel = maxLevel
        self.maxDuration = maxDuration
    }

    /// The on-call entry (from `context.oncall`, as writd's PagerDuty lookup fills it) that
    /// qualifies at `now`, or nil when none does (or there is no such context). An entry
    /// qualifies when its escalation policy or its schedule is listed, its level is between 1 and
    /// `maxLevel`, and `start <= now < end` (a missing bound is open). Among several: the lowest
    /// level, then the one that ends first, then the smallest ids, so PagerDuty's order does not
    /// change the evidence.
    public func qualifying(_ context: [String: Value], now: Int64) -> [String: Value]? {
        guard case .list(let entries)? = context["oncall"] else { return nil }
        func text(_ e: [String: Value], _ key: String) -> String? {
            if case .string(let s)? = e[key] { s } else { nil }
        }
        // Timestamps live; whole seconds when read back from the audit log's JSON (replay).
        func time(_ e: [String: Value], _ key: String) -> Int64? {
            switch e[key] {
            case .timestamp(let t)?, .int(let t)?: t
            default: nil
            }
        }
        var candidates: [(entry: [String: Value], level: Int64)] = []
        for case .map(let e) in entries {
            guard case .int(let level)? = e["level"], level >= 1, level <= Int64(maxLevel) else { continue }
            let listed =
                text(e, "escalation_policy").map(escalationPolicies.contains) == true
                || text(e, "schedule").map(schedules.contains) == true
            guard listed else { continue }
            if let start = time(e, "start"), start > now { continue }
            if let end = time(e, "end"), end <= now { continue }
            candidates.append((e, level))
        }
        return candidates.min { a, b in
            if a.level != b.level { return a.level < b.level }
            let aEnd = time(a.entry, "end") ?? .max
            let bEnd = time(b.entry, "end") ?? .max
            if aEnd != bEnd { return aEnd < bEnd }
            let (ap, bp) = (text(a.entry, "escalation_policy") ?? "", text(b.entry, "escalation_policy") ?? "")
            if ap != bp { return ap < bp }
            return (text(a.entry, "schedule") ?? "") < (text(b.entry, "schedule") ?? "")
        }?.entry
    }

    /// One line of evidence for the audit log and the requester: "on call in PagerDuty:
    /// escalation policy PABC (Ops), level 1, schedule SXYZ (Primary), from 2026-11-25 10:00Z to …".
    public static func evidence(_ e: [String: Value]) -> String {
        func text(_ key: String) -> String? { if case .string(let s)? = e[key] { s } else { nil } }
        func when(_ key: String) -> String {
            let t: Int64
            switch e[key] {
            case .timestamp(let v)?, .int(let v)?: t = v
            default: return "open"
            }
            let (day, second) = TimeWindow.floorDivide(t, 86_400)
            let h = second / 3600
            let m = (second % 3600) / 60
            return "\(Calendar.date(ofDay: day)) \(h < 10 ? "0" : "")\(h):\(m < 10 ? "0" : "")\(m)Z"
        }
        var parts: [String] = []
        if let p = text("escalation_policy") {
            parts.append("escalation policy \(p)" + (text("escalation_policy_name").map { " (\($0))" } ?? ""))
        }
        if case .int(let level)? = e["level"] { parts.append("level \(level)") }
        if let s = text("schedule") { parts.append("schedule \(s)" + (text("schedule_name").map { " (\($0))" } ?? "")) }
        parts.append("from \(when("start")) to \(when("end"))")
        return "on call in PagerDuty: " + parts.joined(separator: ", ")
    }
}

/// One approval step of a flow.
public struct ApprovalStep: Sendable, Equatable {
    /// Unique within its flow; shown to approvers ("waiting for step security").
    public var name: String
    public var approvers: Principals
    /// Distinct approvers this step needs.
    public var approvals: Int
    /// The step applies only to requests for which this is true (nil: to every request). A
    /// condition that fails to evaluate counts as true: an error never removes an approval.
    public var condition: Condition?
    public var escalation: Escalation?

    public init(
        name: String,
        approvers: Principals,
        approvals: Int = 1,
        condition: Condition? = nil,
        escalation: Escalation? = nil
    ) {
        self.name = name
        self.approvers = approvers
        self.approvals = approvals
        self.condition = condition
        self.escalation = escalation
    }
}

/// After `after` seconds unanswered, the step's approvers are joined by `to`.
public struct Escalation: Sendable, Equatable {
    public var after: Int64
    public var to: Principals

    public init(after: Int64, to: Principals) {
        self.after = after
        self.to = to
    }
}

/// The hooks of one flow; nil where none is set.
public struct FlowHooks: Sendable, Equatable {
    public var onRequest: HookSpec?
    public var onApprove: HookSpec?
    public var onDeny: HookSpec?
    public var onExpire: HookSpec?

    public init(
        onRequest: HookSpec? = nil,
        onApprove: HookSpec? = nil,
        onDeny: HookSpec? = nil,
        onExpire: HookSpec? = nil
    ) {
        self.onRequest = onRequest
        self.onApprove = onApprove
        self.onDeny = onDeny
        self.onExpire = onExpire
    }

    /// The hook for an event name (`on_request`, …).
    public subscript(event: String) -> HookSpec? {
        switch event {
        case "on_request": onRequest
        case "on_approve": onApprove
        case "on_deny": onDeny
        case "on_expire": onExpire
        default: nil
        }
    }

    public static let events = ["on_request", "on_approve", "on_deny", "on_expire"]
}

/// A `when:` clause: its text as written and the compiled expression.
public struct Condition: Sendable, Equatable {
    public let source: String
    let expression: Expression

    public static func == (a: Condition, b: Condition) -> Bool { a.source == b.source }
}
