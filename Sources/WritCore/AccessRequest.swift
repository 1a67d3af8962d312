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
        public init(by: String, at: Int64, comment: String = "") {
            self.by = by
            self.at = at
            self.comment = comment
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
    /// Who may approve (decided by the policy when the request is filed).
    public var approvers: Set<String>
    /// How many distinct approvers must approve.
    public var requiredApprovals: Int
    /// Whether the requester may approve their own request (off unless a flow turns it on).
    public var selfApprovalAllowed: Bool
    public private(set) var state: State = .pending
    public private(set) var approvals: [Approval] = []
    public private(set) var decidedAt: Int64? = nil
    public private(set) var decidedBy: String? = nil
    public private(set) var decisionNote: String? = nil

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
        self.id = id
        self.requester = requester
        self.capability = capability
        self.duration = duration
        self.reason = reason
        self.createdAt = createdAt
        self.pendingUntil = pendingUntil
        self.approvers = approvers
        self.requiredApprovals = max(1, requiredApprovals)
        self.selfApprovalAllowed = selfApprovalAllowed
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
        case notifyDenied
        case notifyExpired
        case notifyCancelled
    }

    /// Why an event was refused; the request is unchanged.
    public enum Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        case notPending(State)
        case notAnApprover(String)
        case selfApproval
        case alreadyApproved(String)
        case onlyRequesterMayCancel
        case expired

        public var description: String {
            switch self {
            case .notPending(let s): "the request is \(s.rawValue), not pending: nothing to decide"
            case .notAnApprover(let who): "\(LogText.escape(who, limit: 64)) is not an approver for this request"
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
            guard state == .pending, at >= pendingUntil else { return [] }
            decide(.expired, at: pendingUntil, by: nil, note: nil)
            return [.notifyExpired]
        case .approve(let by, let at, let comment):
            try requirePending(at)
            if by == requester && !selfApprovalAllowed { throw .selfApproval }
            guard approvers.contains(by) || (by == requester && selfApprovalAllowed) else { throw .notAnApprover(by) }
            guard !approvals.contains(where: { $0.by == by }) else { throw .alreadyApproved(by) }
            approvals.append(Approval(by: by, at: at, comment: comment))
            let remaining = requiredApprovals - approvals.count
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
        approvers: Set<String>,
        requiredApprovals: Int,
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
            approvers: approvers,
            requiredApprovals: requiredApprovals,
            selfApprovalAllowed: selfApprovalAllowed
        )
        self.state = state
        self.approvals = approvals
        self.decidedAt = decidedAt
        self.decidedBy = decidedBy
        self.decisionNote = decisionNote
    }
}
