import Testing
import WritCore

@Suite("Glob.matches")
struct GlobTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var pattern: String
        var text: String
        var expected: Bool
        var testDescription: String { "\"\(pattern)\" vs \"\(text)\" -> \(expected)" }
        init(_ pattern: String, _ text: String, _ expected: Bool) {
            self.pattern = pattern
            self.text = text
            self.expected = expected
        }
    }

    @Test(
        "literal patterns match only the whole text",
        arguments: [
            Case("web1", "web1", true),
            Case("web1", "web2", false),
            Case("web", "web1", false),
            Case("eb1", "web1", false),
            Case("web1", "web", false),
            Case("", "", true),
            Case("", "a", false),
            Case("a.b", "axb", false),
            Case("[ab]", "a", false),
            Case("[ab]", "[ab]", true),
        ]
    )
    func literal(_ c: Case) {
        #expect(Glob.matches(c.pattern, c.text) == c.expected)
    }

    @Test(
        "* matches any run of characters, including none",
        arguments: [
            Case("*", "", true),
            Case("*", "anything.at.all", true),
            Case("web*", "web", true),
            Case("web*", "web1.example.com", true),
            Case("*.example.com", "web1.example.com", true),
            Case("*.example.com", "example.com", false),
            Case("*.example.com", "web1.example.org", false),
            Case("w*1", "web1", true),
            Case("w*1", "web12", false),
            Case("a*b*c", "axxbyyc", true),
            Case("a*b*c", "axxbyy", false),
            Case("a**b", "ab", true),
            Case("*ab", "aab", true),
            Case("*aab", "aaab", true),
            Case("a*a", "a", false),
            Case("*a*", "bbb", false),
        ]
    )
    func star(_ c: Case) {
        #expect(Glob.matches(c.pattern, c.text) == c.expected)
    }

    @Test(
        "? matches exactly one character",
        arguments: [
            Case("web?", "web1", true),
            Case("web?", "web", false),
            Case("web?", "web12", false),
            Case("??", "ab", true),
            Case("?", "", false),
            Case("*?", "", false),
            Case("*?", "a", true),
            Case("?*?", "ab", true),
            Case("?*?", "a", false),
        ]
    )
    func questionMark(_ c: Case) {
        #expect(Glob.matches(c.pattern, c.text) == c.expected)
    }

    @Test(
        "matching is ASCII case-insensitive by default",
        arguments: [
            Case("WEB1", "web1", true),
            Case("web1", "WEB1", true),
            Case("Web*.Example.COM", "wEB1.example.com", true),
            Case("É", "é", false),  // only ASCII letters are folded
        ]
    )
    func caseInsensitiveByDefault(_ c: Case) {
        #expect(Glob.matches(c.pattern, c.text) == c.expected)
    }

    @Test(
        "caseInsensitive: false compares bytes exactly",
        arguments: [
            Case("root", "root", true),
            Case("Root", "root", false),
            Case("root", "ROOT", false),
            Case("app-*", "app-web", true),
            Case("APP-*", "app-web", false),
        ]
    )
    func caseSensitive(_ c: Case) {
        #expect(Glob.matches(c.pattern, c.text, caseInsensitive: false) == c.expected)
    }

    @Test("a pattern of 40 stars against a 10k-character text finishes with the right answer")
    func manyStarsNoCatastrophicBacktracking() {
        let text = String(repeating: "a", count: 10_000)
        let failing = String(repeating: "*a", count: 40) + "*b"
        let succeeding = String(repeating: "*a", count: 40) + "*"
        let stars = String(repeating: "*", count: 40)
        #expect(!Glob.matches(failing, text))
        #expect(Glob.matches(succeeding, text))
        #expect(Glob.matches(stars, text))
        #expect(!Glob.matches(stars + "b", text))
    }
}

@Suite("HostIdentity")
struct HostIdentityTests {
    @Test("a qualified node name also answers to its short name")
    func shortNameFromFQDN() {
        let host = HostIdentity(nodename: "web1.example.com")
        #expect(host.names == ["web1.example.com", "web1"])
        #expect(host.shortName == "web1")
    }

    @Test("an unqualified node name is its own short name")
    func unqualified() {
        let host = HostIdentity(nodename: "web1")
        #expect(host.names == ["web1"])
        #expect(host.shortName == "web1")
    }

    @Test("a leading dot does not produce an empty short name")
    func leadingDot() {
        let host = HostIdentity(nodename: ".hidden")
        #expect(host.names == [".hidden"])
        #expect(host.shortName == ".hidden")
    }

    @Test(
        "grant host patterns match either name",
        arguments: [
            ("web1", true),
            ("WEB1", true),
            ("web1.example.com", true),
            ("*.example.com", true),
            ("web?", true),
            ("web*", true),
            ("*", true),
            ("web2", false),
            ("web", false),
            ("example.com", false),
            ("web1.example.org", false),
            ("*.example.org", false),
        ]
    )
    func matches(pattern: String, expected: Bool) {
        #expect(HostIdentity(nodename: "web1.example.com").matches(pattern) == expected)
    }

    @Test("an unqualified host does not match a qualified pattern")
    func unqualifiedHostAgainstFQDNPattern() {
        let host = HostIdentity(nodename: "web1")
        #expect(!host.matches("web1.example.com"))
        #expect(!host.matches("*.example.com"))
        #expect(host.matches("web1"))
    }
}
