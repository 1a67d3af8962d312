import Testing

@testable import WritExpr

@Suite("Limits")
struct LimitsTests {
    static let tooDeep = "the condition is nested more than 32 levels deep: split it into simpler conditions"
    static let tooManySteps = "the condition took too many steps (limit 100000)"

    @Test func sourceLength() {
        let long = String(repeating: "true || ", count: 600) + "true"
        let error = compileError(long)
        #expect(error?.message == "the condition is longer than 4096 bytes: split it or move data to a list")
        #expect(error?.offset == 4096)
        // Counted in bytes, reported in characters.
        let wide = "\"" + String(repeating: "é", count: 2100) + "\" == \"\""
        #expect(compileError(wide)?.offset == 2048)
        #expect(compileError(String(repeating: "true||", count: 682) + "true") == nil)
    }

    /// Each of these would overflow the stack of a parser that recursed without counting. The
    /// source limit is lifted so that the depth check is the one that answers.
    @Test func deepNestingIsAnErrorNotACrash() {
        var unbounded = Limits.standard
        unbounded.maxSourceBytes = .max
        let cases: [(String, Int)] = [
            (String(repeating: "(", count: 100_000) + "true" + String(repeating: ")", count: 100_000), 32),
            (String(repeating: "!", count: 100_000) + "true", 31),
            (String(repeating: "-", count: 100_000) + "1 == 1", 31),
            (String(repeating: "[", count: 100_000), 32),
            (String(repeating: "{\"a\": ", count: 100_000), 187),
            (String(repeating: "size(", count: 100_000), 160),
            (String(repeating: "true ? true : ", count: 100_000) + "true", 448),
            ("context" + String(repeating: ".a", count: 100_000) + " == 1", 70),
            ("context" + String(repeating: "[\"a\"]", count: 40) + " == 1", 162),
            (String(repeating: "1 + ", count: 40) + "1 == 41", 126),
            ("[1]" + String(repeating: ".map(x, x)", count: 40) + " == [1]", 304),
        ]
        for (source, offset) in cases {
            let error = compileError(source, limits: unbounded)
            #expect(error?.message == Self.tooDeep, "\(source.prefix(20))")
            #expect(error?.offset == offset, "\(source.prefix(20))")
            if source.utf8.count > 4096 {
                #expect(compileError(source)?.offset == 4096)
            } else {
                #expect(compileError(source)?.message == Self.tooDeep)
            }
        }
    }

