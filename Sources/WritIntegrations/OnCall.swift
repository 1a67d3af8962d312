/// One on-call entry as PagerDuty's `GET /oncalls` reports it: the evidence writd records when a
/// break-glass request is approved because its requester is on call.
public struct OnCall: Sendable, Equatable {
    /// The PagerDuty user ID (`P…`).
    public var userID: String
    /// The escalation policy the user is on call for.
    public var escalationPolicyID: String
    /// Its name (the reference's `summary`), when PagerDuty gave one.
    public var escalationPolicyName: String?
    /// The schedule that puts the user on call; nil when the escalation policy targets the user
    /// directly.
    public var scheduleID: String?
    /// The schedule's name, when there is a schedule and PagerDuty gave one.
    public var scheduleName: String?
    /// The escalation rule's level (`escalation_level`, 1 = first to be paged).
    public var level: Int
    /// When the shift starts, in seconds since the epoch; nil = always on call.
    public var start: Int64?
    /// When the shift ends (exclusive), in seconds since the epoch; nil = always on call.
    public var end: Int64?

    /// An entry; see the properties.
    public init(
        userID: String,
        escalationPolicyID: String,
        escalationPolicyName: String? = nil,
        scheduleID: String? = nil,
        scheduleName: String? = nil,
        level: Int,
        start: Int64? = nil,
        end: Int64? = nil
    ) {
        self.userID = userID
        self.escalationPolicyID = escalationPolicyID
        self.escalationPolicyName = escalationPolicyName
        self.scheduleID = scheduleID
        self.scheduleName = scheduleName
        self.level = level
        self.start = start
        self.end = end
    }

    /// Whether the shift covers `now`: `start <= now < end`, a missing bound being open.
    public func covers(_ now: Int64) -> Bool {
        (start.map { $0 <= now } ?? true) && (end.map { now < $0 } ?? true)
    }
}
