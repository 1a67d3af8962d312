import Testing
import WritExpr

/// Every compile error: the source, where the error is, and the whole message.
@Suite("Compile errors")
struct CompileErrorTests {
    static let cases: [(source: String, offset: Int, message: String)] = [
        (
            "1.5 > 0",
            0,
            "numbers with a fraction or exponent are not supported: conditions use whole numbers (int)"
        ),
        (
            "0x1F == 31",
            0,
            "hexadecimal numbers are not supported: write the decimal value"
        ),
        (
            "007 == 7",
            0,
            "numbers must not start with 0: write the number without leading zeros"
        ),
        (
            "1u == 1",
            0,
            "unsigned numbers (1u) are not supported: write the number without 'u'"
        ),
        (
            "1e3 == 1",
            0,
            "numbers with a fraction or exponent are not supported: conditions use whole numbers (int)"
        ),
        (
            "99999999999999999999 > 0",
            0,
            "the number is out of the int range (-9223372036854775808 to 9223372036854775807)"
        ),
        (
            "9223372036854775808 > 0",
            0,
            "the number is out of the int range (-9223372036854775808 to 9223372036854775807)"
        ),
        (
            #""abc"#,
            0,
            #"this string is not closed: end it with " on the same line"#
        ),
        (
            "\"ab\ncd\" == \"\"",
            0,
            #"this string is not closed: end it with " on the same line"#
        ),
        (
            #""\q" == """#,
            1,
            #"unknown escape '\q': use \\ \" \' \n \t \r or \uXXXX (in a regular expression, double the backslash: "\\d")"#
        ),
        (
            #""\u12" == """#,
            1,
            #"\u needs exactly four hex digits, e.g. \u00e9"#
        ),
        (
            #""\ud800" == """#,
            1,
            #"\uD800 is a surrogate, not a character: write the character itself"#
        ),
        (
            #"r"abc" == """#,
            0,
            #"raw strings (r"…") are not supported: write an ordinary string and double each backslash"#
        ),
        (
            #"b"abc" == """#,
            0,
            #"byte strings (b"…") are not supported: write an ordinary string"#
        ),
        (
            "\"\"\"abc\"\"\" == \"\"",
            0,
            #"triple-quoted strings are not supported: write one string with \n for line breaks"#
        ),
        (
            #"request.user = "x""#,
            13,
            "'=' is not an operator: write == to compare"
        ),
        (
            "true & false",
            5,
            "'&' is not an operator: write && for 'and'"
        ),
        (
            "true | false",
            5,
            "'|' is not an operator: write || for 'or'"
        ),
        (
            "#",
            0,
            "unexpected character '#'"
        ),
        (
            "",
            0,
            #"the condition is empty: write an expression that is true or false, e.g. request.duration <= duration("1h")"#
        ),
        (
            "   ",
            0,
            #"the condition is empty: write an expression that is true or false, e.g. request.duration <= duration("1h")"#
        ),
        (
            "(true",
            5,
            "expected ')' to close the '(' at character 1, found the end of the condition"
        ),
        (
            "true)",
            4,
            "unexpected ')' after a complete expression: join conditions with && or ||"
        ),
        (
            "[1, 2",
            5,
            "expected ',' or ']' to close the '[' at character 1, found the end of the condition"
        ),
        (
            #"{"a": 1"#,
            7,
            "expected ',' or '}' to close the '{' at character 1, found the end of the condition"
        ),
        (
            #"{"a" 1}"#,
            5,
            "expected ':' between a map key and its value, found '1'"
        ),
        (
            "request.",
            8,
            "expected a field or method name after '.', found the end of the condition"
        ),
        (
            "true &&",
            7,
            "the condition ends too early: a value is missing at the end"
        ),
        (
            "true ? 1",
            8,
            "expected ':' and the value when false after the '?' at character 6, found the end of the condition"
        ),
        (
            "in [1]",
            0,
            #"'in' needs a value on its left, e.g. "sre" in request.groups"#
        ),
        (
            "if true",
            0,
            "'if' is a reserved word: conditions are single expressions; use a ? b : c to choose"
        ),
        (
            ".request",
            0,
            "a leading '.' is not supported: write the name without it"
        ),
        (
            "true true",
            5,
            "unexpected 'true' after a complete expression: join conditions with && or ||"
        ),
        (
            #"requst.user == """#,
            0,
            "unknown variable 'requst': did you mean 'request'? (known variables: context, now, request, time)"
        ),
        (
            "foo == 1",
            0,
            "unknown variable 'foo': the known variables are context, now, request, time"
        ),
        (
            #"request.resaon == """#,
            8,
            "request has no field 'resaon': did you mean 'reason'? (known fields: commands, duration, fields, groups, host, reason, user)"
        ),
        (
            #"request.user.name == """#,
            13,
            "request.user is a string, which has no fields: '.name' needs a map or object"
        ),
        (
            #"request["user"] == """#,
            8,
            "request is an object: read its fields with '.', e.g. request.name"
        ),
        (
            #"request.user[0] == """#,
            13,
            "request.user is a string, which cannot be indexed: [ ] needs a list or map"
        ),
        (
            #"request.groups["a"] == """#,
            15,
            "a list index must be an int, but this is a string"
        ),
        (
            #"request.fields[1] == """#,
            15,
            "a map key must be a string, but this is an int"
        ),
        (
            "sizee(request.user) > 0",
            0,
            "unknown function 'sizee': did you mean 'size'? (known functions: duration, has, int, matches, size, string, timestamp)"
        ),
        (
            "lenght(request.user) > 0",
            0,
            "unknown function 'lenght': the known functions are duration, has, int, matches, size, string, timestamp"
        ),
        (
            #"request.user.startswith("a")"#,
            13,
            "unknown method 'startswith': did you mean 'startsWith'? (known methods: all, contains, endsWith, exists, exists_one, filter, getDate, getDayOfWeek, getFullYear, getHours, getMinutes, getMonth, …)"
        ),
        (
            #"startsWith(request.user, "a")"#,
            0,
            "startsWith is a method, not a function: write s.startsWith(string) -> bool"
        ),
        (
            "request.user.int() == 1",
            13,
            "int is a function, not a method: write int(x), x a string, int, duration or timestamp -> int"
        ),
        (
            "size() == 0",
            0,
            "size() takes 1 argument, not 0: size(x) or x.size(), x a string, list or map -> int"
        ),
        (
            "request.user.startsWith()",
            13,
            "startsWith() takes 1 argument, not 0: s.startsWith(string) -> bool"
        ),
        (
            #"duration("1h", "2h") > request.duration"#,
            0,
            #"duration() takes 1 argument, not 2: duration("1h30m") -> duration"#
        ),
        (
            "request.user.startsWith(1)",
            24,
            "startsWith() needs a string, but 1 is an int: s.startsWith(string) -> bool"
        ),
        (
            #"request.duration.startsWith("a")"#,
            17,
            "startsWith() needs a string before the '.', but request.duration is a duration: s.startsWith(string) -> bool"
        ),
        (
            "size(1) == 1",
            5,
            "size() needs a string, list or map, but 1 is an int: size(x) or x.size(), x a string, list or map -> int"
        ),
        (
            "matches(request.user, request.reason)",
            22,
            #"the pattern of matches() must be a string literal, e.g. matches("^INC-[0-9]+"): patterns are compiled when the policy loads"#
        ),
        (
            #"request.user.matches("(")"#,
            22,
            #"in the pattern: this group is not closed: add a ')' (or write \( for a literal parenthesis)"#
        ),
        (
            #"request.user.matches("\\d(")"#,
            25,
            #"in the pattern: this group is not closed: add a ')' (or write \( for a literal parenthesis)"#
        ),
        (
            #"duration("1.5h") > request.duration"#,
            9,
            #""1.5h" has a fraction: write whole units instead, e.g. "1h30m" for 1.5h"#
        ),
        (
            #"timestamp("2026-13-01T00:00:00Z") < now"#,
            10,
            #""2026-13-01T00:00:00Z" is not a valid date: check the month and day"#
        ),
        (
            #"now.getHours("Europe/Berlin") > 1"#,
            13,
            #"named time zones like "Europe/Berlin" are not supported: use "UTC" or a fixed offset like "+02:00" (daylight saving time is not applied)"#
        ),
        (
            "now.getHours(1) > 1",
            13,
            #"getHours() needs a time zone string, but 1 is an int: t.getHours() or t.getHours("+02:00") -> int"#
        ),
        (
            "request.user.getHours() > 1",
            13,
            #"getHours() needs a timestamp before the '.', but request.user is a string: t.getHours() or t.getHours("+02:00") -> int"#
        ),
        (
            "int(true) == 1",
            4,
            "int() needs a string, int, duration or timestamp, but true is a bool: int(x), x a string, int, duration or timestamp -> int"
        ),
        (
            #"string([1]) == """#,
            7,
            "string() needs an int, string, bool, duration or timestamp, but the value is a list(int): string(x), x an int, string, bool, duration or timestamp -> string"
        ),
        (
            "request.duration > 3600",
            17,
            #"cannot compare duration with int using >: write the number as a duration, e.g. duration("1h"), or convert with int(d) (seconds)"#
        ),
        (
            "request.user == 1",
            13,
            "cannot compare string with int using ==: convert with int(s) or string(n) so both sides have the same type"
        ),
        (
            #"request.user + 1 == """#,
            13,
            "cannot apply + to string and int: convert with int(s) or string(n) so both sides have the same type"
        ),
        (
            "1 in request.groups",
            2,
            "cannot use 'in' with int and list(string): 'in' needs a list or map on its right, with elements of the left side's type"
        ),
        (
            #""a" in request.user"#,
            4,
            "cannot use 'in' with string and string: 'in' needs a list or map on its right, with elements of the left side's type"
        ),
        (
            "request.user * 2 == 4",
            13,
            "cannot apply * to string and int: * works on ints only"
        ),
        (
            "!request.user",
            0,
            "! needs a bool, but request.user is a string: compare it first, e.g. x == 0"
        ),
        (
            "-request.user == 1",
            0,
            "- needs an int, but request.user is a string"
        ),
        (
            "request.user && true",
            0,
            #"&& needs true or false on both sides, but request.user is a string: compare it, e.g. x != """#
        ),
        (
            "request.user ? true : false",
            0,
            "the condition before '?' must be true or false, but request.user is a string"
        ),
        (
            #"true ? 1 : "a""#,
            11,
            "both branches of ?: must have the same type, but they are int and string"
        ),
        (
            "request.user",
            0,
            #"the condition must be true or false, but it is a string: compare it, e.g. size(x) > 0 or x == "…""#
        ),
        (
            "has(request)",
            4,
            "has() takes one field selection, e.g. has(context.on_call): has(map.key) or has(object.field) -> bool"
        ),
        (
            "has(request.resaon)",
            12,
            "request has no field 'resaon': did you mean 'reason'? (known fields: commands, duration, fields, groups, host, reason, user)"
        ),
        (
            "has(request.user.x)",
            17,
            "has() needs a map or object before the '.', but request.user is a string"
        ),
        (
            "request.groups.exists(1, true)",
            22,
            "exists() takes a variable name and an expression: list.exists(x, predicate) -> bool"
        ),
        (
            "request.groups.all(g, g)",
            22,
            "the predicate of all() must be true or false, but it is a string"
        ),
        (
            "request.user.exists(c, true)",
            13,
            "exists() needs a list or map before the '.', but request.user is a string: list.exists(x, predicate) -> bool"
        ),
        (
            #"{"a": 1, "a": 2} == {}"#,
            9,
            #"the key "a" appears twice in this map: keep one"#
        ),
        (
            "{1: 2} == {}",
            1,
            "map keys must be strings, but this key is an int"
        ),
        (
            "request.groups.map(g, g, g) == []",
            19,
            "map() takes a variable name and an expression: list.map(x, expression) -> list"
        ),
        (
            "request.user < request.duration",
            13,
            #"cannot compare string with duration using <: convert the string with duration("1h")"#
        ),
        (
            "null == request.user",
            5,
            "cannot compare null with string using ==: only values of type dyn (e.g. in context) can be compared with null"
        ),
        (
            "now - 1 > now",
            4,
            "cannot apply - to timestamp and int: - works on ints, durations, and timestamps (minus a duration or a timestamp)"
        ),
        (
            "time.hour + now > now",
            10,
            "cannot apply + to int and timestamp: + adds ints and durations, joins strings and lists, and adds a duration to a timestamp"
        ),
        (
            #"duration("") > request.duration"#,
            9,
            #"an empty string is not a duration: write a whole number and a unit (d, h, m, s), e.g. "90s", "30m", "1h30m", "2d""#
        ),
        (
            #"duration("-1h") > request.duration"#,
            9,
            #"durations cannot be negative ("-1h"): subtract a positive duration instead"#
        ),
        (
            #"duration("90") > request.duration"#,
            9,
            #""90" has no unit after 90: add d, h, m or s, e.g. "90m""#
        ),
        (
            #"duration("1w") > request.duration"#,
            9,
            #""1w" has an unknown unit: the units are d, h, m and s, e.g. "1h30m""#
        ),
        (
            #"duration("500ms") > request.duration"#,
            9,
            #""500ms": milliseconds are not supported; the units are d, h, m and s"#
        ),
        (
            #"timestamp("2026-11-25") < now"#,
            10,
            #""2026-11-25" is not an RFC 3339 timestamp: write e.g. "2026-11-25T10:00:00Z" or "2026-11-25T10:00:00+02:00""#
        ),
        (
            #"timestamp("2023-02-29T00:00:00Z") < now"#,
            10,
            #""2023-02-29T00:00:00Z" is not a valid date: check the month and day"#
        ),
        (
            #"timestamp("2026-11-25T24:00:00Z") < now"#,
            10,
            #""2026-11-25T24:00:00Z" is not a valid time of day: hours 00-23, minutes and seconds 00-59"#
        ),
        (
            #"now.getHours("+2") > 1"#,
            13,
            #""+2" is not a time zone: use "UTC" or a fixed offset like "+02:00" or "-05:30""#
        ),
        (
            "x.y",
            0,
            "unknown variable 'x': the known variables are context, now, request, time"
        ),
        (
            "request.groups.exists(g, g.size())",
            25,
            "the predicate of exists() must be true or false, but it is an int"
        ),
        (
            "len(request.user) > 0",
            0,
            "unknown function 'len': write size(x) or x.size(), x a string, list or map -> int"
        ),
        (
            "request.user.length() > 0",
            13,
            "unknown method 'length': write size(x) or x.size(), x a string, list or map -> int"
        ),
        (
            #"lower(request.user) == """#,
            0,
            "unknown function 'lower': write s.lowerAscii() -> string"
        ),
        (
            "request.groups.exists(g)",
            22,
            "exists() takes a variable name and an expression: list.exists(x, predicate) -> bool"
        ),
        (
            "has()",
            0,
            "has() takes one field selection, e.g. has(context.on_call): has(map.key) or has(object.field) -> bool"
        ),
        (
            "has(request.user, request.host)",
            4,
            "has() takes one field selection, e.g. has(context.on_call): has(map.key) or has(object.field) -> bool"
        ),
        (
            "request.groups.all(1 + 1, true)",
            19,
            "all() takes a variable name and an expression: list.all(x, predicate) -> bool"
        ),
        (
            #"now.getHours("UTC", "UTC") > 1"#,
            4,
            #"getHours() takes 0 or 1 arguments, not 2: t.getHours() or t.getHours("+02:00") -> int"#
        ),
        (
            #"request.fields.ticket.size() > 0 && request.user.matches("\\p{L}")"#,
            58,
            #"in the pattern: Unicode classes (\p{…}) are not supported: use a class such as [a-z] or \w"#
        ),
        (
            #"[1, 2][0] == 1 && "abc"[0] == "a""#,
            24,
            #""abc" is a string, which cannot be indexed: [ ] needs a list or map"#
        ),
        (
            "request.groups + request.user == []",
            15,
            "cannot apply + to list(string) and string: + adds ints and durations, joins strings and lists, and adds a duration to a timestamp"
        ),
        (
            "context.a ? 1 : 2",
            0,
            #"the condition must be true or false, but it is an int: compare it, e.g. size(x) > 0 or x == "…""#
        ),
        (
            #"request.user.matches("a{1001}")"#,
            23,
            "in the pattern: a repeat count must be at most 1000: write a smaller {n,m}"
        ),
        (
            #"request.user.matches("é(")"#,
            23,
            #"in the pattern: this group is not closed: add a ')' (or write \( for a literal parenthesis)"#
        ),
        (
            "request.user.matches('(?=x)')",
            22,
            "in the pattern: lookahead ((?= and (?!) is not supported (matching is linear-time): rewrite the pattern without it"
        ),
        (
            #"request.user.matches("x", "y")"#,
            13,
            #"matches() takes 1 argument, not 2: s.matches("pattern") or matches(s, "pattern") -> bool"#
        ),
        (
            #"matches("x")"#,
            0,
            #"matches() takes 2 arguments, not 1: s.matches("pattern") or matches(s, "pattern") -> bool"#
        ),
    ]

