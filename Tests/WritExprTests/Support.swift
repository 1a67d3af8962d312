import Testing
import WritExpr

/// Declarations like the policy's: an object, a dyn map, a timestamp.
let declarations = Declarations([
    "request": .object(
        "request",
        [
            "user": .string, "groups": .list(.string), "host": .string, "commands": .list(.string),
            "duration": .duration, "reason": .string, "fields": .map(.string),
        ]
    ),
    "time": .object("time", ["hour": .int, "minute": .int]),
    "context": .map(.dyn),
    "now": .timestamp,
])

/// Values for `declarations`.
let variables: [String: Value] = [
    "request": .map([
        "user": .string("alice"),
        "groups": .list([.string("sre"), .string("dba")]),
        "host": .string("db-01"),
        "commands": .list([.string("/usr/bin/systemctl restart postgresql"), .string("/usr/bin/systemctl status x")]),
        "duration": .duration(1800),
        "reason": .string("INC-1234 disk full"),
        "fields": .map(["ticket": .string("T-9"), "empty": .string("")]),
    ]),
    "time": .map(["hour": .int(19), "minute": .int(5)]),
    "context": .map([
        "on_call": .bool(true),
        "level": .int(3),
        "name": .string("alice"),
        "teams": .list([.string("sre"), .int(7)]),
        "nothing": .null,
        "nested": .map(["a": .map(["b": .int(1)])]),
    ]),
    // 2026-11-25T10:00:00Z, a Wednesday.
    "now": .timestamp(1_795_600_800),
]

/// Compiles and evaluates `source` with `variables`.
func run(
    _ source: String,
    _ values: [String: Value] = variables,
    limits: Limits = .standard
) throws(ExprError) -> Result<Bool, EvalError> {
    try Expression.compile(source, declarations: declarations, limits: limits).evaluate(values)
}

/// The value of `source`, which must compile and evaluate.
func holds(_ source: String, _ values: [String: Value] = variables) throws -> Bool {
    try run(source, values).get()
}

/// The compile error of `source`, or nil when it compiles.
func compileError(_ source: String, limits: Limits = .standard) -> ExprError? {
    do {
        _ = try Expression.compile(source, declarations: declarations, limits: limits)
        return nil
    } catch {
        return error
    }
}

/// The evaluation error of `source`, which must compile, or nil when it evaluates.
func evalError(_ source: String, _ values: [String: Value] = variables, limits: Limits = .standard) throws -> String? {
    switch try run(source, values, limits: limits) {
    case .success: return nil
    case .failure(let error): return error.message
    }
}

@Test func smoke() throws {
    #expect(try holds(#"request.reason.matches("^INC-[0-9]+") && request.duration <= duration("1h")"#))
    #expect(try holds(#""sre" in request.groups && time.hour >= 18"#))
    #expect(try holds("has(context.on_call) && context.on_call == true"))
    #expect(try holds(#"request.commands.all(c, c.startsWith("/usr/bin/systemctl "))"#))
    #expect(try holds(#"request.host.startsWith("db-") || request.fields["ticket"] != """#))
}
