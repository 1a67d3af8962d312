import Testing
import WritCore

/// What a command-limited grant must refuse even when the command itself matches: another group,
/// an environment that would run other code, text that cannot be compared faithfully, and
/// Unicode that is equal to Swift but different to the program.
@Suite("command-limited grants: hardening")
struct CommandScopeHardeningTests {
    typealias F = Fixture
    static let idGrant = F.grant(
        id: "g_id",
        commands: [CommandPattern(path: "/usr/bin/id", arguments: ["-u"])]
    )

    func query(
        runas: String = "root",
        command: (path: String, arguments: [String]) = ("/usr/bin/id", ["-u"]),
        groupIsPrimary: Bool = true,
        environmentProblem: String? = nil,
        validText: Bool = true
    ) -> AccessQuery {
        AccessQuery(
            user: "alice",
            uid: 1000,
            capability: .sudo,
            host: F.host,
            runas: runas,
            command: command,
            runasGroupIsPrimary: groupIsPrimary,
            commandEnvironmentProblem: environmentProblem,
            commandIsValidText: validText,
            now: F.now
        )
    }

    @Test("the matching command in a clean environment is allowed")
    func cleanAllowed() {
        #expect(AccessCheck.decide(query(), candidates: [Self.idGrant]) == .allow(grantID: "g_id"))
    }

    @Test("an unsafe environment refuses a command-limited grant, and says why")
    func environmentRefused() {
        let q = query(environmentProblem: "variable LD_PRELOAD is set")
        let decision = AccessCheck.decide(q, candidates: [Self.idGrant])
        #expect(decision == .deny(.environmentNotAllowed("variable LD_PRELOAD is set")))
        if case .deny(let denial) = decision {
            #expect(denial.message(for: q).contains("LD_PRELOAD"))
            #expect(denial.code == "environment_not_allowed")
        }
    }

    @Test("a program that users other than root can change is refused for a command-limited grant")
    func programNotProtected() {
        let q = AccessQuery(
            user: "alice",
            uid: 1000,
            capability: .sudo,
            host: F.host,
            runas: "root",
            command: ("/usr/bin/id", ["-u"]),
            commandProgramIsRootOnly: false,
            now: F.now
        )
        #expect(AccessCheck.decide(q, candidates: [Self.idGrant]) == .deny(.programNotProtected))
        #expect(AccessCheck.decide(q, candidates: [F.grant(id: "g_all")]) == .allow(grantID: "g_all"))
    }

    @Test("the environment does not matter to an unscoped grant")
    func environmentIrrelevantWithoutCommands() {
        let q = query(environmentProblem: "variable LD_PRELOAD is set")
        #expect(AccessCheck.decide(q, candidates: [F.grant(id: "g_all")]) == .allow(grantID: "g_all"))
    }

    @Test("a command or argument that was not valid UTF-8 never matches a command list")
    func invalidTextRefused() {
        #expect(AccessCheck.decide(query(validText: false), candidates: [Self.idGrant]) == .deny(.commandNotAllowed))
    }

    @Test("another run-as group (-g) is refused unless the grant's run-as is *")
    func groupRefused() {
        let scoped = F.grant(id: "g_pg", runas: "postgres")
        #expect(
            AccessCheck.decide(query(runas: "postgres", groupIsPrimary: false), candidates: [scoped])
                == .deny(.groupNotAllowed)
        )
        let any = F.grant(id: "g_any", runas: "*")
        #expect(
            AccessCheck.decide(query(runas: "postgres", groupIsPrimary: false), candidates: [any])
                == .allow(grantID: "g_any")
        )
    }

    @Test("arguments compare as bytes: a decomposed é is not the precomposed é of the grant")
    func bytesNotCanonicalEquivalence() {
        let grant = F.grant(id: "g_cafe", commands: [CommandPattern(path: "/usr/bin/touch", arguments: ["caf\u{E9}"])])
        #expect("caf\u{E9}" == "cafe\u{301}")  // equal to Swift…
        let decomposed = query(command: ("/usr/bin/touch", ["cafe\u{301}"]))
        #expect(AccessCheck.decide(decomposed, candidates: [grant]) == .deny(.commandNotAllowed))  // …not to us
        let precomposed = query(command: ("/usr/bin/touch", ["caf\u{E9}"]))
        #expect(AccessCheck.decide(precomposed, candidates: [grant]) == .allow(grantID: "g_cafe"))
    }

    @Test("user names compare as bytes too")
    func userBytes() {
        let grant = F.grant(id: "g_u", user: "jos\u{E9}")
        let q = AccessQuery(user: "jose\u{301}", uid: 1000, capability: .sudo, host: F.host, now: F.now)
        #expect(AccessCheck.decide(q, candidates: [grant]) == .deny(.noGrant))
    }
}

