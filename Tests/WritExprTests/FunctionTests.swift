import Testing
import WritExpr

@Suite("Functions")
struct FunctionTests {
    @Test func size() throws {
        #expect(try holds(#"size("héllo") == 5 && "héllo".size() == 5 && size("") == 0"#))
        // Unicode scalars, not grapheme clusters: e + combining acute is two.
        #expect(try holds(#"size("e\u0301") == 2"#))
        #expect(try holds("size(request.groups) == 2 && request.groups.size() == 2 && size([]) == 0"))
        #expect(try holds("size(request.fields) == 2 && request.fields.size() == 2 && size({}) == 0"))
        #expect(try holds("size(context.teams) == 2 && context.name.size() == 5"))
        #expect(try evalError("size(context.level) == 1") == "size() needs a string, list or map, not an int")
    }

    @Test func matches() throws {
        #expect(try holds(#"request.reason.matches("^INC-\\d+ ")"#))
        #expect(try holds(#"matches(request.reason, "disk")"#))
        #expect(try !holds(#"matches(request.reason, "^disk")"#))
        #expect(try holds(#"context.name.matches("^ali")"#))
        #expect(try holds(#"request.groups.exists(g, g.matches("^(sre|ops)$"))"#))
        #expect(try evalError(#"context.level.matches("a")"#) == "matches() needs a string, not an int")
    }

    @Test func startsEndsContains() throws {
        #expect(try holds(#"request.host.startsWith("db-") && request.host.startsWith("") && !"db".startsWith("db-")"#))
        #expect(try holds(#"request.host.endsWith("-01") && request.host.endsWith("") && !"1".endsWith("01")"#))
        #expect(try holds(#"request.reason.contains("disk") && "".contains("") && !"abc".contains("abd")"#))
        // Needles that need the failure table.
        #expect(try holds(#""aaab".contains("aab") && "abababc".contains("ababc") && !"aabaab".contains("aaa")"#))
        #expect(try holds(#""naïve café".contains("é") && "naïve".startsWith("na\u00ef")"#))
        #expect(
            try evalError(#"context.level.startsWith("a")"#) == "startsWith() needs strings, not an int and a string"
        )
        #expect(
            try evalError(#"context.name.endsWith(context.level)"#)
                == "endsWith() needs strings, not a string and an int"
        )
        #expect(try evalError(#"context.level.contains("a")"#) == "contains() needs strings, not an int and a string")
    }

    @Test func asciiCase() throws {
        #expect(try holds(#""MiXeD-09".lowerAscii() == "mixed-09" && "MiXeD-09".upperAscii() == "MIXED-09""#))
        // Only ASCII letters change.
        #expect(try holds(#""ÀÉ Ab".lowerAscii() == "ÀÉ ab" && "àé aB".upperAscii() == "àé AB""#))
        #expect(try holds(#"context.name.upperAscii() == "ALICE""#))
        #expect(try evalError("context.level.lowerAscii() == \"\"") == "lowerAscii() needs a string, not an int")
    }

    @Test func durations() throws {
        #expect(try holds(#"duration("1h30m") == duration("90m") && duration("5400s") == duration("90m")"#))
        #expect(try holds(#"duration("2d") == duration("48h") && duration("0s") == duration("0m")"#))
        #expect(try holds(#"duration("1d2h3m4s") == duration("93784s") && duration("30m1h") == duration("90m")"#))
        #expect(try holds(#"request.duration == duration("30m") && request.duration < duration("1h")"#))
        // Folded at compile time when literal; parsed at run time otherwise.
        let values: [String: Value] = ["context": .map(["d": .string("45m"), "bad": .string("45")])]
        #expect(try holds(#"duration(context.d) == duration("45m")"#, values))
        #expect(
            try evalError(#"duration(context.bad) > duration("1h")"#, values)
                == #""45" has no unit after 45: add d, h, m or s, e.g. "45m""#
        )
    }

