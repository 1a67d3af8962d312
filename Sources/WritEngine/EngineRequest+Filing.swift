import WritAudit
import WritCore
import WritExpr
import WritPolicy

/// What filing adds to a new request once the policy has spoken: the rule's decision when one
/// decides at once, what the requester asked as they asked it, and the conditions that failed.
public struct Filing: Sendable, Equatable {
    public enum Decision: Sendable, Equatable {
        /// People (or a hook) decide later, through `decide`.
        case people
        /// A rule approves at once, for `duration` seconds; `evidence` is what an integration's
        /// facts showed (break-glass: the on-call entry).
        case approve(rule: String, duration: Int64, evidence: String?)
        /// A rule denies at once; `message` tells the requester why.
        case deny(rule: String, message: String)
    }

    /// What the requester asked for, as they asked it (before the flow's defaults): replay
    /// submits exactly this again. Typed, so a caller cannot add other fields to the record.
    public struct Asked: Sendable, Equatable {
        public var flow: String?
        public var runas: String?
        public var commands: [String]?
        public var duration: Int64?

        public init(flow: String? = nil, runas: String? = nil, commands: [String]? = nil, duration: Int64? = nil) {
            self.flow = flow
            self.runas = runas
            self.commands = commands
            self.duration = duration
        }

        /// As `request.create` and `request.refuse` record it (`asked_*`). Commands as a JSON
        /// array (a command may contain "; ").
        public var fields: [AuditEvent.Field] {
            var fields: [AuditEvent.Field] = []
            if let flow { fields.append(.init("asked_flow", flow)) }
            if let runas { fields.append(.init("asked_runas", runas)) }
            if let commands, !commands.isEmpty {
                fields.append(.init("asked_commands", EngineRequest.encodeJSON(commands)))
            }
            if let duration { fields.append(.init("asked_duration", String(duration))) }
            return fields
        }
    }

    public var decision: Decision
    public var asked: Asked
    /// Conditions that failed to evaluate (each treated as not deciding).
    public var conditionErrors: [String]

    public init(_ decision: Decision = .people, asked: Asked = Asked(), conditionErrors: [String] = []) {
        self.decision = decision
        self.asked = asked
        self.conditionErrors = conditionErrors
    }

    /// The filing of a request the policy evaluated as `evaluation`, asked for as `input`.
    public init(_ evaluation: Evaluation, asked input: RequestInput) {
        let decision: Decision =
            switch evaluation.outcome {
            case .autoApproved(let rule, let duration):
                .approve(rule: rule, duration: duration, evidence: evaluation.evidence)
            case .autoDenied(let rule, let message): .deny(rule: rule, message: message)
            case .hook, .people: .people
            }
        self.init(decision, asked: Asked(input), conditionErrors: evaluation.conditionErrors)
    }
}

extension Filing.Asked {
    /// What `input` asked for.
    public init(_ input: RequestInput) {
        self.init(flow: input.flow, runas: input.runas, commands: input.commands, duration: input.duration)
    }
}

