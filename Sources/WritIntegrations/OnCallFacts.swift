import WritExpr

extension PagerDutyClient {
    /// What PagerDuty says about a requester now, as the policy's `context`:
    /// - `on_call` (bool) and `oncall` (a list of `{escalation_policy, escalation_policy_name,
    ///   schedule, schedule_name, level, start, end}`);
    /// - `pagerduty_error` (text) when no email is known for the user or PagerDuty did not
    ///   answer: then `on_call` is absent, so no condition or break-glass rule can take silence
    ///   for "on call".
    /// `failure` is the lookup's error, for the caller's log (a missing email is the settings'
    /// mistake, told in `pagerduty_error` alone).
    public func requesterFacts(
        user: String,
        email: String?,
        settingsPath: String,
        now: Int64
    ) async -> (facts: [String: Value], failure: String?) {
        guard let email else {
            let why = "no email known for \(user): add it under identities in \(settingsPath)"
            return (["pagerduty_error": .string(why)], nil)
        }
        do throws(PagerDutyError) {
            let entries = try await onCalls(email: email, now: now)
            return (["on_call": .bool(!entries.isEmpty), "oncall": .list(entries.map(Self.value))], nil)
        } catch {
            return (["pagerduty_error": .string(error.description)], error.description)
        }
    }

    static func value(_ e: OnCall) -> Value {
        var m: [String: Value] = [
            "escalation_policy": .string(e.escalationPolicyID),
            "level": .int(Int64(e.level)),
            "schedule": e.scheduleID.map(Value.string) ?? .null,
            "start": e.start.map(Value.timestamp) ?? .null,
            "end": e.end.map(Value.timestamp) ?? .null,
        ]
        if let n = e.escalationPolicyName { m["escalation_policy_name"] = .string(n) }
        if let n = e.scheduleName { m["schedule_name"] = .string(n) }
        return .map(m)
    }
}