    @Test func timestamps() throws {
        #expect(try holds(#"timestamp("2026-11-25T10:00:00Z") == now"#))
        #expect(try holds(#"timestamp("2026-11-25t10:00:00z") == now"#))
        #expect(
            try holds(
                #"timestamp("2026-11-25T15:30:00+05:30") == now && timestamp("2026-11-25T05:00:00-05:00") == now"#
            )
        )
        #expect(try holds(#"timestamp("2026-11-25T10:00:00.999Z") == now"#))
        #expect(try holds(#"timestamp("1970-01-01T00:00:00Z") == timestamp("1970-01-01T01:00:00+01:00")"#))
        #expect(try holds(#"int(timestamp("1969-12-31T23:59:59Z")) == -1"#))
        #expect(try holds(#"int(timestamp("0001-01-01T00:00:00Z")) == -62135596800"#))
        #expect(try holds(#"int(timestamp("9999-12-31T23:59:59Z")) == 253402300799"#))
        #expect(try holds(#"timestamp("2024-02-29T00:00:00Z").getDate() == 29"#))
        let values: [String: Value] = ["context": .map(["t": .string("2026-11-25T10:00:00Z"), "bad": .string("x")])]
        #expect(try holds("timestamp(context.t) == timestamp(\"2026-11-25T10:00:00Z\")", values))
        #expect(
            try evalError("timestamp(context.bad) > timestamp(\"2026-11-25T10:00:00Z\")", values)
                == #""x" is not an RFC 3339 timestamp: write e.g. "2026-11-25T10:00:00Z" or "2026-11-25T10:00:00+02:00""#
        )
    }

    @Test func int() throws {
        #expect(try holds(#"int("42") == 42 && int("-42") == -42 && int("+7") == 7 && int(5) == 5"#))
        #expect(try holds(#"int(duration("1h")) == 3600 && int(now) == 1795600800"#))
        #expect(try holds(#"int("9223372036854775807") == 9223372036854775807"#))
        #expect(try holds(#"int("-9223372036854775808") == -9223372036854775808"#))
        #expect(try evalError(#"int("4x") == 4"#) == #"int("4x"): not a whole number"#)
        #expect(try evalError(#"int("") == 0"#) == #"int(""): not a whole number"#)
        #expect(try evalError(#"int("-") == 0"#) == #"int("-"): not a whole number"#)
        #expect(
            try evalError(#"int("9223372036854775808") == 0"#) == #"int("9223372036854775808"): out of the int range"#
        )
        #expect(
            try evalError("int(context.on_call) == 1") == "int() needs a string, int, duration or timestamp, not a bool"
        )
    }

    @Test func string() throws {
        #expect(try holds(#"string(42) == "42" && string(-1) == "-1" && string("s") == "s""#))
        #expect(try holds(#"string(true) == "true" && string(false) == "false""#))
        #expect(try holds(#"string(duration("1h30m")) == "5400s""#))
        #expect(try holds(#"string(now) == "2026-11-25T10:00:00Z""#))
        #expect(try holds(#"string(timestamp("0001-01-01T00:00:00Z")) == "0001-01-01T00:00:00Z""#))
        #expect(try holds(#"string(context.level) == "3""#))
        #expect(
            try evalError("string(context.teams) == \"\"")
                == "string() needs an int, string, bool, duration or timestamp, not a list"
        )
    }

    @Test func timeAccessors() throws {
        // now is Wednesday 2026-11-25T10:00:00Z.
        #expect(try holds("now.getHours() == 10 && now.getMinutes() == 0 && now.getDayOfWeek() == 3"))
        #expect(try holds("now.getDate() == 25 && now.getMonth() == 10 && now.getFullYear() == 2026"))
        #expect(try holds(#"now.getHours("UTC") == 10 && now.getHours("+02:00") == 12 && now.getHours("-05:30") == 4"#))
        #expect(try holds(#"now.getMinutes("-05:30") == 30 && now.getMinutes("+00:45") == 45"#))
        let newYear = #"timestamp("2026-12-31T23:30:00Z")"#
        #expect(try holds("\(newYear).getFullYear(\"+01:00\") == 2027 && \(newYear).getFullYear() == 2026"))
        #expect(try holds("\(newYear).getMonth(\"+01:00\") == 0 && \(newYear).getDate(\"+01:00\") == 1"))
        // 2027-01-01 is a Friday, 2026-12-31 a Thursday.
        #expect(try holds("\(newYear).getDayOfWeek(\"+01:00\") == 5 && \(newYear).getDayOfWeek() == 4"))
        #expect(try holds(#"timestamp("1969-12-31T23:59:59Z").getFullYear() == 1969"#))
        #expect(try holds(#"timestamp("1969-12-31T23:59:59Z").getDayOfWeek() == 3"#))
        #expect(try holds(#"timestamp("1969-12-31T23:59:59Z").getHours() == 23"#))
        #expect(try holds(#"timestamp("2000-03-01T00:00:00Z").getDayOfWeek() == 3"#))
        // The zone from a value, checked at run time.
        let values: [String: Value] = [
            "now": .timestamp(1_795_600_800),
            "context": .map(["tz": .string("+02:00"), "named": .string("Europe/Berlin"), "n": .int(1)]),
        ]
        #expect(try holds("now.getHours(context.tz) == 12", values))
        #expect(
            try evalError("now.getHours(context.named) == 12", values)
                == #"named time zones like "Europe/Berlin" are not supported: use "UTC" or a fixed offset like "+02:00" (daylight saving time is not applied)"#
        )
        #expect(
            try evalError("now.getHours(context.n) == 12", values)
                == "the time zone of getHours() must be a string, not an int"
        )
        #expect(try evalError("context.tz.getHours() == 12", values) == "getHours() needs a timestamp, not a string")
    }
}
