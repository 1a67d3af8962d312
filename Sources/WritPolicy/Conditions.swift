import WritCore
import WritExpr

/// The inputs `when:` conditions see, and how a request becomes them. docs/conditions.md lists
/// them; keep the two in step.
public enum Conditions {
    /// The record `request` in conditions.
    static let requestType = ExprType.object(
        "request",
        [
            "user": .string, "groups": .list(.string), "capability": .string, "flow": .string, "host": .string,
            "runas": .string, "commands": .list(.string), "duration": .duration, "reason": .string,
            "fields": .map(.string), "kind": .string,
        ]
    )

    /// The record `time`: the request's time in the policy's `timezone`.
    static let timeType = ExprType.object(
        "time",
        ["hour": .int, "minute": .int, "weekday": .string, "date": .string, "zone": .string]
    )

    /// Every variable a condition may name.
    public static let declarations = Declarations([
        "request": requestType,
        "time": timeType,
        "now": .timestamp,
        // Facts from integrations (on-call state, …): any JSON value, checked at run time.
        "context": .map(.dyn),
    ])

    static let weekdays = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]

    /// The values of the variables for one request under `flow`.
    static func variables(
        _ input: RequestInput,
        flow: Flow,
        duration: Int64,
        runas: String,
        commands: [String]?,
        utcOffset: Int
    ) -> [String: Value] {
        let local = input.now + Int64(utcOffset)
        let (day, second) = TimeWindow.floorDivide(local, 86_400)
        let weekday = Int(TimeWindow.floorDivide(day + 4, 7).remainder)
        let request: [String: Value] = [
            "user": .string(input.user),
            "groups": .list(input.unixGroups.sorted().map(Value.string)),
            "capability": .string(flow.capability.rawValue),
            "flow": .string(flow.name),
            "host": .string(input.host),
            "runas": .string(runas),
            "commands": .list((commands ?? []).map(Value.string)),
            "duration": .duration(duration),
            "reason": .string(PolicyParser.trimmed(input.reason)),
            "fields": .map(input.fields.mapValues(Value.string)),
            "kind": .string(input.kind),
        ]
        let time: [String: Value] = [
            "hour": .int(second / 3600),
            "minute": .int((second % 3600) / 60),
            "weekday": .string(weekdays[weekday]),
            "date": .string(civilDate(day)),
            "zone": .string(offsetText(utcOffset)),
        ]
        return [
            "request": .map(request), "time": .map(time), "now": .timestamp(input.now), "context": .map(input.context),
        ]
    }

    /// `YYYY-MM-DD` of a day number since 1970-01-01 (Howard Hinnant's civil-from-days).
    static func civilDate(_ days: Int64) -> String {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(y)-\(two(m))-\(two(d))"
    }

    /// `UTC` or `+HH:MM`.
    static func offsetText(_ seconds: Int) -> String {
        if seconds == 0 { return "UTC" }
        let m = abs(seconds) / 60
        let hh = m / 60 < 10 ? "0\(m / 60)" : "\(m / 60)"
        let mm = m % 60 < 10 ? "0\(m % 60)" : "\(m % 60)"
        return "\(seconds < 0 ? "-" : "+")\(hh):\(mm)"
    }
}

extension Condition {
    /// Evaluates the condition; an evaluation error is returned as its message.
    func holds(_ variables: [String: Value]) -> Result<Bool, EvalError> {
        expression.evaluate(variables)
    }
}
