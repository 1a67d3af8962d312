import Testing
import WritCore
import WritEngine
import WritExpr
import WritPolicy
import WritProtocol

@testable import WritDaemon

@Suite("Slack cards and identities")
struct SlackCardsTests {
    static func request(
        state: String = "pending",
        reason: String = "INC-1 <!channel> & <https://evil|click>"
    ) -> RequestView {
        RequestView(
            id: "r_1",
            kind: "grant",
            extendsGrant: nil,
            requester: "alice",
            capability: "sudo",
            flow: "ops",
            host: "web-01",
            runas: "root",
            commands: ["/usr/bin/systemctl restart <nginx>"],
            duration: 1800,
            reason: reason,
            state: state,
            createdAt: 0,
            pendingUntil: 3600,
            requiredApprovals: 2,
            approvals: [ApprovalView(by: "bob", at: 10, comment: "")],
            approvers: ["bob", "carol"],
            decidedAt: nil,
            decidedBy: nil,
            decisionNote: nil,
            grantId: nil,
            autoRule: nil,
            policyVersion: "v",
            steps: [
                StepView(
                    name: "approve",
                    approvers: ["bob", "carol"],
                    required: 2,
                    approvals: ["bob"],
                    escalatesAt: nil,
                    escalated: false
                )
            ],
            currentStep: 0
        )
    }

    static func json(_ v: JSONValue) -> String {
        // JSONEncoder writes "/" as "\\/"; the checks read the text as Slack shows it.
        EngineRequest.encodeJSON(v).replacing("\\/", with: "/")
    }

    @Test("what a requester typed cannot mention @channel or forge a link")
    func escaping() {
        let (_, blocks) = SlackCards.card(Self.request(), mode: .allowed, grant: nil)
        let text = Self.json(blocks)
        #expect(text.contains("&lt;!channel&gt; &amp; &lt;https://evil|click&gt;"))
        #expect(text.contains("restart &lt;nginx&gt;"))
        #expect(!text.contains("<!channel>"))
    }

    @Test("a mark that joins the next character (U+0600) does not carry a < or > past the escape")
    func escapingPerScalar() {
        for text in ["\u{0600}<!channel>", "\u{0600}<https://evil|Approve here>", "a\u{0301}<b>\u{0600}&"] {
            let out = SlackCards.escape(text)
            #expect(!out.unicodeScalars.contains("<") && !out.unicodeScalars.contains(">"), "\(out)")
        }
        #expect(SlackCards.escape("\u{0600}<x>") == "\u{0600}&lt;x&gt;")
        #expect(SlackCards.escape("abc<d", limit: 3) == "abc…")
    }

    @Test("a pending card has Approve (confirmed) and Deny, progress; a decided one has no buttons")
    func buttons() {
        let pending = Self.json(SlackCards.card(Self.request(), mode: .allowed, grant: nil).blocks)
        #expect(pending.contains("writ_approve") && pending.contains("writ_deny") && pending.contains("\"confirm\""))
        #expect(
            pending.contains("approve 1/2") && pending.contains("approved by bob")
                && pending.contains("waiting for carol")
        )
        let cli = Self.json(SlackCards.card(Self.request(), mode: .cli, grant: nil).blocks)
        #expect(!cli.contains("writ_approve\"") && cli.contains("writ approve r_1"))
        var denied = Self.request(state: "denied")
        denied.decidedBy = "bob"
        denied.decisionNote = "no"
        let d = Self.json(SlackCards.card(denied, mode: .allowed, grant: nil).blocks)
        #expect(!d.contains("writ_approve") && d.contains("Denied* by bob: no"))
    }

    @Test("a Slack email maps back to a unix user only through the identities that give it")
    func emails() {
        let ids = IntegrationSettings.Identities(
            emails: ["al": "alice.smith@example.com"],
            emailTemplate: "{user}@example.com"
        )
        #expect(SlackApp.unixUser(email: "alice.smith@example.com", identities: ids) == "al")
        #expect(SlackApp.unixUser(email: "bob@example.com", identities: ids) == "bob")
        #expect(SlackApp.unixUser(email: "al@example.com", identities: ids) == nil)  // al's email is another
        #expect(SlackApp.unixUser(email: "bob@example.com.evil", identities: ids) == nil)
        #expect(SlackApp.unixUser(email: "@example.com", identities: ids) == nil)
        #expect(SlackApp.unixUser(email: "x@other.com", identities: ids) == nil)
        // ASCII case folding only: a look-alike letter is another address, mapped to nobody.
        #expect(SlackApp.unixUser(email: "Bob@Example.COM", identities: ids) == "bob")
        #expect(SlackApp.unixUser(email: "\u{212A}arl@example.com", identities: ids) == nil)  // KELVIN SIGN
        #expect(SlackApp.unixUser(email: "karl@example.com", identities: ids) == "karl")
        #expect(SlackApp.unixUser(email: "ALICE.\u{17F}MITH@example.com", identities: ids) == nil)  // LONG S
        #expect(SlackApp.unixUser(email: "bob@exa\u{0301}mple.com", identities: ids) == nil)
        #expect(EmailAddress.folded("\u{212A}arl@x") == nil && EmailAddress.folded("K@X") == "k@x")
        #expect(!EmailAddress.same("\u{212A}@x", "k@x") && EmailAddress.same("K@x", "k@X"))
        #expect(EmailAddress.folded("a b@x") == nil && EmailAddress.folded("") == nil)
    }
}

@Suite("Doorbell")
struct DoorbellTests {
    @Test("a ring wakes the waiter; an early wake leaves no ring behind for the next wait")
    func ringThenSleep() async {
        let bell = Doorbell()
        bell.ring()
        let clock = ContinuousClock()
        var start = clock.now
        // The bound tells "woken" from "waited the whole 30 s"; it is loose because, with every
        // suite running at once on two cores, a 200 ms sleep has taken over 5 s to come back.
        await bell.wait(seconds: 30)  // rung before: returns at once
        #expect(clock.now - start < .seconds(20))
        start = clock.now
        let ringer = Task {
            try? await Task.sleep(for: .milliseconds(200))
            bell.ring()
        }
        await bell.wait(seconds: 30)  // woken by the ring
        await ringer.value
        #expect(clock.now - start < .seconds(20))
        // Nothing rang since: this wait runs its whole second (a leftover ring from the cancelled
        // timer of the last wait would end it at once, and the outbox loop would spin).
        start = clock.now
        await bell.wait(seconds: 1)
        #expect(clock.now - start >= .milliseconds(900))
    }
}

@Suite("Slack cards: Slack's limits")
struct SlackCardLimitTests {
    @Test("a flow with many long commands still fits Slack's 3,000 characters per section")
    func manyCommands() {
        var r = SlackCardsTests.request(reason: String(repeating: "x", count: 5000))
        r.commands = (0..<100).map { "/usr/bin/tool --option \($0) " + String(repeating: "a", count: 200) }
        let (_, blocks) = SlackCards.card(r, mode: .allowed, grant: nil)
        for block in blocks.arrayValue ?? [] {
            let text = block["text"]?["text"]?.stringValue ?? ""
            #expect(text.count <= 3000)
        }
        #expect(SlackCardsTests.json(blocks).contains("more (writ status shows them all)"))
    }
}
