import Testing
import WritCore

@Suite("CommandPattern parsing")
struct CommandPatternParsingTests {
    struct Parsed: Sendable, CustomTestStringConvertible {
        var line: String
        var path: String
        var arguments: [String]?
        var testDescription: String { line }
        init(_ line: String, _ path: String, _ arguments: [String]?) {
            self.line = line
            self.path = path
            self.arguments = arguments
        }
    }

    @Test(
        "words, quotes and backslashes",
        arguments: [
            Parsed("/usr/bin/systemctl", "/usr/bin/systemctl", nil),
            Parsed("/usr/bin/systemctl restart nginx", "/usr/bin/systemctl", ["restart", "nginx"]),
            Parsed("  /usr/bin/systemctl \t restart\tnginx  ", "/usr/bin/systemctl", ["restart", "nginx"]),
            Parsed("/usr/bin/echo 'hello world'", "/usr/bin/echo", ["hello world"]),
            Parsed("/usr/bin/echo \"a b\" c", "/usr/bin/echo", ["a b", "c"]),
            Parsed("/usr/bin/echo a\\ b", "/usr/bin/echo", ["a b"]),
            Parsed("/usr/bin/echo \\\\", "/usr/bin/echo", ["\\"]),
            Parsed("/usr/bin/echo \"say \\\"hi\\\"\"", "/usr/bin/echo", ["say \"hi\""]),
            Parsed("/usr/bin/echo \"\\$HOME\"", "/usr/bin/echo", ["$HOME"]),
            Parsed("/usr/bin/echo 'a\\b'", "/usr/bin/echo", ["a\\b"]),
            Parsed("/usr/bin/echo \"it's\"", "/usr/bin/echo", ["it's"]),
            Parsed("/usr/bin/echo 'say \"hi\"'", "/usr/bin/echo", ["say \"hi\""]),
            Parsed("/usr/bin/echo ab'c d'e", "/usr/bin/echo", ["abc de"]),
            Parsed("'/opt/my tools/run' now", "/opt/my tools/run", ["now"]),
            Parsed("/usr/bin/echo héllo 日本", "/usr/bin/echo", ["héllo", "日本"]),
        ]
    )
    func parses(_ c: Parsed) throws {
        let pattern = try CommandPattern(parsing: c.line)
        #expect(pattern.path == c.path)
        #expect(pattern.arguments == c.arguments)
    }

    @Test(
        "a lone empty argument means: no arguments allowed",
        arguments: [
            "/usr/bin/uptime \"\"",
            "/usr/bin/uptime ''",
            "/usr/bin/uptime   \"\"   ",
        ]
    )
    func emptyQuotesMeanNoArguments(_ line: String) throws {
        let pattern = try CommandPattern(parsing: line)
        #expect(pattern.path == "/usr/bin/uptime")
        #expect(pattern.arguments == [])
    }

    @Test("empty arguments next to others stay literal empty arguments")
    func emptyArgumentAmongOthers() throws {
        #expect(try CommandPattern(parsing: "/usr/bin/echo \"\" x").arguments == ["", "x"])
        #expect(try CommandPattern(parsing: "/usr/bin/echo '' ''").arguments == ["", ""])
    }

    @Test("an empty line is refused", arguments: ["", "   ", "\t\n"])
    func empty(_ line: String) {
        #expect(throws: CommandPatternError.empty) { try CommandPattern(parsing: line) }
    }

    @Test(
        "a relative program path is refused",
        arguments: [
            ("ls -l", "ls"),
            ("usr/bin/ls", "usr/bin/ls"),
            ("./run.sh", "./run.sh"),
            ("~/bin/tool", "~/bin/tool"),
            ("'ls' /", "ls"),
        ]
    )
    func notAbsolute(line: String, word: String) {
        #expect(throws: CommandPatternError.notAbsolute(word)) { try CommandPattern(parsing: line) }
    }

    @Test(
        "unbalanced quotes and a trailing backslash are refused",
        arguments: [
            "/usr/bin/echo 'abc",
            "/usr/bin/echo \"abc",
            "/usr/bin/echo abc\\",
            "/usr/bin/echo \"abc\\\"",
            "/usr/bin/echo 'it\\'s'",
            "'/usr/bin/echo",
        ]
    )
    func unbalanced(_ line: String) {
        #expect(throws: CommandPatternError.unbalancedQuote) { try CommandPattern(parsing: line) }
    }

    @Test(
        "control characters inside words are refused",
        arguments: [
            "/usr/bin/echo \"a\tb\"",
            "/usr/bin/echo 'a\nb'",
            "/usr/bin/echo a\\\tb",
            "/usr/bin/echo a\u{1B}[31m",
            "/usr/bin/echo \u{7F}",
            "/usr/bin/echo a\u{0}b",
            "/usr/bin/echo a\rb",
            "/usr/bin/\u{01}x",
        ]
    )
    func controlCharacters(_ line: String) {
        #expect(throws: CommandPatternError.controlCharacter) { try CommandPattern(parsing: line) }
    }

    @Test("errors describe themselves on one line")
    func errorDescriptions() {
        let errors: [CommandPatternError] = [
            .empty, .notAbsolute("ls\nx"), .unbalancedQuote, .controlCharacter, .malformedEncoding,
        ]
        for error in errors {
            #expect(!error.description.isEmpty)
            #expect(!error.description.contains("\n"))
        }
        #expect(CommandPatternError.notAbsolute("ls").description.contains("/usr/bin/ls"))
    }
}

