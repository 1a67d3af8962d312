import Testing

@testable import WritExpr

@Suite("LinearRegex")
struct RegexTests {
    /// (pattern, text, contains a match), answers worked out by hand.
    static let table: [(String, String, Bool)] = [
        ("abc", "xabcx", true),
        ("abc", "abx", false),
        ("", "anything", true),
        ("", "", true),
        ("^abc", "abcd", true),
        ("^abc", "xabc", false),
        ("abc$", "xabc", true),
        ("abc$", "abcx", false),
        ("abc$", "abc\n", false),
        ("^$", "", true),
        ("^$", "a", false),
        ("$a", "a", false),
        ("a^", "a", false),
        ("a.c", "abc", true),
        ("a.c", "a\nc", false),
        ("a.c", "aéc", true),
        ("^.$", "é", true),
        ("[a-c]+", "xxbxx", true),
        ("^[a-c]+$", "abcd", false),
        ("[^a-c]", "abc", false),
        ("[^a-c]", "abcd", true),
        ("[^a]", "\n", true),
        ("\\d+", "abc123", true),
        ("^\\d+$", "12a", false),
        ("\\D", "123", false),
        ("\\w+@\\w+", "me@host", true),
        ("\\W", "abc_1", false),
        ("\\s", "a b", true),
        ("\\S", " \t\n", false),
        ("[\\d.]+$", "v1.2.3", true),
        ("a|b", "b", true),
        ("a|b", "c", false),
        ("^(a|b)$", "ab", false),
        ("^(ab|cd)+$", "abcdab", true),
        ("^(ab|cd)+$", "abcda", false),
        ("^(?:ab)*$", "", true),
        ("^(a|)$", "", true),
        ("colou?r", "color", true),
        ("colou?r", "colour", true),
        ("^colou?r$", "colouur", false),
        ("^a{3}$", "aaa", true),
        ("^a{3}$", "aa", false),
        ("^a{2,}$", "aaaaa", true),
        ("^a{2,}$", "a", false),
        ("^a{2,3}$", "aaaa", false),
        ("^a{2,3}$", "aaa", true),
        ("^a{0,2}b", "b", true),
        ("^a{0}b$", "b", true),
        ("^(ab){2}$", "abab", true),
        ("a{,2}", "a{,2}", true),
        ("x{", "x{", true),
        ("x}", "x}", true),
        ("\\.", "a.b", true),
        ("\\.", "ab", false),
        ("a\\-b", "a-b", true),
        ("\\(\\)", "f()", true),
        ("[\\[\\]]", "]", true),
        ("[]a]", "]", true),
        ("[a-]", "-", true),
        ("[-a]", "b", false),
        ("\\bfoo\\b", "a foo b", true),
        ("\\bfoo\\b", "afoob", false),
        ("\\Bfoo", "afoo", true),
        ("\\Bfoo", "foo", false),
        ("\\Afoo\\z", "foo", true),
        ("\\Afoo\\z", "foo\n", false),
        ("(?i)hello", "HeLLo", true),
        ("(?i)^[a-z]+$", "ABC", true),
        ("(?i)[^a]", "A", false),
        ("(?i)é", "É", true),
        ("hello", "HELLO", false),
        ("(?i:a)b", "Ab", true),
        ("(?i:a)b", "AB", false),
        ("(a(?i)b)c", "aBc", true),
        ("(a(?i)b)c", "aBC", false),
        ("^INC-[0-9]+", "INC-1234 disk full", true),
        ("^INC-[0-9]+", "inc-12", false),
        ("a*?b", "aaab", true),
        ("a+?$", "aaa", true),
        ("é+", "ééé", true),
        ("[α-ω]+", "λόγος", true),
        ("^[α-ω]$", "Λ", false),
        ("\\x41", "A", true),
        ("\\x{e9}", "é", true),
        ("\\t", "a\tb", true),
        ("\\n", "a\nb", true),
        ("[[:digit:]]+", "x9", true),
        ("[[:^alpha:]]", "abc", false),
        ("[[:upper:][:digit:]]", "aB", true),
        ("(a|ab)(c|bcd)(d*)", "abcd", true),
        ("^(a*)*$", "aaa", true),
        ("^(a*)*b", "aaa", false),
        ("^()*$", "", true),
        ("a\\z", "ba", true),
        ("(?P<year>\\d{4})-(?<month>\\d{2})", "on 2026-11", true),
        ("^/usr/bin/systemctl (restart|status) [a-z-]+$", "/usr/bin/systemctl restart postgresql", true),
        ("^/usr/bin/systemctl (restart|status) [a-z-]+$", "/usr/bin/systemctl stop postgresql", false),
    ]

