import WritAudit
import WritCore
import WritPolicy

extension EngineRequest {
    /// The audit record of a change to this request. `via`: where the deciding call came from
    /// when not the engine itself or a policy rule (`slack:U…`, `host:web-01`).
    public func auditEvent(_ name: String, actor: String, at: Int64, via: String?) -> AuditEvent {
        let r = self
        var fields: [AuditEvent.Field] = [
            .init("request", r.core.id), .init("kind", r.kind), .init("requester", r.core.requester),
            .init("capability", r.core.capability.rawValue), .init("flow", r.flow), .init("host", r.host),
            .init("runas", r.runas), .init("duration", String(r.core.duration)), .init("reason", r.core.reason),
            .init("state", r.core.state.rawValue), .init("policy_version", r.policyVersion),
        ]
        if let g = r.extendsGrant { fields.append(.init("extends", g)) }
        if let c = r.commands { fields.append(.init("commands", c.joined(separator: "; "))) }
        if let rule = r.autoRule { fields.append(.init("rule", rule)) }
        if let via = r.decidedVia, name != "request.create" { fields.append(.init("decided_by", via)) }
        if let note = r.core.decisionNote, !note.isEmpty { fields.append(.init("note", note)) }
        if let commit = r.policyCommit { fields.append(.init("policy_commit", commit)) }
        if let via, actor != "writd", !actor.hasPrefix("policy:"), !actor.hasPrefix("hook:") {
            fields.append(.init("via", via))
        }
        if name == "request.create" {
            // What replay needs to decide the request again: who asked, as what, and the route.
            fields.append(.init("groups", r.groups.joined(separator: ",")))
            for (k, v) in r.fields.sorted(by: { $0.key < $1.key }) { fields.append(.init("field.\(k)", v)) }
            if r.context != "{}" { fields.append(.init("context", r.context)) }
            fields.append(.init("route", Self.route(r.core)))
        }
        if name == "request.approval", let last = r.core.approvals.last {
            fields.append(.init("approvals", "\(r.core.approvals.count)/\(r.core.requiredApprovals)"))
            fields.append(.init("step", r.core.steps[last.step].name))
            if !last.comment.isEmpty { fields.append(.init("comment", last.comment)) }
        }
        return AuditEvent(time: at, event: name, actor: actor, fields: fields)
    }

    /// The approval route of a request as one audit field: "team: bob,carol (1); security: sam (1)".
    public static func route(_ r: AccessRequest) -> String {
        r.steps.map {
            Policy.routeText(
                name: $0.name,
                approvers: $0.approvers,
                required: $0.required,
                escalateAfter: $0.escalateAfter,
                escalateTo: $0.escalateTo
            )
        }.joined(separator: "; ")
    }
}

extension AccessRequest {
    /// The request decided by a policy rule or hook rather than a person.
    public func decidedWithoutPeople(
        _ state: State,
        at: Int64,
        by: String,
        note: String,
        duration: Int64? = nil
    )
        -> AccessRequest
    {
        AccessRequest(
            restoring: id,
            requester: requester,
            capability: capability,
            duration: duration ?? self.duration,
            reason: reason,
            createdAt: createdAt,
            pendingUntil: pendingUntil,
            steps: steps,
            selfApprovalAllowed: selfApprovalAllowed,
            state: state,
            approvals: approvals,
            decidedAt: at,
            decidedBy: by,
            decisionNote: note
        )
    }
}
