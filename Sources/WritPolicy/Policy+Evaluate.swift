import WritCore
import WritExpr

/// A request as writd receives it, with what writd knows about the requester.
public struct RequestInput: Sendable, Equatable {
    public var user: String
    /// The requester's Unix groups (primary and supplementary), as the host resolves them now.
    public var unixGroups: Set<String>
    public var capability: Capability
    /// The flow the requester named (`--flow`), or nil to let the policy pick one.
    public var flow: String?
    /// The host the grant is for: its kernel host name. Flow host patterns match it or its short
    /// name, as grant host scopes do.
    public var host: String
    /// nil: the flow's run-as user. Sudo only.
    public var runas: String?
    /// Command lines asked for; nil or empty: the flow's commands (or any, if the flow has none).
    /// Sudo only.
    public var commands: [String]?
    /// Seconds; nil: the flow's default.
    public var duration: Int64?
    public var reason: String
    /// Epoch seconds, for auto-approve windows and `time`/`now` in conditions.
    public var now: Int64
    /// `writ request --field name=value`: what the flow's conditions and hooks may ask for.
    public var fields: [String: String]
    /// `grant` (a new grant) or `extend`.
    public var kind: String
    /// Facts from integrations (`context.on_call`), as conditions see them.
    public var context: [String: Value]

    public init(
        user: String,
        unixGroups: Set<String> = [],
        capability: Capability,
        flow: String? = nil,
        host: String,
        runas: String? = nil,
        commands: [String]? = nil,
        duration: Int64? = nil,
        reason: String,
        now: Int64,
        fields: [String: String] = [:],
        kind: String = "grant",
        context: [String: Value] = [:]
    ) {
        self.user = user
        self.unixGroups = unixGroups
        self.capability = capability
        self.flow = flow
        self.host = host
        self.runas = runas
        self.commands = commands
        self.duration = duration
        self.reason = reason
        self.now = now
        self.fields = fields
        self.kind = kind
        self.context = context
    }
}

/// What the policy makes of an acceptable request.
public struct Evaluation: Sendable, Equatable {
    /// The flow that will decide it.
    public let flow: Flow
    /// The grant length asked for (or the flow's default), in seconds.
    public let duration: Int64
    /// The run-as user of the grant.
    public let runas: String
    /// The grant's commands: the ones asked for, else the flow's; nil lets the grant run any.
    public let commands: [String]?
    /// What the policy decided.
    public let outcome: Outcome
    /// The approval steps that apply to this request, in order (the steps whose condition holds).
    public let steps: [ApprovalStep]
    /// What the decision rests on when an integration's facts decided (break-glass: the on-call
    /// entry), one line for the audit log and the requester.
    public var evidence: String? = nil
    /// Conditions that failed to evaluate, as "auto_approve rule x: message": each was treated
    /// as not deciding (a step's as applying). writd logs them; `writ policy test` shows them.
    public let conditionErrors: [String]

    /// The rule that approves the request without people, if one applies now.
    public var autoApproval: String? {
        if case .autoApproved(let rule, _) = outcome { return rule }
        return nil
    }

    /// With `autoApproval`: the grant length it approves, `min(duration, rule.maxDuration)`.
    public var autoDuration: Int64? {
        if case .autoApproved(_, let d) = outcome { return d }
        return nil
    }

    /// What the policy decided without people.
    public enum Outcome: Sendable, Equatable {
        /// Approved by the auto_approve rule `rule` for `duration` seconds (at most its maximum).
        case autoApproved(rule: String, duration: Int64)
        /// Denied by the auto_deny rule `rule`, whose message tells the requester why.
        case autoDenied(rule: String, message: String)
        /// Up to the flow's on_request hook, then (if it defers or fails) to people.
        case hook(HookSpec)
        /// Up to people: `steps`.
        case people
    }

    /// The decision once the on_request hook has answered (`.hook` outcomes).
    public func resolve(_ verdict: HookVerdict) -> HookResolution {
        verdict.resolution(forDuration: duration)
    }
}