extension EngineRequest {
    /// Filing: its effects in order. First the `request.create` record, with what was asked and
    /// the conditions that failed; then, when a rule decides at once, the decision: the grant in
    /// its place and the rule's record. Pure like `decide`, `cancel` and `tick`: writd writes the
    /// effects over its own tables, `ApprovalEngine` through its store.
    ///
    /// A rule never grants more than the request asks: its duration is capped at the request's,
    /// and a rule's approval for no time at all leaves the request to people.
    ///
    /// Returns who decided (`policy:RULE`; `user` while nobody has, when no grant is among the
    /// effects) with the effects: the grant's approver.
    public mutating func file(
        _ filing: Filing,
        by user: String,
        via: String?,
        at now: Int64
    ) -> (decidedBy: String, effects: [Effect]) {
        var create = auditEvent("request.create", actor: user, at: now, via: via)
        create.fields += filing.asked.fields
        if !filing.conditionErrors.isEmpty {
            create.fields.append(.init("condition_errors", filing.conditionErrors.joined(separator: "; ")))
        }
        var effects: [Effect] = [.audit(create)]
        switch filing.decision {
        case .approve(let rule, let asked, let evidence) where min(asked, core.duration) > 0:
            let duration = min(asked, core.duration)
            let by = "policy:" + rule
            let glass = rule == Policy.breakGlassRule && evidence != nil
            core = core.decidedWithoutPeople(
                .approved,
                at: now,
                by: by,
                note: glass ? "break-glass: \(evidence ?? "")" : "auto-approved by rule \(rule)",
                duration: duration
            )
            autoRule = rule
            decidedVia = glass ? "break-glass (PagerDuty on call)" : "auto_approve rule \(rule)"
            var approve = auditEvent("request.approve", actor: by, at: now, via: via)
            if let evidence { approve.fields.append(.init("evidence", evidence)) }
            effects += [.issueGrant(notBefore: now, expiresAt: now + duration), .audit(approve)]
            return (by, effects)
        case .deny(let rule, let message):
            let by = "policy:" + rule
            core = core.decidedWithoutPeople(.denied, at: now, by: by, note: message)
            autoRule = rule
            decidedVia = "auto_deny rule \(rule)"
            effects.append(.audit(auditEvent("request.deny", actor: by, at: now, via: via)))
            return (by, effects)
        case .people, .approve:
            return (user, effects)
        }
    }
}

extension EngineRequest {
    /// A new request (or an extension of the grant `extending`: its id and end) as the policy
    /// evaluated it: the steps' approvers resolved to people through `membersOf`, the flow's
    /// timeouts applied. Not yet filed: `ApprovalEngine.file` (or writd's own store) does that.
    /// `reason` is the note as the caller checked it; `requesterUID` is 0 where no host's uid
    /// applies (writ-server: the host fills in its own). `runas` and `commands`: the grant's
    /// scope when it is not the evaluation's (an extension keeps the grant's).
    public static func new(
        policy: Policy,
        evaluation: Evaluation,
        input: RequestInput,
        reason: String,
        requesterUID: UInt32,
        runas: String? = nil,
        commands: [String]?? = nil,
        extending grant: (id: String, expiresAt: Int64)? = nil,
        policyVersion: String,
        policyCommit: String?,
        membersOf: (String) -> [String],
        at now: Int64
    ) -> EngineRequest {
        let flow = evaluation.flow
        var pendingUntil = now + flow.pendingTimeout
        // An extension nobody answers before the grant ends has nothing left to extend.
        if let grant { pendingUntil = min(pendingUntil, grant.expiresAt) }
        let steps = evaluation.steps.map { step in
            AccessRequest.Step(
                name: step.name,
                approvers: policy.users(step.approvers, membersOf: membersOf),
                required: step.approvals,
                escalateAfter: step.escalation?.after,
                escalateTo: step.escalation.map { policy.users($0.to, membersOf: membersOf) } ?? []
            )
        }
        return EngineRequest(
            core: AccessRequest(
                id: generateID(),
                requester: input.user,
                capability: input.capability,
                duration: evaluation.duration,
                reason: reason,
                createdAt: now,
                pendingUntil: pendingUntil,
                steps: steps,
                selfApprovalAllowed: flow.selfApproval
            ),
            kind: grant == nil ? "grant" : "extend",
            extendsGrant: grant?.id,
            requesterUID: requesterUID,
            flow: flow.name,
            host: input.host,
            runas: runas ?? evaluation.runas,
            commands: commands ?? evaluation.commands,
            grantID: nil,
            autoRule: nil,
            warnBefore: flow.warnBefore,
            policyVersion: policyVersion,
            fields: input.fields,
            context: contextJSON(input.context),
            groups: input.unixGroups.sorted(),
            policyCommit: policyCommit,
            askedFlow: input.flow
        )
    }
}

extension EngineRequest {
    /// Integration facts as the request keeps them: a JSON object's text.
    public static func contextJSON(_ context: [String: Value]) -> String {
        guard !context.isEmpty else { return "{}" }
        return encodeJSON(JSONValue(context))
    }
}