@Suite("CommandPattern matching")
struct CommandPatternMatchingTests {
    static func never(_: String, _: String) -> Bool { false }

    @Test(
        "a bare path allows any arguments",
        arguments: [
            [String](), ["restart", "nginx"], [""], ["--help", "a b"],
        ]
    )
    func anyArguments(_ argv: [String]) {
        let pattern = CommandPattern(path: "/usr/bin/systemctl", arguments: nil)
        #expect(pattern.matches(command: "/usr/bin/systemctl", arguments: argv[...], samePath: Self.never))
    }

    @Test(
        "exact arguments allow exactly those arguments",
        arguments: [
            (["restart", "nginx"], true),
            (["restart"], false),
            (["restart", "nginx", "--now"], false),
            (["nginx", "restart"], false),
            (["restart", "NGINX"], false),
            ([String](), false),
        ]
    )
    func exactArguments(argv: [String], expected: Bool) {
        let pattern = CommandPattern(path: "/usr/bin/systemctl", arguments: ["restart", "nginx"])
        #expect(pattern.matches(command: "/usr/bin/systemctl", arguments: argv[...], samePath: Self.never) == expected)
    }

    @Test(
        "no-arguments pattern allows only an empty argument list",
        arguments: [
            ([String](), true),
            ([""], false),
            (["-a"], false),
        ]
    )
    func noArguments(argv: [String], expected: Bool) throws {
        let pattern = try CommandPattern(parsing: "/usr/bin/uptime \"\"")
        #expect(pattern.matches(command: "/usr/bin/uptime", arguments: argv[...], samePath: Self.never) == expected)
    }

    @Test("arguments may be a slice that does not start at index 0")
    func sliceArguments() {
        let argv = ["systemctl", "restart", "nginx"]
        let pattern = CommandPattern(path: "/usr/bin/systemctl", arguments: ["restart", "nginx"])
        #expect(pattern.matches(command: "/usr/bin/systemctl", arguments: argv.dropFirst(), samePath: Self.never))
    }

    @Test(
        "another program does not match when samePath says no",
        arguments: [
            "/usr/bin/systemctl2", "/usr/bin/sys", "/usr/local/bin/systemctl", "/usr/bin/SYSTEMCTL",
        ]
    )
    func otherPath(_ command: String) {
        let pattern = CommandPattern(path: "/usr/bin/systemctl", arguments: nil)
        #expect(!pattern.matches(command: command, arguments: [], samePath: Self.never))
    }

    @Test("samePath is asked with (pattern path, command) and decides for different names")
    func samePathClosure() {
        let pattern = CommandPattern(path: "/usr/bin/ls", arguments: ["-l"])
        var asked: [(String, String)] = []
        let merged: (String, String) -> Bool = { a, b in
            asked.append((a, b))
            return a == "/usr/bin/ls" && b == "/bin/ls"
        }
        #expect(pattern.matches(command: "/bin/ls", arguments: ["-l"], samePath: merged))
        #expect(asked.count == 1)
        #expect(asked.first?.0 == "/usr/bin/ls")
        #expect(asked.first?.1 == "/bin/ls")
        // The same program still needs the right arguments.
        #expect(!pattern.matches(command: "/bin/ls", arguments: ["-la"], samePath: merged))
        #expect(!pattern.matches(command: "/bin/cat", arguments: ["-l"], samePath: merged))
    }

    @Test("an identical path matches without consulting samePath")
    func identicalPathSkipsSamePath() {
        let pattern = CommandPattern(path: "/usr/bin/ls", arguments: nil)
        var calls = 0
        #expect(
            pattern.matches(
                command: "/usr/bin/ls",
                arguments: [],
                samePath: { _, _ in
                    calls += 1
                    return false
                }
            )
        )
        #expect(calls == 0)
    }
}

@Suite("CommandPattern description")
struct CommandPatternDescriptionTests {
    @Test(
        "description is how the pattern is typed",
        arguments: [
            (CommandPattern(path: "/usr/bin/systemctl", arguments: nil), "/usr/bin/systemctl"),
            (
                CommandPattern(path: "/usr/bin/systemctl", arguments: ["restart", "nginx"]),
                "/usr/bin/systemctl restart nginx"
            ),
            (CommandPattern(path: "/usr/bin/uptime", arguments: []), "/usr/bin/uptime \"\""),
            (CommandPattern(path: "/usr/bin/echo", arguments: ["a b"]), "/usr/bin/echo 'a b'"),
            (CommandPattern(path: "/usr/bin/echo", arguments: ["it's"]), "/usr/bin/echo 'it'\\''s'"),
        ]
    )
    func text(pattern: CommandPattern, expected: String) {
        #expect(pattern.description == expected)
    }

    @Test(
        "parsing the description gives the pattern back",
        arguments: [
            CommandPattern(path: "/usr/bin/systemctl", arguments: nil),
            CommandPattern(path: "/usr/bin/systemctl", arguments: ["restart", "nginx"]),
            CommandPattern(path: "/usr/bin/uptime", arguments: []),
            CommandPattern(path: "/opt/my tools/run", arguments: ["a b", "it's", "say \"hi\"", "back\\slash"]),
            CommandPattern(path: "/usr/bin/echo", arguments: ["", "x", ""]),
            CommandPattern(path: "/usr/bin/echo", arguments: ["héllo", "日本", "'", "\""]),
        ]
    )
    func roundTrip(_ pattern: CommandPattern) throws {
        #expect(try CommandPattern(parsing: pattern.description) == pattern)
    }
}