    @Test func table() throws {
        #expect(Self.table.count >= 60)
        for (pattern, text, expected) in Self.table {
            let regex = try LinearRegex(pattern)
            #expect(regex.firstMatch(in: text) == expected, "\(pattern) on \(text.debugDescription)")
        }
    }

    /// Patterns that take exponential time in a backtracking engine, on 10,000-character texts.
    @Test func pathologicalPatternsStayLinear() throws {
        let a = String(repeating: "a", count: 10_000)
        let x = String(repeating: "x", count: 10_000)
        #expect(try LinearRegex("(a+)+$").firstMatch(in: a + "!") == false)
        #expect(try LinearRegex("^(a+)+$").firstMatch(in: a + "!") == false)
        #expect(try LinearRegex("(a+)+$").firstMatch(in: a) == true)
        #expect(try LinearRegex("(a|a)*b").firstMatch(in: a) == false)
        #expect(try LinearRegex("(a*)*b").firstMatch(in: a) == false)
        #expect(try LinearRegex("(x+x+)+y").firstMatch(in: x) == false)
        #expect(try LinearRegex("(x+x+)+y").firstMatch(in: x + "y") == true)
        #expect(try LinearRegex("^(\\w+\\s?)*$").firstMatch(in: String(repeating: "word ", count: 2000) + "!") == false)
        #expect(try LinearRegex("(.*a){20}").firstMatch(in: a) == true)
        #expect(try LinearRegex("(.*a){20}b").firstMatch(in: a) == false)
        #expect(try LinearRegex("(a|aa)+$").firstMatch(in: a + "b") == false)
    }

    @Test func work() throws {
        let regex = try LinearRegex("(a+)+$")
        let text = String(repeating: "a", count: 1000) + "!"
        let (matched, work) = regex.program.run(text)
        #expect(matched == false)
        // Linear: a handful of states per character.
        #expect(work < 1001 * (regex.size + 1))
        #expect(regex.program.run(text, workLimit: 100).matched == nil)
    }

    @Test func anchoredPatternsStopEarly() throws {
        let regex = try LinearRegex("^abc")
        let (matched, work) = regex.program.run("x" + String(repeating: "a", count: 10_000))
        #expect(matched == false)
        #expect(work < 10)
    }

    static func error(_ pattern: String) -> ExprError? {
        do {
            _ = try LinearRegex(pattern)
            return nil
        } catch {
            return error
        }
    }

