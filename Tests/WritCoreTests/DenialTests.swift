import Testing
import WritCore

@Suite("Denial")
struct DenialTests {
    typealias F = Fixture

    static let all: [Denial] = [
        .noGrant, .notYetValid(startsIn: 330), .otherHost, .scopeNeedsPlugin,
        .runasNotAllowed(allowed: ["postgres", "www-data"]), .commandNotAllowed,
    ]

    static let query = F.query(runas: "root", command: ("/usr/bin/systemctl", ["restart", "nginx"]))

    @Test("every message is one line that names the user and says to run writ request", arguments: all)
    func messageShape(_ denial: Denial) {
        let message = denial.message(for: Self.query)
        #expect(message.hasPrefix("writ: "))
        #expect(message.contains("writ request"))
        #expect(message.contains("alice"))
        #expect(!message.contains("\n"))
        #expect(!message.contains("\r"))
    }

    @Test(
        "messages about this host name it by its short name",
        arguments: [
            Denial.noGrant, .notYetValid(startsIn: 330), .otherHost, .commandNotAllowed,
        ]
    )
    func messageNamesHost(_ denial: Denial) {
        let message = denial.message(for: Self.query)
        #expect(message.contains("web1"))
        #expect(!message.contains("web1.example.com"))
    }

    @Test("messages ask for the right capability")
    func capabilityInMessage() {
        #expect(Denial.noGrant.message(for: Self.query).contains("writ request sudo"))
        #expect(Denial.otherHost.message(for: Self.query).contains("writ request sudo --host web1"))
    }

    @Test("a refused login says where to ask: not on the host that refused it")
    func loginSaysWhereToAsk() {
        let login = F.query(capability: .login)
        for denial in [Denial.noGrant, .otherHost, .notYetValid(startsIn: 60)] {
            let message = denial.message(for: login)
            #expect(!message.contains("writ request"), "\(message)")
            #expect(message.contains("ask an admin of web1 for a login grant"), "\(message)")
        }
    }

    @Test("specific details appear in the message")
    func details() {
        #expect(Denial.notYetValid(startsIn: 330).message(for: Self.query).contains("starts in 5m30s"))
        let runas = Denial.runasNotAllowed(allowed: ["postgres", "www-data"]).message(for: Self.query)
        #expect(runas.contains("postgres, www-data"))
        #expect(runas.contains("not root"))
        #expect(runas.contains("--runas root"))
        #expect(Denial.commandNotAllowed.message(for: Self.query).contains("/usr/bin/systemctl"))
    }

    @Test("hostile user, host, run-as and command text cannot break the line", arguments: all)
    func hostileInput(_ denial: Denial) {
        let query = F.query(
            user: "eve\nJan 1 sudo: root : accepted\r",
            host: HostIdentity(nodename: "evil\nhost\u{1B}[2J.example.com"),
            runas: "ro\not",
            command: ("/tmp/x\n\u{85}y", [])
        )
        let hostile: Denial =
            if case .runasNotAllowed = denial { .runasNotAllowed(allowed: ["a\nb"]) } else { denial }
        let message = hostile.message(for: query)
        #expect(!message.contains("\n"))
        #expect(!message.contains("\r"))
        #expect(!message.unicodeScalars.contains { $0.value < 0x20 || (0x7F..<0xA0).contains($0.value) })
        #expect(message.contains("eve\\nJan"))
    }

    @Test(
        "codes are short and stable",
        arguments: zip(
            all,
            [
                "no_grant", "not_yet_valid", "other_host", "scope_needs_plugin", "runas_not_allowed",
                "command_not_allowed",
            ]
        )
    )
    func codes(denial: Denial, code: String) {
        #expect(denial.code == code)
    }
}
