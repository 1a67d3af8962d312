/// A request for a grant, and the rules of its life (DESIGN.md "Requests and grants: states"):
/// `pending → approved | denied | expired | cancelled`. Pure: writd feeds it events with the time
/// and the caller's identity, stores the result, and performs the actions it returns.
public struct AccessRequest: Sendable, Equatable {
    public enum State: String, Sendable, Equatable {
        case pending, approved, denied, expired, cancelled
    }

    public struct Approval: Sendable, Equatable {
        public var by: String
        public var at: Int64
        public var comment: String
        /// The index of the step this approval counted toward.
        public var step: Int
        public init(by: String, at: Int64, comment: String = "", step: Int = 0) {
            self.by = by
            self.at = at
            self.comment = comment
            self.step = step
        }
    }

    /// One approval step: `required` distinct people out of `approvers` must approve before the
    /// next step starts. Steps are taken in order; the request is approved when the last one is.
    public struct Step: Sendable, Equatable {
        public var name: String
        public var approvers: Set<String>
        public var required: Int
        /// Seconds this step may wait, once started, before `escalateTo` may approve it too.
        public var escalateAfter: Int64?
        public var escalateTo: Set<String>
        /// When the step became the current one (nil: not yet).
        public var startedAt: Int64?
        /// Whether `escalateTo` has been added to `approvers`.
        public var escalated: Bool
        /// Approvers a hook added (also in `approvers`): not named by the policy, so writd does
        /// not expect to find them there when they decide.
        public var addedApprovers: Set<String>

        public init(
            name: String,
            approvers: Set<String>,
            required: Int = 1,
            escalateAfter: Int64? = nil,
            escalateTo: Set<String> = [],
            startedAt: Int64? = nil,
            escalated: Bool = false,
            addedApprovers: Set<String> = []
        ) {
            self.name = name
            self.approvers = approvers
            self.required = max(1, required)
            self.escalateAfter = escalateAfter
            self.escalateTo = escalateTo
            self.startedAt = startedAt
            self.escalated = escalated
            self.addedApprovers = addedApprovers
        }

        /// When the step escalates, if it has an escalation still to come.
        public var escalatesAt: Int64? {
            guard !escalated, let after = escalateAfter, let startedAt else { return nil }
            return startedAt + after
        }
    }

    public var id: String
    public var requester: String
    public var capability: Capability
    /// How long the grant lasts once approved: its clock starts at approval, not at the request.
    public var duration: Int64
    public var reason: String
    public var createdAt: Int64
    /// When a request nobody answered expires.
    public var pendingUntil: Int64
    /// The approval steps, in order (decided by the policy when the request is filed).
    public private(set) var steps: [Step]
    /// Everyone who may approve some step now: who may see and deny the request.
    public var approvers: Set<String> { steps.reduce(into: Set()) { $0.formUnion($1.approvers) } }
    /// How many approvals the request needs over all its steps.
    public var requiredApprovals: Int { steps.reduce(0) { $0 + $1.required } }
    /// Whether the requester may approve their own request (off unless a flow turns it on).
    public var selfApprovalAllowed: Bool
    public private(set) var state: State = .pending
    public private(set) var approvals: [Approval] = []
    public private(set) var decidedAt: Int64? = nil
    public private(set) var decidedBy: String? = nil
    public private(set) var decisionNote: String? = nil

    /// A request with one approval step (`approvers`, `requiredApprovals`).
    public init(
        id: String,
        requester: String,
        capability: Capability,
        duration: Int64,
        reason: String,
        createdAt: Int64,
        pendingUntil: Int64,
        approvers: Set<String>,
        requiredApprovals: Int = 1,
        selfApprovalAllowed: Bool = false
    ) {
        self.init(
            id: id,
            requester: requester,
            capability: capability,
            duration: duration,
            reason: reason,
            createdAt: createdAt,
            pendingUntil: pendingUntil,
            steps: [Step(name: "approve", approvers: approvers, required: requiredApprovals)],
            selfApprovalAllowed: selfApprovalAllowed
        )
    }

