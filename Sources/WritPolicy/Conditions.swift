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
    package static func variables(
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
            "date": .string(Calendar.date(ofDay: day)),
            "zone": .string(offsetText(utcOffset)),
        ]
        return [
            "request": .map(request), "time": .map(time), "now": .timestamp(input.now), "context": .map(input.context),
        ]
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