@Suite("CommandEnvironment.problem")
struct CommandEnvironmentTests {
    static let secure: @Sendable (String) -> Bool = { ["/usr/sbin", "/usr/bin", "/sbin", "/bin"].contains($0) }
    static let expected: [(name: String, value: String)] = [
        ("HOME", "/root"), ("SHELL", "/bin/bash"), ("USER", "root"), ("LOGNAME", "root"), ("MAIL", "/var/mail/root"),
        ("SUDO_USER", "alice"), ("SUDO_UID", "1000"), ("SUDO_GID", "1000"),
    ]

    func problem(_ env: [String]) -> String? {
        CommandEnvironment.problem(env, expected: Self.expected, isSecureDirectory: Self.secure)
    }

    @Test("what sudo's env_reset leaves is fine")
    func resetEnvironment() {
        let env = [
            "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LOGNAME=root", "USER=root", "SHELL=/bin/bash",
            "TERM=xterm-256color", "LANG=C.UTF-8", "LC_ALL=C", "MAIL=/var/mail/root", "SUDO_USER=alice",
            "SUDO_UID=1000", "SUDO_GID=1000", "SUDO_COMMAND=/usr/bin/id -u", "TZ=Europe/Paris",
            "TZ=:/usr/share/zoneinfo/UTC",
        ]
        #expect(problem(env) == nil)
    }

    @Test(
        "variables that change what code runs are refused",
        arguments: [
            "LD_PRELOAD=/tmp/x.so", "LD_LIBRARY_PATH=/tmp", "PYTHONPATH=/tmp", "BASH_ENV=/tmp/x", "PAGER=sh",
            "DISPLAY=:0", "XAUTHORITY=/home/alice/.Xauthority", "PS1=$(id)", "FOO",
        ]
    )
    func refused(entry: String) {
        #expect(problem(["PATH=/usr/bin", entry])?.hasPrefix("variable ") == true)
    }

    @Test(
        "variables sudo derives must have sudo's value",
        arguments: ["HOME=/home/alice", "SHELL=/home/alice/sh", "USER=alice", "MAIL=/tmp/m", "SUDO_UID=0", "HOME="]
    )
    func derivedValues(entry: String) {
        #expect(problem([entry])?.contains("is not the value sudo sets") == true)
    }

    @Test(
        "names that could hide a path are refused",
        arguments: [
            "LANGUAGE=../../../../home/alice/l", "LANG=/home/alice/locale", "LC_ALL=..", "TERM=../x",
            "LC_MESSAGES=%s", "TZ=/home/alice/zone", "TZ=:/tmp/zone", "TZ=../../../tmp/zone",
        ]
    )
    func pathsInNames(entry: String) {
        #expect(problem([entry]) != nil)
    }

    @Test(
        "PATH must only name directories root alone controls",
        arguments: ["/tmp:/usr/bin", "/usr/bin:", "bin:/usr/bin"]
    )
    func pathRefused(path: String) {
        #expect(problem(["PATH=\(path)"]) != nil)
    }

    @Test("the names sudo keeps pass with the values they are written with: a login's usual environment")
    func usualValues() {
        let env = [
            "HOSTNAME=web-01.example", "COLORTERM=truecolor", "TERM=xterm-256color", "LANG=de_DE@euro",
            "LANGUAGE=de:en", "LINGUAS=de fr", "LC_TIME=en_GB.UTF-8", "COLORS=/etc/DIR_COLORS",
            "LS_COLORS=rs=0:di=01;34:ln=01;36:*.tar=01;31:*~=00;90:*#=00;90:*.c++=00;32",
        ]
        // COLORS names a file (a path): refused like any other path.
        #expect(problem(env) == "COLORS names a path")
        #expect(problem(env.filter { !$0.hasPrefix("COLORS=") }) == nil)
    }

    @Test(
        "shell metacharacters and look-alike text in those names are refused; USERNAME (never kept by sudo) too",
        arguments: [
            "HOSTNAME=$(id)", "HOSTNAME=a;b", "LS_COLORS=di=01;34:$(id)", "LS_COLORS=a`id`", "COLORS=a|b",
            "COLORTERM=truecolor'", "LINGUAS=de&&id", "LANGUAGE=de\nen", "TERM=xterm 256", "LANG=C\u{2215}x",
            "LC_ALL=C\"", "USERNAME=root", "TZ=$(id)", "TZ=UTC;id",
        ]
    )
    func metacharacters(entry: String) {
        #expect(problem([entry]) != nil)
    }

    @Test("LC_ names must look like locale categories")
    func localeNames() {
        #expect(problem(["LC_TIME=C"]) == nil)
        #expect(problem(["LC_x=C"]) != nil)
    }
}