    /// A request with approval steps taken in order. The first step starts at `createdAt`.
    public init(
        id: String,
        requester: String,
        capability: Capability,
        duration: Int64,
        reason: String,
        createdAt: Int64,
        pendingUntil: Int64,
        steps: [Step],
        selfApprovalAllowed: Bool = false
    ) {
        self.id = id
        self.requester = requester
        self.capability = capability
        self.duration = duration
        self.reason = reason
        self.createdAt = createdAt
        self.pendingUntil = pendingUntil
        var steps = steps.isEmpty ? [Step(name: "approve", approvers: [])] : steps
        steps[0].startedAt = createdAt
        self.steps = steps
        self.selfApprovalAllowed = selfApprovalAllowed
    }

    /// The index of the step approvals count toward now (the last one once approved).
    public var currentStep: Int {
        var i = 0
        while i < steps.count - 1 && approvals.filter({ $0.step == i }).count >= steps[i].required { i += 1 }
        return i
    }

    /// The next time a `.tick` can change this request: its expiry, or its current step's
    /// escalation. nil when it is no longer pending.
    public var nextDeadline: Int64? {
        guard state == .pending else { return nil }
        guard let e = steps[currentStep].escalatesAt else { return pendingUntil }
        return min(pendingUntil, e)
    }

    /// Adds people who may approve step `step` (a hook's `add_approvers`: the step that was
    /// current when the hook was asked, the first), while that step is still the current one:
    /// names meant for the team's step must not become approvers of a later one. Returns the
    /// names added.
    @discardableResult
    public mutating func addApprovers(_ names: [String], toStep step: Int = 0) -> [String] {
        guard state == .pending, step == currentStep else { return [] }
        let new = Set(names).subtracting(steps[step].approvers)
        steps[step].approvers.formUnion(new)
        steps[step].addedApprovers.formUnion(new)
        return new.sorted()
    }

    /// What happened to a request.
    public enum Event: Sendable, Equatable {
        case approve(by: String, at: Int64, comment: String)
        case deny(by: String, at: Int64, reason: String)
        case cancel(by: String, at: Int64)
        /// writd's clock: the request expires if it is still pending at `pendingUntil`.
        case tick(at: Int64)
    }

    /// What writd must do after an event.
    public enum Action: Sendable, Equatable {
        /// Write the grant: valid from `notBefore` (the final approval) for the request's duration.
        case issueGrant(notBefore: Int64, expiresAt: Int64)
        /// Record the approval and tell the requester how many more are needed.
        case recordApproval(remaining: Int)
        /// A step was completed and `next` (its index) started.
        case stepCompleted(step: Int, next: Int)
        /// The step at this index waited too long: its escalation approvers may approve it now.
        case escalated(step: Int)
        case notifyDenied
        case notifyExpired
        case notifyCancelled
    }

    /// Why an event was refused; the request is unchanged.
    public enum Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        case notPending(State)
        case notAnApprover(String)
        /// An approver of another step than the current one.
        case notThisStep(String, step: String)
        case selfApproval
        case alreadyApproved(String)
        case onlyRequesterMayCancel
        case expired