/// What an on_request hook said, as the policy uses it.
public enum HookVerdict: Sendable, Equatable {
    /// `duration`: the hook's own limit (it may only shorten the grant).
    case approve(reason: String, duration: Int64?)
    case deny(reason: String)
    /// Leave it to people, adding these approvers to the first step.
    case `defer`(addApprovers: [String])
    /// The hook failed (crashed, timed out, printed garbage): no decision, the request goes to
    /// people. The message is for the log.
    case failed(String)

    /// What the answer does to a request for `duration` seconds: a hook may shorten a grant,
    /// never lengthen it; a failed hook leaves the request to people.
    public func resolution(forDuration duration: Int64) -> HookResolution {
        switch self {
        case .approve(let reason, let hookDuration):
            return .approved(duration: min(duration, max(1, hookDuration ?? duration)), reason: reason)
        case .deny(let reason): return .denied(reason: reason)
        case .defer(let add): return .people(addApprovers: add)
        case .failed: return .people(addApprovers: [])
        }
    }
}

/// A request's fate after its on_request hook.
public enum HookResolution: Sendable, Equatable {
    case approved(duration: Int64, reason: String)
    case denied(reason: String)
    case people(addApprovers: [String])
}

/// Why the policy refuses a request: each says what happened and what to do instead, on one line.
public enum PolicyRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    /// No flow of that capability covers the host for this user. `requestable`: the flows the user
    /// may request on that host, as "name (capability)".
    case noFlow(user: String, capability: Capability, host: String, requestable: [String])
    /// `--flow` names no flow.
    case unknownFlow(name: String, requestable: [String])
    case capabilityMismatch(flow: String, flowCapability: Capability, requested: Capability)
    case notRequester(user: String, flow: String, requestable: [String])
    case hostNotCovered(flow: String, host: String, hosts: [String])
    case runasNotAllowed(flow: String, requested: String, allowed: String)
    case commandNotAllowed(flow: String, command: String, allowed: [String])
    /// `--runas` or `--command` on a login request.
    case sudoOnly(option: String, flow: String)
    case durationNotPositive(requested: Int64)
    case durationOverMax(flow: String, requested: Int64, max: Int64)
    case reasonMissing(flow: String, pattern: String?, example: String?)
    /// `length` in Unicode scalars.
    case reasonTooLong(length: Int, limit: Int)
    case reasonMismatch(flow: String, pattern: String, example: String?)
    /// Every approval step has a condition, and none holds for this request.
    case noStep(flow: String)

    public var description: String {
        switch self {
        case .noFlow(let user, let capability, let host, let requestable):
            let who = Self.shown(user)
            let head = "no flow lets \(who) request \(capability.rawValue) on \(Self.shown(host))"
            if requestable.isEmpty {
                return
                    "\(head) — \(who) may request no flow on this host; ask an admin to add \(who) to a flow's requesters"
            }
            return "\(head) — flows you may request: \(Self.list(requestable))"
        case .unknownFlow(let name, let requestable):
            let head = "there is no flow named '\(Self.shown(name))'"
            if requestable.isEmpty { return "\(head) — check the name with an admin" }
            return "\(head) — flows you may request: \(Self.list(requestable))"
        case .capabilityMismatch(let flow, let flowCapability, let requested):
            return "flow \(flow) grants \(flowCapability.rawValue), not \(requested.rawValue) — request "
                + "\(flowCapability.rawValue) with it, or leave out --flow to use a \(requested.rawValue) flow"
        case .notRequester(let user, let flow, let requestable):
            let head = "\(Self.shown(user)) may not request flow \(flow)"
            if requestable.isEmpty { return "\(head) — ask an admin to add you to its requesters" }
            return "\(head) — flows you may request: \(Self.list(requestable))"
        case .hostNotCovered(let flow, let host, let hosts):
            return "flow \(flow) does not cover host \(Self.shown(host)) (its hosts: \(Self.list(hosts))) — "
                + "leave out --flow to find one that does"
        case .runasNotAllowed(let flow, let requested, let allowed):
            return "flow \(flow) runs commands as \(allowed), not \(Self.shown(requested)) — ask for --runas "
                + "\(allowed) (or leave it out), or pick another flow"
        case .commandNotAllowed(let flow, let command, let allowed):
            let quoted = allowed.map { "\"\($0)\"" }
            return "flow \(flow) does not allow \"\(Self.shown(command))\" — it allows \(Self.list(quoted)); "
                + "ask for those, or pick another flow"
        case .sudoOnly(let option, let flow):
            return "\(option) applies to sudo requests only and flow \(flow) grants login — leave it out"
        case .durationNotPositive(let requested):
            return "duration \(DurationText.format(requested)) is not more than 0 — ask for a duration such as 30m"
        case .durationOverMax(let flow, let requested, let max):
            let m = DurationText.format(max)
            return "duration \(DurationText.format(requested)) is over the flow's maximum \(m) (flow \(flow)) — "
                + "ask for \(m) or less"
        case .reasonMissing(let flow, let pattern, let example):
            var text = "flow \(flow) needs a reason"
            if let pattern { text += " matching \(pattern)" }
            return text + " — give one, e.g. --reason \"\(example.map { Self.shown($0) } ?? "…")\""
        case .reasonTooLong(let length, let limit):
            return "the reason is \(length) characters, over the limit of \(limit) — shorten it"
        case .reasonMismatch(let flow, let pattern, let example):
            let hint = example.map { "e.g. --reason \"\(Self.shown($0))\"" } ?? "reword it to match"
            return "reason must match \(pattern) (flow \(flow)) — \(hint)"
        case .noStep(let flow):
            return
                "no approval step of flow \(flow) applies to this request, so nobody could approve it — ask an admin to fix the flow's steps"
        }
    }

    /// Text from the requester or the host, escaped: a refusal ends up in logs.
    static func shown(_ s: String) -> String { LogText.escape(s, limit: 200) }

    /// At most ten items: a policy can have hundreds of flows, a refusal is one line.
    static func list(_ items: [String]) -> String {
        let shown = items.prefix(10).joined(separator: ", ")
        return items.count > 10 ? "\(shown), … (\(items.count - 10) more)" : shown
    }
}

