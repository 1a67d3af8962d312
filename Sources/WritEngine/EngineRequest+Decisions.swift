import WritAudit
import WritCore

/// The engine's decisions as pure steps: a change to a request, and what must be written for it
/// (audit records and, in their place among them, the grant). Every shell runs the same steps in
/// its own transaction: `ApprovalEngine` over a store port, and writd over its grants.db and
/// writd.db, so a decision means the same on a host and on a server.
extension EngineRequest {
    /// What to write after a change, in this order.
    public enum Effect: Sendable, Equatable {
        case audit(AuditEvent)
        /// Issue the grant the approval earned (or extend the grant an extension names).
        case issueGrant(notBefore: Int64, expiresAt: Int64)
    }

    /// A person approves or denies. A refusal leaves the request unchanged.
    public mutating func decide(
        _ decision: ApprovalEngine.Decision,
        by user: String,
        via: String?,
        at now: Int64
    ) throws(EngineError) -> (actions: [AccessRequest.Action], effects: [Effect]) {
        let event: AccessRequest.Event =
            switch decision {
            case .approve(let comment): .approve(by: user, at: now, comment: comment)
            case .deny(let reason): .deny(by: user, at: now, reason: reason)
            }
        let actions: [AccessRequest.Action]
        do throws(AccessRequest.Refusal) { actions = try core.apply(event) } catch {
            throw .refused(error.description)
        }
        var effects: [Effect] = []
        for action in actions {
            switch action {
            case .recordApproval:
                effects.append(.audit(auditEvent("request.approval", actor: user, at: now, via: via)))
            case .issueGrant(let notBefore, let expiresAt):
                effects.append(.issueGrant(notBefore: notBefore, expiresAt: expiresAt))
                effects.append(.audit(auditEvent("request.approve", actor: user, at: now, via: via)))
            case .notifyDenied:
                effects.append(.audit(auditEvent("request.deny", actor: user, at: now, via: via)))
            case .stepCompleted(let step, let next):
                var e = auditEvent("request.step", actor: user, at: now, via: via)
                e.fields.append(.init("completed", core.steps[step].name))
                e.fields.append(.init("next", core.steps[next].name))
                effects.append(.audit(e))
            case .notifyExpired, .notifyCancelled, .escalated:
                break
            }
        }
        return (actions, effects)
    }

    /// The requester withdraws it.
    public mutating func cancel(by user: String, via: String?, at now: Int64) throws(EngineError) -> [Effect] {
        do throws(AccessRequest.Refusal) { _ = try core.apply(.cancel(by: user, at: now)) } catch {
            throw .refused(error.description)
        }
        return [.audit(auditEvent("request.cancel", actor: user, at: now, via: via))]
    }

    /// The clock: a request nobody answered expires, a step that waited too long escalates. The
    /// records are dated when the deadline fell, however late the tick. `actor` names the clock
    /// ("writd", "writ-engine").
    public mutating func tick(at now: Int64, actor: String) -> (actions: [AccessRequest.Action], effects: [Effect]) {
        let actions = (try? core.apply(.tick(at: now))) ?? []
        var effects: [Effect] = []
        for action in actions {
            switch action {
            case .notifyExpired:
                effects.append(.audit(auditEvent("request.expire", actor: actor, at: core.pendingUntil, via: nil)))
            case .escalated(let i):
                let step = core.steps[i]
                let due = (step.startedAt ?? now) + (step.escalateAfter ?? 0)
                var e = auditEvent("request.escalate", actor: actor, at: due, via: nil)
                e.fields.append(.init("step", step.name))
                e.fields.append(.init("added", step.escalateTo.sorted().joined(separator: ",")))
                effects.append(.audit(e))
            default:
                break
            }
        }
        return (actions, effects)
    }
}