    @Test func nestingUpToTheLimitCompiles() throws {
        #expect(try holds(String(repeating: "(", count: 31) + "true" + String(repeating: ")", count: 31)))
        #expect(try holds(String(repeating: "!", count: 30) + "true"))
        #expect(try holds(String(repeating: "1 + ", count: 30) + "1 == 31"))
        // && and || chains stay flat: 400 operands are one level.
        #expect(try holds(String(repeating: "false || ", count: 400) + "true"))
        #expect(try holds(String(repeating: "true && ", count: 400) + "true"))
        var shallow = Limits.standard
        shallow.maxDepth = 4
        #expect(compileError("(((1))) == 1", limits: shallow) == nil)
        #expect(
            compileError("((((1)))) == 1", limits: shallow)?.message.hasPrefix("the condition is nested more than 4")
                == true
        )
    }

    @Test func literalSizes() throws {
        let list = (0..<256).map(String.init).joined(separator: ",")
        #expect(try holds("size([\(list)]) == 256"))
        let error = compileError("size([\(list),256]) == 257")
        #expect(error?.message == "this list has more than 256 elements: shorten it")
        #expect(error?.offset == 5)
        let map = (0..<257).map { "\"\($0)\":0" }.joined(separator: ",")
        let mapError = compileError("{\(map)} == {}")
        #expect(mapError?.message == "this map has more than 256 entries: shorten it")
        #expect(mapError?.offset == 0)
        let arguments = compileError("size(" + String(repeating: "1,", count: 256) + "1) == 1")
        #expect(arguments?.message == "size() has more than 256 arguments")
        #expect(try holds("size(\"" + String(repeating: "a", count: 1024) + "\") == 1024"))
        let string = compileError("request.user == \"" + String(repeating: "a", count: 1025) + "\"")
        #expect(string?.message == "this string is longer than 1024 bytes: shorten it")
        #expect(string?.offset == 16)
    }

    @Test func hugeIntLiterals() throws {
        let message = "the number is out of the int range (-9223372036854775808 to 9223372036854775807)"
        #expect(compileError("9223372036854775808 > 0")?.message == message)
        #expect(compileError("-9223372036854775809 < 0")?.offset == 1)
        #expect(compileError("1 + " + String(repeating: "9", count: 100) + " > 0")?.offset == 4)
        var unbounded = Limits.standard
        unbounded.maxSourceBytes = .max
        #expect(compileError("1 + " + String(repeating: "9", count: 100_000) + " > 0", limits: unbounded)?.offset == 4)
        #expect(compileError("-(9223372036854775808) < 0")?.offset == 2)
        #expect(try holds("-9223372036854775808 < 0 && 9223372036854775807 > 0"))
    }

    @Test func stepBudget() throws {
        let big = Value.list((0..<1000).map { .int($0) })
        let values: [String: Value] = ["context": .map(["big": big])]
        #expect(try evalError("context.big.map(x, context.big.map(y, x)) == []", values) == Self.tooManySteps)
        #expect(try evalError("context.big.all(x, context.big.all(y, true))", values) == Self.tooManySteps)
        #expect(try evalError("context.big.exists(x, context.big.exists(y, false))", values) == Self.tooManySteps)
        // Literals nest just the same.
        let hundred = "[" + (0..<100).map(String.init).joined(separator: ",") + "]"
        #expect(try evalError("\(hundred).map(x, \(hundred).map(y, \(hundred).map(z, 1))) == []") == Self.tooManySteps)
        // A spent budget is not absorbed by || or by exists().
        #expect(try evalError("context.big.map(x, context.big.map(y, x)) == [] || true", values) == Self.tooManySteps)
        #expect(
            try evalError("context.big.exists(x, context.big.map(y, x) == []) || true", values) == Self.tooManySteps
        )
        // Short-circuiting before the expensive part costs nothing.
        #expect(try run("true || context.big.map(x, context.big.map(y, x)) == []", values).get() == true)
        // Small nesting is fine, and each evaluation starts afresh.
        let expression = try Expression.compile(
            "[1,2,3].map(x, [1,2,3].map(y, x * y)) != []",
            declarations: declarations
        )
        #expect(try expression.evaluate(variables).get())
        #expect(try expression.evaluate(variables).get())
    }

    @Test func budgetCountsLongLists() throws {
        let values: [String: Value] = ["context": .map(["big": .list((0..<200_000).map { .int($0) })])]
        #expect(try evalError("context.big.all(x, true)", values) == Self.tooManySteps)
        #expect(try evalError("-1 in context.big", values) == Self.tooManySteps)
        #expect(try evalError("context.big == context.big", values) == Self.tooManySteps)
    }

    @Test func regexWorkIsCharged() throws {
        let long = String(repeating: "a", count: 100_000)
        let values: [String: Value] = ["context": .map(["long": .string(long)])]
        #expect(try evalError(#"context.long.matches("(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*z")"#, values) == Self.tooManySteps)
        var small = Limits.standard
        small.maxSteps = 1000
        #expect(
            try evalError(#"context.long.matches("(a|b)*c")"#, values, limits: small)
                == "the condition took too many steps (limit 1000)"
        )
        var unlimited = Limits.standard
        unlimited.maxSteps = .max
        #expect(try run(#"context.long.matches("b")"#, values, limits: unlimited).get() == false)
        // A typical reason costs little.
        #expect(try holds(#"context.long.matches("^a")"#, values))
    }

    @Test func builtValuesAreCapped() throws {
        let s = String(repeating: "a", count: 40_000)
        let values: [String: Value] = [
            "context": .map([
                "s": .string(s),
                "big": .list((0..<6000).map { .int($0) }),
                "twenty": .list((0..<20).map { .int($0) }),
            ])
        ]
        #expect(try evalError("context.s + context.s != \"\"", values) == "the string would be longer than 65536 bytes")
        #expect(try holds("size(context.s + \"b\") == 40001", values))
        #expect(
            try evalError("context.big + context.big != []", values) == "the list would have more than 10000 elements"
        )
        var five = Limits.standard
        five.maxListElements = 5
        #expect(
            try evalError("context.twenty.map(x, x) != []", values, limits: five)
                == "the list would have more than 5 elements"
        )
        #expect(
            try evalError("context.twenty.filter(x, true) != []", values, limits: five)
                == "the list would have more than 5 elements"
        )
    }

    @Test func deeplyNestedValuesFromTheCaller() throws {
        var deep = Value.int(1)
        for _ in 0..<100 { deep = .list([deep]) }
        let values: [String: Value] = ["context": .map(["deep": deep])]
        #expect(try evalError("context.deep == context.deep", values) == "the values are nested too deeply to compare")
        #expect(try holds("size(context.deep) == 1", values))
    }

    /// Random token soup: whatever it is, compiling and evaluating it returns.
    @Test func tokenSoupNeverCrashes() {
        let tokens = [
            "(", ")", "[", "]", "{", "}", ".", ",", ":", "?", "+", "-", "*", "/", "%", "!", "<", "<=", "==", "!=",
            "&&", "||", "in", "true", "null", "0", "1", "9223372036854775807", "\"a\"", "'b'", "\"\\u00e9\"",
            "request", "context", "now", "time", "x", "reason", "groups", "fields", "on_call", "hour", "size",
            "matches", "has", "exists", "all", "map", "filter", "duration", "timestamp", "int", "string",
            "getHours", "\"1h\"", "\"(a+)+$\"", "startsWith", "\"UTC\"",
        ]
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ bound: Int) -> Int {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((seed >> 33) % UInt64(bound))
        }
        var compiled = 0
        for _ in 0..<3000 {
            let count = 1 + next(12)
            let source = (0..<count).map { _ in tokens[next(tokens.count)] }.joined(separator: " ")
            if let expression = try? Expression.compile(source, declarations: declarations) {
                compiled += 1
                _ = expression.evaluate(variables)
                _ = expression.evaluate([:])
            }
        }
        #expect(compiled > 0)
    }
}
