import Testing
import WritCore

@Suite("Grant")
struct GrantTests {
    @Test(
        "state at an instant",
        arguments: [
            // (notBefore, expiresAt, revokedAt, now, state)
            (100 as Int64, 200 as Int64, nil as Int64?, 150 as Int64, GrantState.active),
            (100, 200, nil, 100, .active),
            (100, 200, nil, 199, .active),
            (100, 200, nil, 99, .pending),
            (100, 200, nil, 200, .expired),
            (100, 200, nil, 500, .expired),
            (100, 200, 150, 160, .revoked),
            (100, 200, 50, 50, .revoked),
            (100, 200, 150, 500, .revoked),
        ]
    )
    func state(notBefore: Int64, expiresAt: Int64, revokedAt: Int64?, now: Int64, expected: GrantState) {
        let grant = Fixture.grant(notBefore: notBefore, expiresAt: expiresAt, revokedAt: revokedAt)
        #expect(grant.state(at: now) == expected)
    }

    @Test(
        "state raw values are stable",
        arguments: [
            (GrantState.pending, "pending"), (.active, "active"), (.expired, "expired"), (.revoked, "revoked"),
        ]
    )
    func stateRawValues(state: GrantState, raw: String) {
        #expect(state.rawValue == raw)
    }

    @Test(
        "a grant is scoped when it is narrower than any command as root",
        arguments: [
            ("root", nil as [CommandPattern]?, false),
            ("*", nil, false),
            ("postgres", nil, true),
            ("app-*", nil, true),
            ("Root", nil, true),
            ("root", [], true),
            ("root", [CommandPattern(path: "/usr/bin/systemctl", arguments: nil)], true),
            ("*", [CommandPattern(path: "/usr/bin/systemctl", arguments: ["restart", "nginx"])], true),
        ]
    )
    func isScoped(runas: String, commands: [CommandPattern]?, expected: Bool) {
        #expect(Fixture.grant(runas: runas, commands: commands).isScoped == expected)
    }

    @Test("defaults: any host, run as root, any command")
    func defaults() {
        let grant = Grant(
            id: "g",
            user: "alice",
            uid: 1000,
            capability: .sudo,
            notBefore: 0,
            expiresAt: 10,
            approvedBy: "x",
            createdAt: 0
        )
        #expect(grant.host == "*")
        #expect(grant.runas == "root")
        #expect(grant.commands == nil)
        #expect(grant.revokedAt == nil)
        #expect(!grant.isScoped)
    }

    @Test("capability raw values are the stored strings")
    func capabilityRawValues() {
        #expect(Capability.allCases.map(\.rawValue) == ["login", "sudo"])
        #expect(Capability(rawValue: "sudo") == .sudo)
        #expect(Capability(rawValue: "SUDO") == nil)
    }
}