        public var description: String {
            switch self {
            case .notPending(let s): "the request is \(s.rawValue), not pending: nothing to decide"
            case .notAnApprover(let who): "\(LogText.escape(who, limit: 64)) is not an approver for this request"
            case .notThisStep(let who, let step):
                "\(LogText.escape(who, limit: 64)) approves another step; this request waits for step \(LogText.escape(step, limit: 64)) — try again when it gets there"
            case .selfApproval: "you cannot approve your own request — ask another approver"
            case .alreadyApproved(let who): "\(LogText.escape(who, limit: 64)) has already approved this request"
            case .onlyRequesterMayCancel: "only the requester may cancel a request — approvers can deny it"
            case .expired: "the request expired before it was answered — file a new one"
            }
        }
    }

    /// Applies one event. On a refusal nothing changes; concurrent approvals applied one after the
    /// other (writd serialises them) yield exactly one `issueGrant`, because after it the request
    /// is no longer pending.
    public mutating func apply(_ event: Event) throws(Refusal) -> [Action] {
        switch event {
        case .tick(let at):
            guard state == .pending else { return [] }
            if at >= pendingUntil {
                decide(.expired, at: pendingUntil, by: nil, note: nil)
                return [.notifyExpired]
            }
            let i = currentStep
            guard let due = steps[i].escalatesAt, at >= due else { return [] }
            steps[i].escalated = true
            steps[i].approvers.formUnion(steps[i].escalateTo)
            return [.escalated(step: i)]
        case .approve(let by, let at, let comment):
            try requirePending(at)
            if by == requester && !selfApprovalAllowed { throw .selfApproval }
            // Distinct people across all steps: the team's approver cannot also be security's.
            guard !approvals.contains(where: { $0.by == by }) else { throw .alreadyApproved(by) }
            let i = currentStep
            guard steps[i].approvers.contains(by) || (by == requester && selfApprovalAllowed) else {
                throw approvers.contains(by) ? .notThisStep(by, step: steps[i].name) : .notAnApprover(by)
            }
            approvals.append(Approval(by: by, at: at, comment: comment, step: i))
            let remaining = requiredApprovals - approvals.count
            if approvals.filter({ $0.step == i }).count >= steps[i].required && i < steps.count - 1 {
                steps[i + 1].startedAt = at
                return [.recordApproval(remaining: remaining), .stepCompleted(step: i, next: i + 1)]
            }
            guard remaining <= 0 else { return [.recordApproval(remaining: remaining)] }
            decide(.approved, at: at, by: by, note: comment)
            return [.issueGrant(notBefore: at, expiresAt: at + duration)]
        case .deny(let by, let at, let reason):
            try requirePending(at)
            guard approvers.contains(by) else { throw .notAnApprover(by) }
            decide(.denied, at: at, by: by, note: reason)
            return [.notifyDenied]
        case .cancel(let by, let at):
            try requirePending(at)
            guard by == requester else { throw .onlyRequesterMayCancel }
            decide(.cancelled, at: at, by: by, note: nil)
            return [.notifyCancelled]
        }
    }

    private func requirePending(_ at: Int64) throws(Refusal) {
        guard state == .pending else { throw .notPending(state) }
        // A decision that arrives after the deadline loses to the deadline, even before writd's
        // next tick has marked the request expired.
        guard at < pendingUntil else { throw .expired }
    }

    private mutating func decide(_ newState: State, at: Int64, by: String?, note: String?) {
        state = newState
        decidedAt = at
        decidedBy = by
        decisionNote = note
    }
}

extension AccessRequest {
    /// Rebuilds a request as writd stored it (its decided state included).
    public init(
        restoring id: String,
        requester: String,
        capability: Capability,
        duration: Int64,
        reason: String,
        createdAt: Int64,
        pendingUntil: Int64,
        steps: [Step],
        selfApprovalAllowed: Bool,
        state: State,
        approvals: [Approval],
        decidedAt: Int64?,
        decidedBy: String?,
        decisionNote: String?
    ) {
        self.init(
            id: id,
            requester: requester,
            capability: capability,
            duration: duration,
            reason: reason,
            createdAt: createdAt,
            pendingUntil: pendingUntil,
            steps: steps,
            selfApprovalAllowed: selfApprovalAllowed
        )
        self.steps = steps
        self.state = state
        self.approvals = approvals
        self.decidedAt = decidedAt
        self.decidedBy = decidedBy
        self.decisionNote = decisionNote
    }
}