extension Policy {
    /// Decides which flow a request falls under and whether the policy allows it as asked.
    ///
    /// With `input.flow`, that flow must exist, grant the capability, let the user request it
    /// and cover the host. Without, the first flow in file order that grants the capability, that
    /// the user may request, that covers the host, and whose run-as user and commands fit.
    /// Then: the run-as user must be the flow's, each command one of the flow's (compared
    /// trimmed), the duration at most the flow's maximum, and the reason present and matching
    /// when the flow says so. Auto-approval is the first rule whose `requesterIn` has the user
    /// and whose window (if any) holds `input.now`.
    ///
    /// Approvals themselves are not checked here: who approved is the request's state, not the
    /// policy's.
    public func evaluate(_ input: RequestInput) -> Result<Evaluation, PolicyRefusal> {
        let reason = PolicyParser.trimmed(input.reason)
        // Before anything else: a reason this long must not reach a regular expression.
        let length = reason.unicodeScalars.count
        if length > Policy.reasonLimit { return .failure(.reasonTooLong(length: length, limit: Policy.reasonLimit)) }

        let flow: Flow
        switch selectFlow(input) {
        case .success(let f): flow = f
        case .failure(let refusal): return .failure(refusal)
        }

        let duration = input.duration ?? flow.defaultDuration
        if duration <= 0 { return .failure(.durationNotPositive(requested: duration)) }
        if duration > flow.maxDuration {
            return .failure(.durationOverMax(flow: flow.name, requested: duration, max: flow.maxDuration))
        }

        if reason.isEmpty {
            if flow.reasonRequired {
                return .failure(
                    .reasonMissing(flow: flow.name, pattern: flow.reasonPattern, example: flow.reasonExample)
                )
            }
        } else if let pattern = flow.reasonPattern,
            flow.reasonRegex?.firstMatch(in: reason, workLimit: Policy.reasonPatternWork) != true
        {
            // Out of work counts as no match: the requester's text cannot make the engine spin.
            return .failure(.reasonMismatch(flow: flow.name, pattern: pattern, example: flow.reasonExample))
        }

        let requested = (input.commands ?? []).map(PolicyParser.trimmed)
        let commands = flow.capability == .login ? nil : requested.isEmpty ? flow.commands : requested
        let evaluation = decide(input, flow: flow, duration: duration, commands: commands)
        switch evaluation.outcome {
        case .people, .hook: if evaluation.steps.isEmpty { return .failure(.noStep(flow: flow.name)) }
        case .autoApproved, .autoDenied: break
        }
        return .success(evaluation)
    }

