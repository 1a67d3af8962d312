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

/// The break-glass rule of a flow: on call now for one of these escalation policies or schedules,
/// at a level <= `maxLevel`.
public struct BreakGlassRule: Sendable, Equatable {
    /// Escalation policy IDs; an entry for any of them qualifies (whatever its schedule).
    public var escalationPolicies: [String]
    /// Schedule IDs; an entry through any of them qualifies (whatever its escalation policy).
    public var schedules: [String]
    /// The highest escalation level that qualifies (1 = only the first responders).
    public var maxLevel: Int

    /// A rule; see the properties. With both lists empty nothing qualifies.
    public init(escalationPolicies: [String] = [], schedules: [String] = [], maxLevel: Int = 1) {
        self.escalationPolicies = escalationPolicies
        self.schedules = schedules
        self.maxLevel = maxLevel
    }

    /// The entry that qualifies (lowest level first, then earliest end), or nil. An entry qualifies
    /// when its escalation policy is listed (or its schedule is listed), its level is between 1 and
    /// `maxLevel`, and start <= now < end (nil = open).
    ///
    /// Among entries with the same level, one that ends sooner wins (an open end counts as last);
    /// remaining ties go to the smaller escalation policy, then schedule ID, so the answer does not
    /// depend on PagerDuty's order.
    public func qualifying(_ entries: [OnCall], now: Int64) -> OnCall? {
        entries.filter { entry in
            let listed =
                escalationPolicies.contains(entry.escalationPolicyID)
                || entry.scheduleID.map { schedules.contains($0) } ?? false
            return listed && entry.level >= 1 && entry.level <= maxLevel && entry.covers(now)
        }
        .min { a, b in
            if a.level != b.level { return a.level < b.level }
            let aEnd = a.end ?? .max
            let bEnd = b.end ?? .max
            if aEnd != bEnd { return aEnd < bEnd }
            if a.escalationPolicyID != b.escalationPolicyID { return a.escalationPolicyID < b.escalationPolicyID }
            return (a.scheduleID ?? "") < (b.scheduleID ?? "")
        }
    }
}
