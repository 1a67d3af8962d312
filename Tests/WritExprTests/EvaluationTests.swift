import Testing
import WritExpr

@Suite("Evaluation")
struct EvaluationTests {
    @Test func briefExamples() throws {
        #expect(try holds(#"request.reason.matches("^INC-[0-9]+") && request.duration <= duration("1h")"#))
        #expect(try holds(#""sre" in request.groups && time.hour >= 18"#))
        #expect(try holds("has(context.on_call) && context.on_call == true"))
        #expect(try holds(#"request.commands.all(c, c.startsWith("/usr/bin/systemctl "))"#))
        #expect(try holds(#"request.host.startsWith("db-") || request.fields["ticket"] != """#))
        #expect(try !holds(#"request.reason.matches("^INC-[0-9]+") && request.duration <= duration("15m")"#))
        #expect(try !holds(#""web" in request.groups"#))
    }

    @Test func literals() throws {
        #expect(try holds("true"))
        #expect(try !holds("false"))
        #expect(try holds("null == null"))
        #expect(try holds("-9223372036854775808 < 9223372036854775807"))
        #expect(try holds("- 5 == -5"))
        #expect(try holds("--5 == 5"))
        #expect(try holds("-(5) == -5"))
        #expect(try holds(#"'single' == "single""#))
        #expect(try holds(#""a\"b" == 'a"b' && 'a\'b' == "a'b""#))
        #expect(try holds(#""\\" + "\n\t\r" == "\u005C\u000A\u0009\u000D""#))
        #expect(try holds(#""\u00e9" == "é" && size("\u00e9") == 1"#))
        #expect(try holds("[1, 2, 3] == [1, 2, 3] && [1, 2,] == [1, 2] && [] == []"))
        #expect(try holds(#"{"a": 1, "b": [true]} == {"b": [true], "a": 1} && {} == {}"#))
        #expect(try holds("true // a comment\n && !false // another"))
    }

    @Test func precedence() throws {
        #expect(try holds("1 + 2 * 3 == 7"))
        #expect(try holds("(1 + 2) * 3 == 9"))
        #expect(try holds("10 - 4 - 3 == 3"))
        #expect(try holds("true || false && false"))
        #expect(try !holds("(true || false) && false"))
        #expect(try holds("!false && true"))
        #expect(try holds("1 < 2 == true"))
        #expect(try holds("true ? false : true ? false : true") == false)
        #expect(try holds("false ? false : true"))
        #expect(try holds("1 == 1 ? 2 > 1 : false"))
        #expect(try holds("2 in [1, 2] && !(3 in [1, 2])"))
        #expect(try holds("-2 * 3 == -6 && 7 % 3 == 1 && -7 % 3 == -1 && -7 / 2 == -3"))
    }

    @Test func comparisons() throws {
        #expect(try holds("1 < 2 && 2 <= 2 && 3 > 2 && 3 >= 3 && 1 != 2"))
        // Strings compare by bytes: uppercase before lowercase, UTF-8 after ASCII.
        #expect(try holds(#""B" < "a" && "a" < "b" && "ab" > "a" && "é" > "z" && "" < "a""#))
        #expect(try holds(#"duration("1h") > duration("59m") && duration("60m") == duration("1h")"#))
        #expect(try holds(#"now > timestamp("2026-01-01T00:00:00Z") && now == timestamp("2026-11-25T12:00:00+02:00")"#))
        #expect(try holds("request.groups == [\"sre\", \"dba\"] && request.groups != [\"dba\", \"sre\"]"))
        #expect(try holds(#"request.fields == {"ticket": "T-9", "empty": ""}"#))
        #expect(try holds(#"context.nested == {"a": {"b": 1}} && context.nested != {"a": {"b": 2}}"#))
        #expect(try holds("context.nothing == null && context.level != null && null != context.level"))
        #expect(try holds("[1, [2, 3]] == [1, [2, 3]] && [1] != [1, 2]"))
    }

