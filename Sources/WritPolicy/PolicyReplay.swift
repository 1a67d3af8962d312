import WritCore
import WritExpr

/// `writ policy replay`: the requests recorded in the audit log, decided again under another
/// policy, and which decisions would change.
///
/// A request is re-decided from what its `request.create` (or `request.refuse`) record holds: the
/// requester, their Unix groups then, capability, the flow they named, host, run-as user,
/// commands, duration, reason, fields, context, and the time. Approver groups are resolved now
/// (`membersOf`). The on_request hook is not run: a flow that would ask its hook says so.
public enum PolicyReplay {
    /// How a request was (or would be) decided, in the terms a reviewer compares.
    public enum Decision: Sendable, Equatable, CustomStringConvertible {
        case refused(String)
        case autoApproved(by: String, duration: Int64)
        case autoDenied(by: String)
        /// Left to the on_request hook (not run by replay).
        case hook
        /// Left to people; `route` is nil when the record predates routes.
        case people(route: String?)

        public var description: String {
            switch self {
            case .refused(let m): "refused: \(m)"
            case .autoApproved(let by, let d): "approved by \(by) for \(DurationText.format(d))"
            case .autoDenied(let by): "denied by \(by)"
            case .hook: "left to the on_request hook"
            case .people(let route): "to people" + (route.map { " — \($0)" } ?? "")
            }
        }

        /// The change's kind, for the summary.
        static func change(from old: Decision, to new: Decision) -> String {
            switch (old, new) {
            case (.autoApproved, .autoApproved): return "auto-approved differently"
            case (_, .autoApproved): return "newly auto-approved"
            case (.autoApproved, _): return "no longer auto-approved"
            case (_, .refused): return "newly refused"
            case (.refused, _): return "no longer refused"
            case (_, .autoDenied): return "newly auto-denied"
            case (.autoDenied, _): return "no longer auto-denied"
            default: return "routed differently"
            }
        }
    }

    /// One replayed request.
    public struct Outcome: Sendable {
        public var id: String
        public var time: Int64
        public var user: String
        public var flow: String
        public var then: Decision
        public var now: Decision
        public var changed: Bool
        /// "newly auto-approved", … (changed ones only).
        public var change: String?
    }

    /// Replays `records` (audit lines as their flat fields, in log order) under `policy`.
    public static func replay(
        _ records: [[(String, String)]],
        policy: Policy,
        since: Int64? = nil,
        membersOf: (String) -> [String]
    ) -> [Outcome] {
        func field(_ r: [(String, String)], _ name: String) -> String? { r.first { $0.0 == name }?.1 }
        // The first decision recorded for each request.
        var decisions: [String: [(String, String)]] = [:]
        // Requests whose on_request hook ran: whatever people did after it, the hook was asked.
        var hookRan: Set<String> = []
        for r in records where field(r, "event") == "hook.run" {
            if let id = field(r, "request") { hookRan.insert(id) }
        }
        for r in records {
            guard let event = field(r, "event"), event == "request.approve" || event == "request.deny",
                let id = field(r, "request"), decisions[id] == nil
            else { continue }
            decisions[id] = r
        }
        var out: [Outcome] = []
        for r in records {
            guard let event = field(r, "event"), event == "request.create" || event == "request.refuse",
                let time = field(r, "time").flatMap({ Int64($0) })
            else { continue }
            if let since, time < since { continue }
            guard let input = requestInput(r, time: time) else { continue }
            let id = field(r, "request") ?? "(refused)"
            let then: Decision
            if event == "request.refuse" {
                then = .refused(field(r, "message") ?? "")
            } else if let d = decisions[id] {
                then = recorded(d, create: r)
            } else {
                then = .people(route: field(r, "route"))
            }
            let now = decide(input, policy: policy, membersOf: membersOf)
            // Replay does not run hooks: a request its hook was asked about then, and would be
            // asked about now, cannot be shown to change.
            let same = equivalent(then, now) || (now == .hook && hookRan.contains(id))
            out.append(
                Outcome(
                    id: id,
                    time: time,
                    user: input.user,
                    flow: field(r, "flow") ?? input.flow ?? "-",
                    then: then,
                    now: now,
                    changed: !same,
                    change: same ? nil : Decision.change(from: then, to: now)
                )
            )
        }
        return out
    }

    /// How a decision record says the request was decided.
    static func recorded(_ d: [(String, String)], create: [(String, String)]) -> Decision {
        func field(_ name: String) -> String? { d.first { $0.0 == name }?.1 }
        let actor = field("actor") ?? ""
        let approve = field("event") == "request.approve"
        if actor.hasPrefix("policy:") {
            let rule = String(actor.dropFirst(7))
            let by = field("decided_by") ?? (approve ? "auto_approve rule \(rule)" : "auto_deny rule \(rule)")
            if approve { return .autoApproved(by: by, duration: field("duration").flatMap { Int64($0) } ?? 0) }
            return .autoDenied(by: by)
        }
        if actor.hasPrefix("hook:") { return .hook }
        return .people(route: create.first { $0.0 == "route" }?.1)
    }

