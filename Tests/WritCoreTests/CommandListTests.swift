import Testing
import WritCore

@Suite("CommandList")
struct CommandListTests {
    @Test("encodes each pattern as an argv array, with \"\" for no arguments")
    func encodeShape() {
        let patterns = [
            CommandPattern(path: "/usr/bin/systemctl", arguments: ["restart", "nginx"]),
            CommandPattern(path: "/usr/bin/journalctl", arguments: nil),
            CommandPattern(path: "/usr/bin/uptime", arguments: []),
        ]
        #expect(
            CommandList.encode(patterns)
                == #"[["/usr/bin/systemctl","restart","nginx"],["/usr/bin/journalctl"],["/usr/bin/uptime",""]]"#
        )
        #expect(CommandList.encode([]) == "[]")
    }

    @Test("escapes quotes, backslashes and control characters; keeps Unicode as is")
    func encodeEscapes() {
        let pattern = CommandPattern(
            path: "/usr/bin/echo",
            arguments: ["say \"hi\"", "a\\b", "t\tn\nr\r", "\u{1B}\u{7F}", "日本"]
        )
        #expect(
            CommandList.encode([pattern])
                == #"[["/usr/bin/echo","say \"hi\"","a\\b","t\tn\nr\r","\u001b\u007f","日本"]]"#
        )
    }

    @Test(
        "decode(encode(x)) == x",
        arguments: [
            [CommandPattern](),
            [CommandPattern(path: "/usr/bin/journalctl", arguments: nil)],
            [CommandPattern(path: "/usr/bin/uptime", arguments: [])],
            [
                CommandPattern(path: "/usr/bin/systemctl", arguments: ["restart", "nginx"]),
                CommandPattern(path: "/usr/bin/journalctl", arguments: nil),
                CommandPattern(path: "/usr/bin/uptime", arguments: []),
            ],
            [
                CommandPattern(
                    path: "/usr/bin/echo",
                    arguments: ["say \"hi\"", "'single'", "a\\b", "\\", "\"", "/slash/"]
                )
            ],
            [CommandPattern(path: "/opt/my tools/ünïcödé", arguments: ["日本語", "emoji 🙂", "é"])],
            [
                CommandPattern(
                    path: "/usr/bin/printf",
                    arguments: ["tab\there", "nl\nhere", "cr\rhere", "esc\u{1B}", "del\u{7F}", "nul\u{0}", "bs\u{8}"]
                )
            ],
            [CommandPattern(path: "/usr/bin/echo", arguments: ["", "x"])],
            [CommandPattern(path: "/usr/bin/echo", arguments: ["x", ""])],
        ]
    )
    func roundTrip(_ patterns: [CommandPattern]) throws {
        #expect(try CommandList.decode(CommandList.encode(patterns)) == patterns)
    }

    @Test("decode accepts whitespace and the JSON escapes encode could write")
    func decodeLenient() throws {
        let decoded = try CommandList.decode(
            " [ [ \"\\/usr\\/bin\\/echo\" , \"\\u0041\\b\\f\" ] ,\n\t[\"/bin/true\",\"\"] ]\r\n"
        )
        #expect(
            decoded == [
                CommandPattern(path: "/usr/bin/echo", arguments: ["A\u{8}\u{C}"]),
                CommandPattern(path: "/bin/true", arguments: []),
            ]
        )
    }

    @Test(
        "malformed stored lists are rejected",
        arguments: [
            "",
            " ",
            "[",
            "]",
            "{}",
            "null",
            #"["/usr/bin/ls"]"#,
            #"[["/usr/bin/ls"]"#,
            #"[["/usr/bin/ls"]]]"#,
            #"[["/usr/bin/ls"]] x"#,
            #"[["/usr/bin/ls"]],"#,
            #"[["/usr/bin/ls"],]"#,
            #"[["/usr/bin/ls",]]"#,
            #"[["/usr/bin/ls"] ["/bin/true"]]"#,
            #"[["/usr/bin/ls" "-l"]]"#,
            #"[[1]]"#,
            #"[["/usr/bin/ls", 1]]"#,
            #"[[null]]"#,
            #"[[true]]"#,
            #"[['/usr/bin/ls']]"#,
            #"[[]]"#,
            #"[["usr/bin/ls"]]"#,
            #"[["ls", "-l"]]"#,
            #"[[""]]"#,
            #"[["/usr/bin/ls]]"#,
            #"[["/usr/bin/ls\x"]]"#,
            #"[["/usr/bin/ls\"]]"#,
            #"[["/usr/bin/ls\u00"]]"#,
            #"[["/usr/bin/ls\u00zz"]]"#,
            #"[["/usr/bin/ls\ud800"]]"#,  // a lone surrogate is no scalar
            "[[\"/usr/bin/ls\nx\"]]",
            "[[\"/usr/bin/ls\u{1B}\"]]",
        ]
    )
    func malformed(_ text: String) {
        #expect(throws: CommandPatternError.malformedEncoding) { try CommandList.decode(text) }
    }
}

@Suite("CommandList escapes")
struct CommandListEscapeTests {
    @Test("escaped scalars beyond ASCII (C1 controls, line separators, é) decode back")
    func escapedScalars() throws {
        #expect(
            try CommandList.decode(#"[["/usr/bin/ls\u00e9"]]"#) == [
                CommandPattern(path: "/usr/bin/lsé", arguments: nil)
            ]
        )
        let pattern = CommandPattern(path: "/usr/bin/printf", arguments: ["a\u{2028}b\u{85}"])
        let encoded = CommandList.encode([pattern])
        #expect(encoded.contains("\\u2028") && encoded.contains("\\u0085"))
        #expect(try CommandList.decode(encoded) == [pattern])
    }
}