    /// Conditions, rules and steps for a request the flow accepts: auto_deny rules first, then
    /// auto_approve rules (both in file order, the first that applies decides), then the
    /// on_request hook, then people. An auto_deny condition that fails to evaluate sends the
    /// request straight to people: no rule or hook approves what a deny rule might have denied.
    private func decide(_ input: RequestInput, flow: Flow, duration: Int64, commands: [String]?) -> Evaluation {
        var errors: [String] = []
        // Built once, and only for flows that have conditions: most requests never need them.
        var cached: [String: Value]? = nil
        func holds(_ condition: Condition, _ what: String) -> Bool? {
            if cached == nil {
                cached = Conditions.variables(
                    input,
                    flow: flow,
                    duration: duration,
                    runas: flow.runas,
                    commands: commands,
                    utcOffset: timeZoneOffset
                )
            }
            switch condition.holds(cached ?? [:]) {
            case .success(let value): return value
            case .failure(let error):
                errors.append("\(what): \(error.message)")
                return nil
            }
        }
        func evaluation(_ outcome: Evaluation.Outcome, _ steps: [ApprovalStep], evidence: String? = nil) -> Evaluation {
            Evaluation(
                flow: flow,
                duration: duration,
                runas: flow.runas,
                commands: commands,
                outcome: outcome,
                steps: steps,
                evidence: evidence,
                conditionErrors: errors
            )
        }
        // A step whose condition cannot be evaluated applies: an error never removes an approval.
        let steps = flow.steps.filter { step in
            guard let c = step.condition else { return true }
            return holds(c, "step \(step.name)") ?? true
        }
        var denyFailed = false
        for rule in flow.autoDeny {
            switch holds(rule.condition, "auto_deny rule \(rule.name)") {
            case true?: return evaluation(.autoDenied(rule: rule.name, message: rule.message), steps)
            case nil: denyFailed = true
            case false?: break
            }
        }
        // A deny rule that could not be evaluated might have denied: nothing may approve without
        // people then (the requester could cause the error, e.g. by leaving out a field).
        if denyFailed { return evaluation(.people, steps) }
        // Break-glass rests on what PagerDuty said (writd put it in the context; a requester
        // cannot); no answer from PagerDuty means no entry, and the request goes on below.
        if let glass = flow.breakGlass, let entry = glass.qualifying(input.context, now: input.now) {
            return evaluation(
                .autoApproved(rule: Self.breakGlassRule, duration: min(duration, glass.maxDuration)),
                steps,
                evidence: BreakGlass.evidence(entry)
            )
        }
        for rule in flow.autoApprove {
            if let who = rule.requesterIn,
                !who.contains(user: input.user, unixGroups: input.unixGroups, policyGroups: groups)
            {
                continue
            }
            if let window = rule.window, !window.contains(input.now) { continue }
            if let c = rule.condition, holds(c, "auto_approve rule \(rule.name)") != true { continue }
            return evaluation(.autoApproved(rule: rule.name, duration: min(duration, rule.maxDuration)), steps)
        }
        if let hook = flow.hooks.onRequest { return evaluation(.hook(hook), steps) }
        return evaluation(.people, steps)
    }

