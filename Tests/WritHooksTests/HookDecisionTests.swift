import FoundationEssentials
import Testing
import WritExpr

@testable import WritHooks

@Suite("Hook decisions and documents")
struct HookDecisionTests {
    func parse(_ text: String) -> Result<HookDecision, HookFailure> {
        HookDecision.parse(Array(text.utf8))
    }

    func garbage(_ text: String) -> String? {
        if case .failure(.garbage(let what)) = parse(text) { return what }
        return nil
    }

    @Test func validDecisions() {
        #expect(
            parse(#"{"decision": "approve", "reason": "on call", "duration": 600, "version": 1}"#)
                == .success(HookDecision(kind: .approve, reason: "on call", duration: 600))
        )
        #expect(
            parse(#"{"decision":"deny","reason":"  no ticket \n"}"#)
                == .success(HookDecision(kind: .deny, reason: "no ticket"))
        )
        #expect(
            parse(#" {"decision":"defer","add_approvers":["carol","dave","carol"],"extra":{"x":[1,2]}} "# + "\n")
                == .success(HookDecision(kind: .defer, reason: "", addApprovers: ["carol", "dave"]))
        )
        // null means "not given"; unknown keys are ignored.
        #expect(
            parse(#"{"decision":"defer","reason":null,"duration":null,"add_approvers":null,"note":"x"}"#)
                == .success(HookDecision(kind: .defer, reason: ""))
        )
        #expect(parse(#"{"decision":"approve","reason":"ok","duration":6e2}"#).map(\.duration) == .success(600))
    }

