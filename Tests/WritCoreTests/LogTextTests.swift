import Testing
import WritCore

@Suite("LogText.escape")
struct LogTextTests {
    @Test(
        "ordinary text, including Unicode, passes unchanged",
        arguments: [
            "alice", "Grant for INC-1234: restart nginx", "héllo 日本 🙂", "tab-free \u{A0}nbsp",
        ]
    )
    func unchanged(_ text: String) {
        #expect(LogText.escape(text) == text)
    }

    @Test(
        "control and formatting characters are escaped",
        arguments: [
            ("\n", "\\n"),
            ("\r", "\\r"),
            ("\t", "\\t"),
            ("\\", "\\\\"),
            ("\u{0}", "\\u{0}"),
            ("\u{1B}", "\\u{1b}"),
            ("\u{1F}", "\\u{1f}"),
            ("\u{7F}", "\\u{7f}"),
            ("\u{80}", "\\u{80}"),
            ("\u{85}", "\\u{85}"),
            ("\u{9B}", "\\u{9b}"),
            ("\u{9F}", "\\u{9f}"),
            ("\u{2028}", "\\u{2028}"),
            ("\u{2029}", "\\u{2029}"),
            ("\u{202A}", "\\u{202a}"),
            ("\u{202B}", "\\u{202b}"),
            ("\u{202C}", "\\u{202c}"),
            ("\u{202D}", "\\u{202d}"),
            ("\u{202E}", "\\u{202e}"),
            ("\u{2066}", "\\u{2066}"),
            ("\u{2067}", "\\u{2067}"),
            ("\u{2068}", "\\u{2068}"),
            ("\u{2069}", "\\u{2069}"),
        ]
    )
    func escapes(text: String, expected: String) {
        #expect(LogText.escape(text) == expected)
        #expect(LogText.escape("a" + text + "b") == "a" + expected + "b")
    }

    @Test("a forged log line stays on one line")
    func forgedLine() {
        let escaped = LogText.escape("alice\nJan  1 00:00:00 host sudo: root : accepted\r\u{1B}[2K\u{85}")
        #expect(!escaped.contains("\n"))
        #expect(!escaped.contains("\r"))
        #expect(!escaped.unicodeScalars.contains { $0.value < 0x20 || (0x7F..<0xA0).contains($0.value) })
        #expect(escaped.hasPrefix("alice\\nJan"))
    }

    @Test("escaping is unambiguous: an escaped backslash differs from an escaped control character")
    func unambiguous() {
        #expect(LogText.escape("\\n") == "\\\\n")
        #expect(LogText.escape("\\n") != LogText.escape("\n"))
        #expect(LogText.escape("\\u{1b}") != LogText.escape("\u{1B}"))
    }

    @Test(
        "text longer than the limit is cut and marked with an ellipsis",
        arguments: [
            ("abcdef", 3, "abc…"),
            ("abc", 3, "abc"),
            ("ab", 3, "ab"),
            ("", 0, ""),
            ("a", 0, "…"),
            ("ééé", 3, "ééé"),
            ("éééé", 3, "ééé…"),
            ("\n\n\n", 2, "\\n\\n…"),
        ]
    )
    func limit(text: String, limit: Int, expected: String) {
        #expect(LogText.escape(text, limit: limit) == expected)
    }

    @Test("the default limit is 1024 characters")
    func defaultLimit() {
        #expect(LogText.escape(String(repeating: "x", count: 1024)) == String(repeating: "x", count: 1024))
        #expect(LogText.escape(String(repeating: "x", count: 5000)) == String(repeating: "x", count: 1024) + "…")
    }
}