    @Test func arithmetic() throws {
        #expect(try holds("2 + 3 == 5 && 2 - 3 == -1 && 4 * 5 == 20 && 7 / 2 == 3 && 7 % 2 == 1"))
        #expect(try holds(#""ab" + "cd" == "abcd""#))
        #expect(try holds("[1] + [2, 3] == [1, 2, 3] && size(request.groups + [\"x\"]) == 3"))
        #expect(try holds(#"now + duration("1h") == timestamp("2026-11-25T11:00:00Z")"#))
        #expect(try holds(#"duration("1h") + now == timestamp("2026-11-25T11:00:00Z")"#))
        #expect(try holds(#"now - duration("1d") == timestamp("2026-11-24T10:00:00Z")"#))
        #expect(try holds(#"now - timestamp("2026-11-25T09:00:00Z") == duration("1h")"#))
        #expect(try holds(#"timestamp("2026-11-25T09:00:00Z") - now == duration("0s") - duration("1h")"#))
        #expect(try holds(#"duration("1h") + duration("30m") == duration("1h30m")"#))
        #expect(try holds(#"duration("1h") - duration("30m") == duration("30m")"#))
        #expect(try holds("9223372036854775807 - 1 + 1 == 9223372036854775807"))
    }

    @Test func membership() throws {
        #expect(try holds(#""sre" in request.groups"#))
        #expect(try holds(#""ticket" in request.fields && !("nope" in request.fields)"#))
        #expect(try holds(#""on_call" in context"#))
        // Elements of other types are skipped, not errors.
        #expect(try holds(#"7 in context.teams && "sre" in context.teams && !(true in context.teams)"#))
        #expect(try holds("[1, 2] in [[1, 2], [3]]"))
        #expect(try !holds("1 in []"))
    }

    @Test func members() throws {
        #expect(try holds(#"request.fields["ticket"] == "T-9" && request.groups[1] == "dba""#))
        #expect(try holds(#"context["level"] == 3 && context.nested.a.b == 1 && context["nested"]["a"]["b"] == 1"#))
        #expect(try holds("has(request.user) && has(context.on_call) && !has(context.off_call)"))
        #expect(try holds("has(request.fields.ticket) && !has(request.fields.other)"))
        #expect(try holds("has(context.nested.a.b) && !has(context.nested.a.c)"))
        #expect(try holds(#"{"x": {"y": 1}}.x.y == 1"#))
    }