    /// The rule name a break-glass approval is recorded under (auto_approve names may not use it).
    public static let breakGlassRule = "break-glass"

    private func selectFlow(_ input: RequestInput) -> Result<Flow, PolicyRefusal> {
        if let name = input.flow {
            guard let flow = flow(named: name) else {
                return .failure(.unknownFlow(name: name, requestable: requestable(by: input)))
            }
            guard flow.capability == input.capability else {
                return .failure(
                    .capabilityMismatch(flow: flow.name, flowCapability: flow.capability, requested: input.capability)
                )
            }
            guard mayRequest(flow, input) else {
                return .failure(.notRequester(user: input.user, flow: flow.name, requestable: requestable(by: input)))
            }
            guard flow.covers(host: input.host) else {
                return .failure(.hostNotCovered(flow: flow.name, host: input.host, hosts: flow.hosts))
            }
            if let refusal = scopeRefusal(flow, input) { return .failure(refusal) }
            return .success(flow)
        }
        let identity = HostIdentity(nodename: input.host)
        // Cheapest test first; the first flow that fits wins, so the scan stops there.
        let candidates = flows.lazy.filter {
            $0.capability == input.capability && $0.covers(identity) && self.mayRequest($0, input)
        }
        if let fit = candidates.first(where: { scopeRefusal($0, input) == nil }) { return .success(fit) }
        // Flows exist but none takes this run-as user or these commands: say what the first one
        // would take, which is more useful than "no flow".
        if let first = candidates.first, let refusal = scopeRefusal(first, input) { return .failure(refusal) }
        return .failure(
            .noFlow(
                user: input.user,
                capability: input.capability,
                host: input.host,
                requestable: requestable(by: input)
            )
        )
    }

    /// The flows `user` may request on `host`, in the policy's order (Slack's request form).
    public func flows(requestableBy user: String, unixGroups: Set<String>, host: String) -> [Flow] {
        flows.filter {
            $0.requesters.contains(user: user, unixGroups: unixGroups, policyGroups: groups) && $0.covers(host: host)
        }
    }

    private func mayRequest(_ flow: Flow, _ input: RequestInput) -> Bool {
        flow.requesters.contains(user: input.user, unixGroups: input.unixGroups, policyGroups: groups)
    }

    /// The flows `input.user` may request on `input.host`, as "name (capability)".
    private func requestable(by input: RequestInput) -> [String] {
        flows.filter { mayRequest($0, input) && $0.covers(host: input.host) }
            .map { "\($0.name) (\($0.capability.rawValue))" }
    }

    static func sameBytes(_ a: String, _ b: String) -> Bool { a.utf8.elementsEqual(b.utf8) }

    /// Why the run-as user or commands asked for do not fit `flow`, or nil when they do.
    private func scopeRefusal(_ flow: Flow, _ input: RequestInput) -> PolicyRefusal? {
        let commands = (input.commands ?? []).map(PolicyParser.trimmed)
        if flow.capability == .login {
            if input.runas != nil { return .sudoOnly(option: "--runas", flow: flow.name) }
            if !commands.isEmpty { return .sudoOnly(option: "--command", flow: flow.name) }
            return nil
        }
        // Bytes, not String ==: Swift's == equates canonically equivalent Unicode, but the grant
        // carries the requested text and sudo compares bytes, so "equal" must mean the same bytes
        // or the grant could allow a command the policy never listed.
        if let runas = input.runas, !Self.sameBytes(runas, flow.runas) {
            return .runasNotAllowed(flow: flow.name, requested: runas, allowed: flow.runas)
        }
        // A flow without commands allows any command, so any list of them fits.
        if let allowed = flow.commands,
            let missing = commands.first(where: { command in !allowed.contains { Self.sameBytes($0, command) } })
        {
            return .commandNotAllowed(flow: flow.name, command: missing, allowed: allowed)
        }
        return nil
    }
}