    @Test(arguments: cases.indices) func error(_ index: Int) {
        let (source, offset, message) = Self.cases[index]
        let error = compileError(source)
        #expect(error?.message == message, "\(source)")
        #expect(error?.offset == offset, "\(source)")
    }
}

@Suite("Compile errors, more")
struct MoreCompileErrorTests {
    @Test func lexerCorners() {
        let cases: [(String, Int, String)] = [
            (".5 > 0", 0, "numbers with a fraction are not supported: conditions use whole numbers (int)"),
            ("1x == 1", 1, "unexpected 'x' after a number: put an operator or a space between them"),
            (#""ab\"#, 3, #"the string ends in a lone backslash: write \\ for a backslash"#),
            ("1 + )", 4, "expected a value (a name, number, string, '(', '[' or '{'), found ')'"),
            ("request.user == 'x' €", 20, "unexpected character 'U+20AC'"),
        ]
        for (source, offset, message) in cases {
            let error = compileError(source)
            #expect(error?.message == message, "\(source)")
            #expect(error?.offset == offset, "\(source)")
        }
    }

    /// Offsets count Unicode scalars across lines, so the policy can map them to line and column.
    @Test func offsetsCountCharactersAcrossLines() {
        let error = compileError("\"héllo wörld\" != \"\"\n  && request.resaon == \"\"")
        #expect(error?.offset == 33)
        #expect(error?.description.hasPrefix("at character 34: request has no field 'resaon'") == true)
    }
}