    @Test func shortCircuitAbsorbsErrorsInEitherOrder() throws {
        #expect(try run("false && context.missing").get() == false)
        #expect(try run("context.missing && false").get() == false)
        #expect(try run("true || context.missing").get() == true)
        #expect(try run("context.missing || true").get() == true)
        #expect(try run("context.missing || context.other || true").get() == true)
        #expect(try run("context.missing && context.other && false").get() == false)
        #expect(try run("context.level && false").get() == false)
        #expect(try run("false && context.level").get() == false)
        #expect(try run("context.level || true").get() == true)
        #expect(
            try evalError("true && context.missing")
                == "context has no 'missing': test for it first with has(context.missing)"
        )
        #expect(
            try evalError("context.missing && true")
                == "context has no 'missing': test for it first with has(context.missing)"
        )
        #expect(try evalError("false || context.missing") != nil)
        #expect(try evalError("context.missing || false") != nil)
        // The first error is reported.
        #expect(try evalError("context.a && context.b") == "context has no 'a': test for it first with has(context.a)")
        #expect(try evalError("context.level && true") == "&& needs bool operands, not an int")
        #expect(try evalError("context.level || false") == "|| needs bool operands, not an int")
    }

    @Test func conditional() throws {
        #expect(try holds(#"(time.hour >= 18 ? "night" : "day") == "night""#))
        #expect(try holds("(context.on_call ? 1 : context.missing) == 1"))
        #expect(try evalError("context.level ? true : false") == "the condition before '?' must be a bool, not an int")
    }

    @Test func macros() throws {
        #expect(try holds(#"request.groups.exists(g, g == "dba")"#))
        #expect(try !holds(#"request.groups.exists(g, g == "web")"#))
        #expect(try holds(#"request.groups.all(g, size(g) == 3)"#))
        #expect(try !holds(#"request.groups.all(g, g == "sre")"#))
        #expect(try holds(#"request.groups.exists_one(g, g.startsWith("s"))"#))
        #expect(try !holds(#"request.groups.exists_one(g, size(g) == 3)"#))
        #expect(try holds(#"request.groups.filter(g, g != "sre") == ["dba"]"#))
        #expect(try holds(#"request.groups.map(g, g + "!") == ["sre!", "dba!"]"#))
        #expect(try holds("[1, 2, 3].map(x, x * x) == [1, 4, 9] && [1, 2, 3].filter(x, x > 1).size() == 2"))
        #expect(try holds("[].all(x, false) && ![].exists(x, true) && ![].exists_one(x, true)"))
        // Over a map: its keys, in byte order.
        #expect(try holds(#"request.fields.exists(k, k == "ticket") && request.fields.all(k, k in request.fields)"#))
        #expect(try holds(#"request.fields.map(k, k) == ["empty", "ticket"]"#))
        #expect(try holds(#"request.fields.filter(k, request.fields[k] != "") == ["ticket"]"#))
        // Nested, and shadowing.
        #expect(try holds("[1, 2].all(x, [3, 4].exists(y, y > x))"))
        #expect(try holds("[1, 2].map(x, [10].map(x, x + 1)) == [[11], [11]]"))
        #expect(try holds("[[1], [2, 3]].exists(x, x.exists(x, x == 3))"))
        // A variable named like a top-level one hides it inside the macro only.
        #expect(try holds(#"["a"].all(request, request == "a") && request.user == "alice""#))
        // Dyn ranges.
        #expect(try holds(#"context.teams.exists(t, t == "sre")"#))
        #expect(try holds("context.nested.exists(k, k == \"a\")"))
    }

    @Test func macroErrorsAreAbsorbedLikeLogicalOperators() throws {
        // exists: one true decides even when another element fails; all: one false does.
        #expect(try holds(#"context.teams.exists(t, t.startsWith("s"))"#))
        #expect(try !holds(#"context.teams.all(t, t.startsWith("x"))"#))
        #expect(
            try evalError(#"context.teams.all(t, t.startsWith("s"))"#)
                == "startsWith() needs strings, not an int and a string"
        )
        #expect(
            try evalError(#"context.teams.exists(t, t.startsWith("x"))"#)
                == "startsWith() needs strings, not an int and a string"
        )
        #expect(try evalError(#"context.teams.exists_one(t, t.startsWith("s"))"#) != nil)
        #expect(try evalError(#"context.teams.filter(t, t.startsWith("s")) == []"#) != nil)
        #expect(try evalError("context.teams.exists(t, t)") == "the predicate of exists() gave a string")
        #expect(try evalError("context.teams.filter(t, t) == []") == "the predicate of filter() gave a string")
        #expect(try evalError("context.level.exists(t, true)") == "exists() needs a list or map, not an int")
    }

    @Test func references() throws {
        let expression = try Expression.compile(
            #"has(context.on_call) && request.reason.matches("x") && request.fields["t"] == "" && "#
                + #"request.commands.all(c, c.size() > 0) && now > now && time.hour == 1 && request.reason != """#,
            declarations: declarations
        )
        #expect(
            expression.references == [
                "context.on_call", "now", "request.commands", "request.fields", "request.reason", "time.hour",
            ]
        )
        #expect(try Expression.compile("[1].all(request, request > 0)", declarations: declarations).references == [])
        #expect(
            try Expression.compile("context.nested.a.b == 1", declarations: declarations).references == [
                "context.nested.a.b"
            ]
        )
        #expect(try Expression.compile("true", declarations: declarations).source == "true")
    }

    @Test func dynResult() throws {
        #expect(try holds("context.on_call"))
        #expect(try evalError("context.level") == "the condition gave an int, not true or false")
    }
}