    @Test func garbageOutputs() throws {
        let cases: [(String, String)] = [
            ("", "no output"),
            ("   \n", "no output"),
            ("approve", "not JSON"),
            (#"{"decision": "approve", "reason": "x"} {"decision": "deny"}"#, "more than one JSON value"),
            (#"{"decision": "defer"}{"decision": "approve","reason":"x"}"#, "more than one JSON value"),
            (#"{"decision": "defer"} trailing"#, "more than one JSON value"),
            (#"{"decision": "maybe"}"#, #""decision" is "maybe""#),
            (#"{"reason": "no decision"}"#, "no \"decision\""),
            (#"{"decision": true}"#, "\"decision\" is true"),
            (#"{"decision": "approve", "reason": 5}"#, "\"reason\" is 5"),
            (#"{"decision": "approve", "reason": "x", "duration": "600"}"#, "\"duration\" is \"600\""),
            (#"{"decision": "approve", "reason": "x", "duration": 1.5}"#, "positive whole number"),
            (#"{"decision": "approve", "reason": "x", "duration": -5}"#, "positive whole number"),
            (#"{"decision": "deny", "reason": "x", "duration": 60}"#, "only allowed with \"approve\""),
            (#"{"decision": "defer", "add_approvers": "carol"}"#, "expected an array of user names"),
            (#"{"decision": "defer", "add_approvers": ["carol", 7]}"#, "holds 7"),
            (#"{"decision": "defer", "add_approvers": ["bad name"]}"#, "expected user names"),
            (#"{"decision": "approve", "reason": "x", "add_approvers": ["c"]}"#, "only allowed with \"defer\""),
            (#"{"decision": "approve"}"#, "needs a \"reason\""),
            (#"{"decision": "deny", "reason": "   "}"#, "needs a \"reason\""),
            (#"{"decision": "approve", "reason": "a\nb"}"#, "control characters"),
            (#"{"decision": "defer", "version": 2}"#, "speaks version 1"),
            (#"{"decision": "defer", "decision": "approve", "reason": "x"}"#, "duplicate key"),
            (#"["approve"]"#, "an array, expected a JSON object"),
            ("\u{FEFF}{\"decision\": \"defer\"}", "not JSON"),
            (#"{"decision": "defer""#, "not JSON"),
            (#"{"decision": "def\ud800"}"#, "lone surrogate"),
            (String(repeating: "[", count: 100) + String(repeating: "]", count: 100), "nested deeper"),
            (
                "{\"decision\": \"approve\", \"reason\": \"" + String(repeating: "x", count: 501) + "\"}",
                "501 characters"
            ),
        ]
        for (text, expected) in cases {
            let what = try #require(garbage(text), "accepted: \(text)")
            #expect(what.contains(expected), "\(text) -> \(what)")
            #expect(!what.contains("\n"))
        }
        var invalidUTF8 = Array(#"{"decision":"defer","reason":""#.utf8)
        invalidUTF8 += [0xFF, 0xFE] + Array("\"}".utf8)
        #expect(
            HookDecision.parse(invalidUTF8) == .failure(.garbage("not JSON: the string at byte 29 is not valid UTF-8"))
        )
        #expect(
            HookDecision.parse([UInt8](repeating: 0x20, count: 64 * 1024 + 1))
                == .failure(.outputTooLarge(limit: 65536))
        )
        #expect(
            parse("{\"decision\": \"approve\", \"reason\": \"" + String(repeating: "é", count: 500) + "\"}").map(\.kind)
                == .success(.approve)
        )
    }

    @Test func jsonValues() throws {
        let parsed = JSONValue.parse(Array(#"{"a": [1, 1.0, 1.5, -0, 1e400, "x\u00e9\ud83d\ude00", null, true]}"#.utf8))
        if case .failure(let error) = parsed { #expect(error.message.contains("out of range")) } else { Issue.record() }
        let ok = JSONValue.parse(
            Array(#"{"a": [1, 1.0, 1.5, -0, 9223372036854775808, "x\u00e9\ud83d\ude00", null, true]}"#.utf8)
        )
        #expect(
            ok
                == .success(
                    .object([
                        "a": [1, 1, .number(1.5), 0, .number(9_223_372_036_854_775_808), "xé😀", nil, true]
                    ])
                )
        )
        // Codable: integral numbers decode as .int, others as .number.
        let decoded = try JSONDecoder().decode(
            JSONValue.self,
            from: Data(#"{"n": 3, "f": 2.5, "t": [true, "s", null]}"#.utf8)
        )
        #expect(decoded == .object(["n": 3, "f": 2.5, "t": [true, "s", nil]]))
        let reencoded = try JSONDecoder().decode(JSONValue.self, from: try JSONEncoder().encode(decoded))
        #expect(reencoded == decoded)
    }

    @Test func inputDocument() throws {
        let input = sampleInput(context: ["on_call": true, "pagerduty": .object(["schedule": "ops", "level": 1])])
        let bytes = try HookRunner.encode(input).get()
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(
            text.hasPrefix(#"{"context":{"on_call":true,"pagerduty":{"level":1,"schedule":"ops"}},"decision":null,"#)
        )
        for fragment in [
            #""event":"on_request""#, #""created_at":1763999995"#, #""git_commit":null"#,
            #""commands":["/usr/bin/systemctl restart nginx"]"#, #""fields":{"ticket":"INC-1"}"#,
            #""time":{"iso":"2025-11-24T16:00:00Z","now":1764000000}"#, #""version":1}"#, #""runas":"root""#,
        ] {
            #expect(text.contains(fragment), "\(fragment) not in \(text)")
        }
        #expect(try JSONDecoder().decode(HookInput.self, from: Data(bytes)) == input)

        var decided = sampleInput(event: "on_approve", decision: HookInput.Decision(state: "approved", by: "bob"))
        decided.request.commands = nil
        let decidedText = String(decoding: try HookRunner.encode(decided).get(), as: UTF8.self)
        #expect(decidedText.contains(#""commands":null"#))
        #expect(
            decidedText.contains(
                #""decision":{"by":"bob","expires_at":null,"grant_id":null,"note":null,"state":"approved"}"#
            )
        )
        #expect(HookInput.Time(now: 0).iso == "1970-01-01T00:00:00Z")
        #expect(HookInput.Time(now: 1_798_761_599).iso == "2026-12-31T23:59:59Z")
    }

    @Test func failureTexts() {
        let failures: [HookFailure] = [
            .notRunnable("x"), .timedOut(milliseconds: 300), .exited(status: 1, stderr: ""),
            .exited(status: 2, stderr: "boom"), .signalled(signal: 9, stderr: ""), .outputTooLarge(limit: 65536),
            .garbage("not JSON"),
        ]
        for failure in failures {
            #expect(!failure.description.contains("\n"))
            #expect(failure.description.hasPrefix("hook "))
        }
        #expect(HookFailure.signalled(signal: 9, stderr: "").description.contains("SIGKILL"))
        let long = HookText.tail(Array(String(repeating: "a", count: 3000).utf8) + Array("\nlast line\n".utf8))
        #expect(long.utf8.count <= 1024)
        #expect(long.hasPrefix("…"))
        #expect(long.hasSuffix("a\\nlast line"))
        #expect(HookText.tail(Array("tab\there \u{1B}[31m\n".utf8)) == "tab\\there \\u{1b}[31m")
    }
}