    /// (pattern, start of the message, offset in the pattern)
    static let errors: [(String, String, Int)] = [
        ("(abc", "this group is not closed", 0),
        ("a(b(c)", "this group is not closed", 1),
        ("abc)", "unmatched ')'", 3),
        ("*a", "'*' has nothing to repeat", 0),
        ("a|+", "'+' has nothing to repeat", 2),
        ("(?)", "only the flag (?i)", 0),
        ("a**", "a repeat cannot follow a repeat directly", 2),
        ("a{2}{3}", "a repeat cannot follow a repeat directly", 4),
        ("a{1001}", "a repeat count must be at most 1000", 1),
        ("a{1,1001}", "a repeat count must be at most 1000", 1),
        ("a{3,2}", "in {n,m}, n must not be larger than m: write {2,3}", 1),
        ("^*", "'*' must follow a character, class or group, not an anchor", 1),
        ("\\b+", "'+' must follow a character, class or group, not an anchor", 2),
        ("[abc", "this class is not closed", 0),
        ("x[^", "this class is not closed", 1),
        ("[z-a]", "the range z-a is backwards", 1),
        ("[a-\\d]", "a range must end in a single character", 1),
        ("[\\b]", "\\b is an anchor and cannot be used inside [ ]", 1),
        ("[[:foo:]]", "unknown class [:foo:]", 1),
        ("(a)\\1", "backreferences are not supported", 3),
        ("(?P<n>a)(?P=n)", "backreferences are not supported", 8),
        ("\\k<n>", "backreferences are not supported", 0),
        ("(?=a)", "lookahead", 0),
        ("x(?!a)", "lookahead", 1),
        ("(?<=a)b", "lookbehind", 0),
        ("(?<!a)b", "lookbehind", 0),
        ("(?>a)", "only the flag (?i)", 0),
        ("(?m)^a", "only the flag (?i)", 0),
        ("(?s).", "only the flag (?i)", 0),
        ("(?i", "only the flag (?i)", 0),
        ("(?<a-b>x)", "a group name must be", 0),
        ("\\p{L}", "Unicode classes", 0),
        ("\\q", "unknown escape \\q", 0),
        ("ab\\é", "unknown escape \\U+00E9", 2),
        ("a\\", "the pattern ends in a lone backslash", 1),
        ("[a\\", "the pattern ends in a lone backslash", 2),
        ("\\0", "octal escapes are not supported", 0),
        ("\\x4", "\\x needs two hex digits", 0),
        ("\\x{}", "\\x{…} needs hex digits", 0),
        ("\\x{110000}", "\\x{…} is not a Unicode scalar value", 0),
        ("(a{1000}){1000}", "the pattern compiles to more than 10000 instructions", 0),
        ("((a{100}){100}){100}", "the pattern compiles to more than 10000 instructions", 0),
        (String(repeating: "(", count: 40) + String(repeating: ")", count: 40), "groups are nested more than 32", 32),
        (String(repeating: "a", count: 1025), "the pattern is longer than 1024 bytes", 1024),
        (String(repeating: "é", count: 513), "the pattern is longer than 1024 bytes", 512),
    ]

    @Test func errors() {
        for (pattern, message, offset) in Self.errors {
            let error = Self.error(pattern)
            #expect(error?.message.hasPrefix(message) == true, "\(pattern): \(error?.message ?? "compiled")")
            #expect(error?.offset == offset, "\(pattern): \(error?.message ?? "compiled")")
        }
    }

    @Test func errorMessagesInFull() {
        #expect(
            Self.error("(a)\\1")?.message == "backreferences are not supported (matching is linear-time)"
        )
        #expect(
            Self.error("(?=a)")?.message
                == "lookahead ((?= and (?!) is not supported (matching is linear-time): rewrite the pattern without it"
        )
        #expect(
            Self.error("a{1001}")?.message == "a repeat count must be at most 1000: write a smaller {n,m}"
        )
        #expect(
            Self.error("(a{1000}){1000}")?.message
                == "the pattern compiles to more than 10000 instructions: use fewer or smaller {n,m} repeats"
        )
    }

    @Test func instructionLimitCountsExpandedRepeats() throws {
        // a{1000} is 1,000 instructions (+1 for the match): fits; nine of them do too, ten do not.
        _ = try LinearRegex("a{1000}")
        _ = try LinearRegex(String(repeating: "a{1000}", count: 9))
        #expect(Self.error(String(repeating: "a{1000}", count: 10)) != nil)
        #expect(try LinearRegex("^(ab){1000}$").firstMatch(in: String(repeating: "ab", count: 1000)) == true)
        #expect(try LinearRegex("^(ab){1000}$").firstMatch(in: String(repeating: "ab", count: 999)) == false)
    }
}