    /// The request a record describes, as the policy evaluates it: what the requester asked for
    /// (`asked_*`), not what the flow filled in. Records from before Writ recorded `groups` and
    /// `asked_*` give the resolved run-as user, commands and duration instead.
    static func requestInput(_ r: [(String, String)], time: Int64) -> RequestInput? {
        func field(_ name: String) -> String? { r.first { $0.0 == name }?.1 }
        guard let user = field("requester"), let capability = field("capability").flatMap(Capability.init(rawValue:))
        else { return nil }
        var fields: [String: String] = [:]
        for (k, v) in r where k.hasPrefix("field.") { fields[String(k.dropFirst(6))] = v }
        let current = field("groups") != nil
        var commands: [String]? = nil
        if let asked = field("asked_commands") {
            if case .list(let items)? = json(asked) {
                commands = items.compactMap { if case .string(let s) = $0 { s } else { nil } }
            }
        } else if !current {
            commands = field("commands").map { $0.split(separator: ";").map { PolicyParser.trimmed(String($0)) } }
        }
        let runas = current ? field("asked_runas") : field("runas")
        let duration = current ? field("asked_duration") : field("duration")
        return RequestInput(
            user: user,
            unixGroups: Set((field("groups") ?? "").split(separator: ",").map(String.init)),
            capability: capability,
            flow: field("asked_flow"),
            host: field("host") ?? "",
            runas: capability == .sudo ? runas : nil,
            commands: commands,
            duration: duration.flatMap { Int64($0) },
            reason: field("reason") ?? "",
            now: time,
            fields: fields,
            kind: field("kind") ?? "grant",
            context: { if case .map(let m)? = field("context").flatMap(json) { m } else { [:] } }()
        )
    }

    /// What `policy` decides for `input` (hooks not run).
    public static func decide(_ input: RequestInput, policy: Policy, membersOf: (String) -> [String]) -> Decision {
        switch policy.evaluate(input) {
        case .failure(let refusal): return .refused(refusal.description)
        case .success(let e):
            switch e.outcome {
            case .autoApproved(let rule, let duration):
                return .autoApproved(by: "auto_approve rule \(rule)", duration: duration)
            case .autoDenied(let rule, _): return .autoDenied(by: "auto_deny rule \(rule)")
            case .hook: return .hook
            case .people: return .people(route: policy.route(e.steps, membersOf: membersOf))
            }
        }
    }

    /// Same decision: same kind, same rule and duration, same route (when the old one is known).
    /// Refusals compare as refusals: their wording may change with the policy.
    static func equivalent(_ a: Decision, _ b: Decision) -> Bool {
        switch (a, b) {
        case (.refused, .refused), (.hook, .hook): return true
        case (.autoApproved(let x, let d), .autoApproved(let y, let e)): return x == y && d == e
        case (.autoDenied(let x), .autoDenied(let y)): return x == y
        case (.people(let x), .people(let y)): return x == nil || x == y
        default: return false
        }
    }
}

extension Policy {
    /// The approval route of `steps` as one line, the way writd records it in the audit log:
    /// "team: bob,carol (1); security: sam (1) escalates after 30m to ciso".
    public func route(_ steps: [ApprovalStep], membersOf: (String) -> [String]) -> String {
        steps.map { step in
            Policy.routeText(
                name: step.name,
                approvers: users(step.approvers, membersOf: membersOf),
                required: step.approvals,
                escalateAfter: step.escalation?.after,
                escalateTo: step.escalation.map { users($0.to, membersOf: membersOf) } ?? []
            )
        }.joined(separator: "; ")
    }

    /// One step of a route.
    public static func routeText(
        name: String,
        approvers: Set<String>,
        required: Int,
        escalateAfter: Int64?,
        escalateTo: Set<String>
    ) -> String {
        var text = "\(name): \(approvers.sorted().joined(separator: ",")) (\(required))"
        if let after = escalateAfter {
            text += " escalates after \(DurationText.format(after)) to \(escalateTo.sorted().joined(separator: ","))"
        }
        return text
    }
}

extension PolicyReplay {
    /// A JSON text the audit log holds (context, asked commands), or nil when it is not JSON.
    static func json(_ text: String) -> Value? {
        guard case .success(let v) = JSONValue.parse(Array(text.utf8)) else { return nil }
        return Value(v)
    }
}
