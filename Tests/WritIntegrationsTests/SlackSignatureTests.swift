import Testing

@testable import WritIntegrations

/// Slack's v0 request signatures, against the example Slack publishes in "Verifying requests from
/// Slack" (the same vector Tests/Fakes/slack_signature.py reproduces).
@Suite("Slack request signatures")
struct SlackSignatureTests {
    static let secret = "8f742231b10e8888abcd99yyyzzz85a5"
    static let timestamp = "1531420618"
    static let body = Array(
        ("token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow"
            + "&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner"
            + "&command=%2Fwebhook-collect&text="
            + "&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
            + "&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c").utf8
    )
    static let signature = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

    func verify(
        signature: String? = signature,
        timestamp: String? = timestamp,
        body: [UInt8] = body,
        now: Int64 = 1_531_420_618 + 10
    ) -> Result<Void, SlackSignature.Refusal> {
        SlackSignature.verify(secret: Self.secret, signature: signature, timestamp: timestamp, body: body, now: now)
    }

    @Test("Slack's published example signs and verifies")
    func publishedVector() {
        #expect(SlackSignature.sign(secret: Self.secret, timestamp: Self.timestamp, body: Self.body) == Self.signature)
        #expect((try? verify().get()) != nil)
    }

    @Test("a replayed request (older than 5 minutes) and one from the future are refused")
    func replay() {
        #expect(throws: SlackSignature.Refusal.stale(age: 301)) { try verify(now: 1_531_420_618 + 301).get() }
        #expect(throws: SlackSignature.Refusal.stale(age: -400)) { try verify(now: 1_531_420_618 - 400).get() }
        #expect((try? verify(now: 1_531_420_618 + 300).get()) != nil)
    }

    @Test("a changed body, signature or timestamp is refused")
    func tampered() {
        var body = Self.body
        body[body.count - 1] ^= 1
        #expect(throws: SlackSignature.Refusal.mismatch) { try verify(body: body).get() }
        let flipped = String(Self.signature.dropLast()) + (Self.signature.hasSuffix("3") ? "4" : "3")
        #expect(throws: SlackSignature.Refusal.mismatch) { try verify(signature: flipped).get() }
        #expect(throws: SlackSignature.Refusal.mismatch) { try verify(timestamp: "1531420619").get() }
        #expect(throws: SlackSignature.Refusal.malformedSignature) { try verify(signature: "v1=abc").get() }
        #expect(throws: SlackSignature.Refusal.missingHeaders) { try verify(signature: nil).get() }
        #expect(throws: SlackSignature.Refusal.malformedTimestamp) { try verify(timestamp: "soon").get() }
        // Hostile numbers: refused, never an arithmetic trap that would take writd down.
        for hostile in ["-9223372036854775808", "9223372036854775807", "-1", "+1531420618", "", "1e9", "0x5b4"] {
            #expect(throws: SlackSignature.Refusal.malformedTimestamp, "\(hostile)") {
                try verify(timestamp: hostile).get()
            }
        }
    }

    @Test("refusals never contain the secret")
    func noSecret() {
        for r in [
            SlackSignature.Refusal.missingHeaders, .malformedTimestamp, .stale(age: 999), .malformedSignature,
            .mismatch,
        ] {
            #expect(!r.description.contains(Self.secret))
        }
    }
}
