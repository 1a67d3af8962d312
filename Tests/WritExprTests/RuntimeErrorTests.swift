import Testing

@testable import WritExpr

/// Every way an evaluation can fail: each returns `.failure` with a message, none traps.
@Suite("Run-time errors")
struct RuntimeErrorTests {
    static let cases: [(source: String, message: String)] = [
        ("context.missing == 1", "context has no 'missing': test for it first with has(context.missing)"),
        (#"request.fields["nope"] == """#, #"request.fields has no key "nope": test with "nope" in request.fields"#),
        (#"context["nested"]["x"] == 1"#, #"context["nested"] has no key "x": test with "x" in context["nested"]"#),
        ("context.level == \"3\"", "cannot compare an int with a string"),
        ("context.teams == [\"sre\", \"x\"]", "cannot compare an int with a string"),
        (
            "context.name > 1",
            "cannot compare a string with an int using >: both must be ints, strings, durations or timestamps"
        ),
        (
            "context.on_call < context.on_call",
            "cannot compare a bool with a bool using <: both must be ints, strings, durations or timestamps"
        ),
        ("request.groups[5] == \"\"", "index 5 is out of range: request.groups has 2 elements"),
        ("request.groups[-1] == \"\"", "index -1 is out of range: request.groups has 2 elements"),
        ("context.teams[\"a\"] == 1", "a list index must be an int, not a string"),
        ("context.nested[1] == 1", "a map key must be a string, not an int"),
        ("context[\"level\"][0] == 1", "context[\"level\"] is an int, which cannot be indexed"),
        ("context.level.x == 1", "cannot read '.x' of context.level: it is an int, not a map"),
        ("context.nothing.x == 1", "cannot read '.x' of context.nothing: it is a null, not a map"),
        ("has(context.level.x)", "has(context.level.x) needs a map, but context.level is an int"),
        ("9223372036854775807 + 1 > 0", "int overflow in +"),
        ("-9223372036854775808 - 1 < 0", "int overflow in -"),
        ("9223372036854775807 * 2 > 0", "int overflow in *"),
        ("-(-9223372036854775808) > 0", "int overflow in -"),
        ("-9223372036854775808 / -1 > 0", "int overflow in /"),
        ("-9223372036854775808 % -1 == 0", "int overflow in %"),
        ("1 / (time.hour - 19) == 0", "division by zero"),
        ("1 % (time.hour - 19) == 0", "modulus by zero"),
        ("now + duration(\"3650000d\") > now", "the timestamp is outside the years 0001 to 9999"),
        ("now - duration(\"3650000d\") < now", "the timestamp is outside the years 0001 to 9999"),
        ("context.level + context.name == 1", "cannot apply + to an int and a string"),
        ("context.level - context.name == 1", "cannot apply - to an int and a string"),
        ("context.name * 2 == 1", "cannot apply * to a string and an int: ints only"),
        ("!context.level", "! needs a bool, not an int"),
        ("-context.name == 1", "- needs an int, not a string"),
        ("1 in context.level", "'in' needs a list or map on its right, not an int"),
        ("context.level in context.nested", "'in' a map needs a string key, not an int"),
        ("{context.name: 1, \"alice\": 2} == {}", "the key \"alice\" appears twice in a map"),
        ("{context.level: 1} == {}", "map keys must be strings, not an int"),
        (
            "duration(context.name) > duration(\"1h\")",
            "\"alice\" is not a duration: write a whole number and a unit (d, h, m, s), e.g. \"90s\", \"30m\", \"1h30m\", \"2d\""
        ),
        ("duration(context.level) > duration(\"1h\")", "duration() needs a string, not an int"),
        ("timestamp(context.level) > now", "timestamp() needs a string, not an int"),
        ("int(context.name) == 1", "int(\"alice\"): not a whole number"),
        (
            "now.getHours(context.name) == 1",
            "named time zones like \"alice\" are not supported: use \"UTC\" or a fixed offset like \"+02:00\" "
                + "(daylight saving time is not applied)"
        ),
        ("context.level.getHours() == 1", "getHours() needs a timestamp, not an int"),
        ("context.level", "the condition gave an int, not true or false"),
    ]

    @Test(arguments: cases.indices) func failure(_ index: Int) throws {
        let (source, message) = Self.cases[index]
        #expect(try evalError(source) == message, "\(source)")
    }

    @Test func missingVariable() throws {
        #expect(try evalError("request.user == \"\"", [:]) == "no value was given for the variable 'request'")
        #expect(try evalError("time.hour > 1 || request.user == \"\"", ["time": .map(["hour": .int(0)])]) != nil)
    }

    @Test func valuesOfTheWrongTypeFromTheCaller() throws {
        let values: [String: Value] = [
            "request": .map(["duration": .int(5), "user": .null]),
            "now": .timestamp(.max),
            "context": .map([
                "long": .duration(.max), "old": .timestamp(.min), "late": .timestamp(Time.maxTimestamp),
            ]),
        ]
        #expect(
            try evalError(#"request.duration <= duration("1h")"#, values)
                == "cannot compare an int with a duration using <=: both must be ints, strings, durations or timestamps"
        )
        #expect(
            try evalError(#"request.user.startsWith("a")"#, values)
                == "startsWith() needs strings, not a null and a string"
        )
        #expect(
            try evalError(#"request.host == "x""#, values)
                == "request has no 'host': test for it first with has(request.host)"
        )
        #expect(try evalError("now.getHours() == 1", values) == "the timestamp is outside the years 0001 to 9999")
        #expect(try evalError("string(now) == \"\"", values) == "the timestamp is outside the years 0001 to 9999")
        #expect(
            try evalError("now + duration(\"1s\") > now", values) == "the timestamp is outside the years 0001 to 9999"
        )
        #expect(try evalError("context.long + duration(\"1s\") > duration(\"1s\")", values) == "duration overflow in +")
        #expect(try evalError("now - context.old > duration(\"1s\")", values) == "duration overflow in -")
        #expect(
            try evalError("context.late + duration(\"1s\") > now", values)
                == "the timestamp is outside the years 0001 to 9999"
        )
    }
}
