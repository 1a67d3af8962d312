import Testing
import WritExpr

@testable import WritSlack

/// The Web API client against Tests/Fakes/fake_slack.py over real HTTP on 127.0.0.1 (one fake
/// per test).
@Suite("SlackWebAPI against the fake")
struct SlackWebAPITests {
    /// A client for `fake` with the fake workspace's tokens.
    static func api(
        _ fake: FakeSlack,
        timeoutMilliseconds: Int = 5_000,
        botToken: String = FakeSlack.botToken
    )
        -> SlackWebAPI
    {
        SlackWebAPI(
            configuration: .init(
                apiURL: fake.url + "/api/",
                botToken: botToken,
                appToken: FakeSlack.appToken,
                timeoutMilliseconds: timeoutMilliseconds
            )
        )
    }

    /// The error `body` threw, or nil when it returned.
    static func failure<T>(_ body: () async throws -> T) async -> SlackError? {
        do {
            _ = try await body()
            return nil
        } catch let error as SlackError {
            return error
        } catch {
            Issue.record("not a SlackError: \(error)")
            return nil
        }
    }

    /// Fails the test when `error` shows either token, however it is printed.
    static func expectNoToken(_ error: SlackError?, _ tokens: [String] = [FakeSlack.botToken, FakeSlack.appToken]) {
        guard let error else { return }
        for token in tokens {
            #expect(!error.description.contains(token), "\(error.description)")
            #expect(!String(reflecting: error).contains(token))
        }
    }

    static let seed = """
        {"users": [{"id": "U0ALICE001", "email": "alice@example.com", "real_name": "Alice Liddell"},
                   {"id": "U0BOB00001", "email": "bob@example.com"},
                   {"id": "U0GUEST001", "email": "g@partner.example", "is_ultra_restricted": true},
                   {"id": "U0GONE0001", "email": "gone@example.com", "deleted": true},
                   {"id": "U0ROBOT001", "email": "robot@example.com", "is_bot": true},
                   {"id": "U0APPUSER1", "is_app_user": true}],
         "channels": [{"id": "C0APPROVE1", "name": "approvals", "members": ["U0ALICE001"]}],
         "usergroups": [{"id": "S0ONCALL01", "handle": "oncall", "users": ["U0ALICE001", "U0BOB00001"]}]}
        """

    static let blocks: JSONValue = [
        .object(["type": "section", "text": .object(["type": "mrkdwn", "text": "*root* on db1 for 30m"])]),
        .object([
            "type": "actions",
            "elements": [
                .object([
                    "type": "button", "action_id": "approve", "value": "req-1",
                    "text": .object(["type": "plain_text", "text": "Approve"]),
                ])
            ],
        ]),
    ]

    @Test func authTestFields() async throws {
        try await FakeSlack.with { fake in
            let identity = try await Self.api(fake).authTest()
            #expect(
                identity
                    == SlackIdentity(
                        teamID: FakeSlack.teamID,
                        team: "Writ Test",
                        userID: "U0WRITBOT1",
                        botID: "B0WRITBOT1",
                        url: "https://writ-test.slack.com/"
                    )
            )
        }
    }

    @Test func postMessageThenUpdate() async throws {
        try await FakeSlack.with { fake in
            try await fake.control("seed", Self.seed)
            let api = Self.api(fake)
            let posted = try await api.postMessage(
                channel: "C0APPROVE1",
                text: "alice asks for root",
                blocks: Self.blocks
            )
            #expect(posted.channel == "C0APPROVE1")
            #expect(!posted.ts.isEmpty)

            let updated: JSONValue = [
                .object(["type": "section", "text": .object(["type": "mrkdwn", "text": "approved"])])
            ]
            try await api.update(channel: posted.channel, ts: posted.ts, text: "approved", blocks: updated)

            let calls = try await fake.items("calls?method=chat.update")
            #expect(calls.count == 1)
            let call = try #require(calls.first)
            #expect(call["token"]?.stringValue == FakeSlack.botToken)
            #expect(call["http_method"]?.stringValue == "POST")
            #expect(call["encoding"]?.stringValue == "form")
            #expect(call["args"]?["ts"]?.stringValue == posted.ts)
            #expect(call["args"]?["text"]?.stringValue == "approved")
            let sentBlocks = try #require(call["args"]?["blocks"]?.stringValue)
            #expect(try parseJSON(sentBlocks) == updated)
            #expect(call["response"]?["warning"] == nil)

            let messages = try await fake.items("messages?channel=C0APPROVE1")
            #expect(messages.first?["text"]?.stringValue == "approved")
            #expect(messages.first?["edits"]?.arrayValue?.first?["previous_blocks"] == Self.blocks)

            // A threaded reply, and a channel that is not there.
            let reply = try await api.postMessage(channel: "C0APPROVE1", text: "done", threadTS: posted.ts)
            #expect(reply.ts != posted.ts)
            let threaded = try await fake.items("calls?method=chat.postMessage")
            #expect(threaded.last?["args"]?["thread_ts"]?.stringValue == posted.ts)
            let missing = await Self.failure { try await api.postMessage(channel: "C0NOWHERE1", text: "x") }
            #expect(missing == .api(method: "chat.postMessage", code: "channel_not_found"))
            #expect(missing?.isTransient == false)
        }
    }

    @Test func postEphemeral() async throws {
        try await FakeSlack.with { fake in
            try await fake.control("seed", Self.seed)
            let api = Self.api(fake)
            try await api.postEphemeral(
                channel: "C0APPROVE1",
                user: "U0ALICE001",
                text: "only you",
                blocks: Self.blocks
            )
            let ephemerals = try await fake.items("ephemerals")
            #expect(ephemerals.count == 1)
            let outsider = await Self.failure {
                try await api.postEphemeral(channel: "C0APPROVE1", user: "U0BOB00001", text: "x")
            }
            #expect(outsider == .api(method: "chat.postEphemeral", code: "user_not_in_channel"))
        }
    }

    @Test func openDM() async throws {
        try await FakeSlack.with { fake in
            try await fake.control("seed", Self.seed)
            let api = Self.api(fake)
            let channel = try await api.openDM(user: "U0ALICE001")
            #expect(channel.hasPrefix("D"))
            #expect(try await api.openDM(user: "U0ALICE001") == channel)
            let unknown = await Self.failure { try await api.openDM(user: "U0NOBODY01") }
            #expect(unknown == .api(method: "conversations.open", code: "user_not_found"))
        }
    }

    @Test func lookupByEmail() async throws {
        try await FakeSlack.with { fake in
            try await fake.control("seed", Self.seed)
            let api = Self.api(fake)
            let alice = try await api.lookupByEmail("Alice@Example.com")
            #expect(
                alice
                    == SlackUser(
                        id: "U0ALICE001",
                        teamID: FakeSlack.teamID,
                        name: "alice",
                        realName: "Alice Liddell",
                        email: "alice@example.com"
                    )
            )
            let nobody = await Self.failure { try await api.lookupByEmail("nobody@example.com") }
            #expect(nobody == .api(method: "users.lookupByEmail", code: "users_not_found"))
            // A plus in an address is sent as itself, not as a space.
            let plus = await Self.failure { try await api.lookupByEmail("alice+x@example.com") }
            #expect(plus == .api(method: "users.lookupByEmail", code: "users_not_found"))
            let sent = try await fake.items("calls?method=users.lookupByEmail")
            #expect(sent.last?["args"]?["email"]?.stringValue == "alice+x@example.com")
        }
    }

    @Test func userInfoFlags() async throws {
        try await FakeSlack.with { fake in
            try await fake.control("seed", Self.seed)
            let api = Self.api(fake)
            let gone = try await api.userInfo("U0GONE0001")
            #expect(gone.deleted && !gone.isGuest && !gone.isBot)
            let guest = try await api.userInfo("U0GUEST001")
            #expect(guest.isGuest && !guest.deleted && !guest.isBot)
            #expect(guest.email == "g@partner.example")
            let robot = try await api.userInfo("U0ROBOT001")
            #expect(robot.isBot && !robot.isGuest)
            #expect(robot.email == nil)
            let appUser = try await api.userInfo("U0APPUSER1")
            #expect(appUser.isBot)
            let alice = try await api.userInfo("U0ALICE001")
            #expect(!alice.isBot && !alice.isGuest && !alice.deleted)
            #expect(alice.teamID == FakeSlack.teamID)
            let unknown = await Self.failure { try await api.userInfo("U0NOBODY01") }
            #expect(unknown == .api(method: "users.info", code: "user_not_found"))
        }
    }

    @Test func usergroupMembers() async throws {
        try await FakeSlack.with { fake in
            try await fake.control("seed", Self.seed)
            let api = Self.api(fake)
            #expect(try await api.usergroupMembers("S0ONCALL01") == ["U0ALICE001", "U0BOB00001"])
            let unknown = await Self.failure { try await api.usergroupMembers("S0NOTHERE1") }
            #expect(unknown == .api(method: "usergroups.users.list", code: "no_such_subteam"))
        }
    }

    @Test func openView() async throws {
        try await FakeSlack.with { fake in
            let api = Self.api(fake)
            let view: JSONValue = .object([
                "type": "modal",
                "callback_id": "writ-request",
                "title": .object(["type": "plain_text", "text": "Request access"]),
                "blocks": Self.blocks,
            ])
            // Slack's 3 s is the fake's default; a loaded machine has taken longer than that between
            // two calls. The expiry itself is checked below with a short lifetime.
            try await fake.control("config", #"{"trigger_ttl": 60}"#)
            let trigger = try #require(try await fake.control("trigger")["trigger_id"]?.stringValue)
            let id = try await api.openView(triggerID: trigger, view: view)
            #expect(id.hasPrefix("V"))
            let views = try await fake.items("views")
            #expect(views.first?["view"]?["callback_id"]?.stringValue == "writ-request")
            #expect(views.first?["view"]?["blocks"] == Self.blocks)

            let reused = await Self.failure { try await api.openView(triggerID: trigger, view: view) }
            #expect(reused == .api(method: "views.open", code: "exchanged_trigger_id"))
            let invalid = await Self.failure { try await api.openView(triggerID: "1.2.nope", view: view) }
            #expect(invalid == .api(method: "views.open", code: "invalid_trigger_id"))

            try await fake.control("config", #"{"trigger_ttl": 0.05}"#)
            let stale = try #require(try await fake.control("trigger")["trigger_id"]?.stringValue)
            try await Task.sleep(for: .milliseconds(200))
            let expired = await Self.failure { try await api.openView(triggerID: stale, view: view) }
            #expect(expired == .api(method: "views.open", code: "expired_trigger_id"))
        }
    }

    @Test func openSocketURLUsesTheAppToken() async throws {
        try await FakeSlack.with { fake in
            let url = try await Self.api(fake).openSocketURL()
            #expect(url.hasPrefix("ws://127.0.0.1:"))
            #expect(url.contains("/link/?ticket="))
            let calls = try await fake.items("calls?method=apps.connections.open")
            #expect(calls.count == 1)
            #expect(calls.first?["token"]?.stringValue == FakeSlack.appToken)
            #expect(calls.first?["http_method"]?.stringValue == "POST")

            let noAppToken = SlackWebAPI(configuration: .init(apiURL: fake.url + "/api/", botToken: FakeSlack.botToken))
            let refused = await Self.failure { try await noAppToken.openSocketURL() }
            guard case .configuration = refused else {
                Issue.record("expected a configuration error, got \(String(describing: refused))")
                return
            }
            #expect(try await fake.items("calls?method=apps.connections.open").count == 1)
        }
    }

    @Test func rateLimitedOnceThenAnswered() async throws {
        try await FakeSlack.with { fake in
            try await fake.control("ratelimit", #"{"method": "auth.test", "count": 1, "retry_after": 1}"#)
            let clock = ContinuousClock()
            let start = clock.now
            let identity = try await Self.api(fake).authTest()
            let elapsed = clock.now - start
            #expect(identity.teamID == FakeSlack.teamID)
            #expect(elapsed >= .milliseconds(900), "answered after \(elapsed): Retry-After was not waited for")
            let calls = try await fake.items("calls?method=auth.test")
            #expect(calls.map { $0["status"]?.intValue } == [429, 200])
        }
    }

    @Test func rateLimitedBeyondTheDeadline() async throws {
        try await FakeSlack.with { fake in
            try await fake.control("ratelimit", #"{"method": "auth.test", "retry_after": 30}"#)
            let clock = ContinuousClock()
            let start = clock.now
            let error = await Self.failure { try await Self.api(fake, timeoutMilliseconds: 3_000).authTest() }
            // Waiting the 30 s would take 30 s; the bound leaves room for a loaded machine.
            #expect(clock.now - start < .seconds(10), "waited for a Retry-After that cannot fit the deadline")
            #expect(error == .rateLimited(method: "auth.test", retryAfter: 30))
            #expect(error?.isTransient == true)

            // Retry-After 1 on every call: retried while it fits, then given up before the deadline.
            try await fake.control("ratelimit", #"{"method": "auth.test", "retry_after": 1}"#)
            let again = clock.now
            let repeated = await Self.failure { try await Self.api(fake, timeoutMilliseconds: 2_500).authTest() }
            // Given up within the deadline: on the last 429, or (on a loaded machine) when the
            // deadline ends a retry in flight. Never a wait past it.
            #expect(
                repeated == .rateLimited(method: "auth.test", retryAfter: 1)
                    || repeated?.description.contains("no answer in time") == true,
                "\(String(describing: repeated))"
            )
            #expect(clock.now - again < .seconds(6))
            #expect(try await fake.items("calls?method=auth.test").count >= 3)
        }
    }

    @Test func invalidAuth() async throws {
        try await FakeSlack.with { fake in
            let wrong = "xoxb-not-the-right-token-4242"
            let error = await Self.failure { try await Self.api(fake, botToken: wrong).authTest() }
            #expect(error == .api(method: "auth.test", code: "invalid_auth"))
            #expect(error?.isTransient == false)
            Self.expectNoToken(error, [wrong])
        }
    }

    @Test func outageIsTransient() async throws {
        try await FakeSlack.with { fake in
            try await fake.control("down", #"{"mode": "503", "scope": "web"}"#)
            let error = await Self.failure { try await Self.api(fake).authTest() }
            #expect(error == .http(method: "auth.test", status: 503))
            #expect(error?.isTransient == true)
            try await fake.control("up")
            #expect(try await Self.api(fake).authTest().teamID == FakeSlack.teamID)
        }
    }

    @Test func hangTimesOutWithinTheDeadline() async throws {
        try await FakeSlack.with { fake in
            try await fake.control("down", #"{"mode": "hang", "scope": "web"}"#)
            let clock = ContinuousClock()
            let start = clock.now
            let error = await Self.failure { try await Self.api(fake, timeoutMilliseconds: 1_000).authTest() }
            let elapsed = clock.now - start
            #expect(error == .timeout(method: "auth.test"))
            #expect(error?.isTransient == true)
            // A hang would last forever; the bound leaves room for a loaded machine.
            #expect(elapsed < .seconds(10), "gave up after \(elapsed)")
            try await fake.control("up")
        }
    }

    @Test func connectionRefused() async throws {
        let fake = try await FakeSlack.start()
        let api = Self.api(fake, timeoutMilliseconds: 2_000)
        fake.stop()
        let error = await Self.failure { try await api.authTest() }
        // AsyncHTTPClient retries a refused connection until the deadline and then reports the
        // refusal; when the whole test process stalls past it, the backstop's time-out comes
        // first (seen with every suite at once). Both are transient.
        switch error {
        case .transport(let method, let message):
            #expect(method == "auth.test")
            #expect(message.contains("refused"), "\(message)")
        case .timeout(method: "auth.test"): break
        default: Issue.record("expected a transport error, got \(String(describing: error))")
        }
        #expect(error?.isTransient == true)
        Self.expectNoToken(error)
    }

    @Test func tokenNeverInErrors() async throws {
        // A token pasted into the URL by mistake is still kept out of the error.
        let token = FakeSlack.botToken
        let api = SlackWebAPI(
            configuration: .init(
                apiURL: "http://slack.example/\(token)/api/",
                botToken: token,
                appToken: FakeSlack.appToken
            )
        )
        let error = await Self.failure { try await api.authTest() }
        guard case .configuration = error else {
            Issue.record("expected a configuration error, got \(String(describing: error))")
            return
        }
        Self.expectNoToken(error)
        let socket = await Self.failure { try await api.openSocketURL() }
        Self.expectNoToken(socket)

        // Unreachable over https: the transport error names the host, never the token.
        let unreachable = SlackWebAPI(
            configuration: .init(apiURL: "https://127.0.0.1:1/\(token)/", botToken: token, timeoutMilliseconds: 2_000)
        )
        let transport = await Self.failure { try await unreachable.authTest() }
        #expect(transport != nil)
        Self.expectNoToken(transport)
    }

    @Test func plainHTTPToAnotherHostIsRefused() async throws {
        let api = SlackWebAPI(configuration: .init(apiURL: "http://slack.com/api/", botToken: FakeSlack.botToken))
        let error = await Self.failure { try await api.authTest() }
        guard case .configuration(let message) = error else {
            Issue.record("expected a configuration error, got \(String(describing: error))")
            return
        }
        #expect(message.contains("https"))
        let respond = await Self.failure {
            try await api.respond(responseURL: "http://hooks.slack.example/actions/T0/1/secret", .object(["text": "x"]))
        }
        guard case .configuration(let why) = respond else {
            Issue.record("expected a configuration error, got \(String(describing: respond))")
            return
        }
        #expect(!why.contains("secret"), "the response_url is a credential: \(why)")
    }

    @Test func respondToAResponseURL() async throws {
        try await FakeSlack.with { fake in
            try await fake.control("seed", Self.seed)
            try await fake.control("config", #"{"response_url_uses": 1}"#)
            // No socket is connected: the delivery is not sent anywhere, but its response_url exists.
            let delivery = try await fake.control(
                "socket/deliver",
                #"{"kind": "slash_command", "user_id": "U0ALICE001", "text": "root db1"}"#
            )
            let responseURL = try #require(delivery["response_url"]?.stringValue)
            let api = Self.api(fake)
            let body: JSONValue = .object(["text": "request sent", "response_type": "ephemeral"])
            try await api.respond(responseURL: responseURL, body)
            let responses = try await fake.items("responses")
            #expect(responses.count == 1)
            #expect(responses.first?["body"] == body)
            #expect(responses.first?["content_type"]?.stringValue?.hasPrefix("application/json") == true)

            let used = await Self.failure { try await api.respond(responseURL: responseURL, body) }
            #expect(used == .api(method: "response_url", code: "used_url"))
        }
    }

    @Test func answersOverFourMiBAreRefused() async throws {
        try await FakeSlack.with { fake in
            try await fake.control("seed", Self.seed)
            // The fake echoes the message in its answer, which makes the answer bigger than 4 MiB.
            let text = String(repeating: "a", count: (4 << 20) + 1024)
            let error = await Self.failure {
                try await Self.api(fake, timeoutMilliseconds: 20_000).postMessage(channel: "C0APPROVE1", text: text)
            }
            guard case .malformed(let method, let message) = error else {
                Issue.record("expected a malformed error, got \(String(describing: error))")
                return
            }
            #expect(method == "chat.postMessage")
            #expect(message.contains("4 MiB"))
        }
    }

    @Test func encodings() {
        #expect(
            SlackWireFormat.form([
                "channel": "C1", "text": "a b+c&d=é", "blocks": [.object(["type": "divider"])], "n": 3,
                "flag": true, "gone": nil,
            ]) == "blocks=%5B%7B%22type%22%3A%22divider%22%7D%5D&channel=C1&flag=true&n=3&text=a%20b%2Bc%26d%3D%C3%A9"
        )
        #expect(
            SlackWireFormat.json(.object(["b": [1, 2.5, nil], "a": "q\"\\\n\u{1}"]))
                == #"{"a":"q\"\\\n\u0001","b":[1,2.5,null]}"#
        )
        #expect(
            SlackWireFormat.parseForm(Array("a=1&b=x+y%2Bz&c=&d".utf8)) == ["a": "1", "b": "x y+z", "c": "", "d": ""]
        )
        #expect(SlackWireFormat.parseForm(Array("a=1&a=2".utf8)) == nil)
        #expect(SlackWireFormat.parseForm(Array("a=%zz".utf8)) == nil)
        #expect(SlackWireFormat.parseForm(Array("a=%ff".utf8)) == nil)
        #expect(SlackWebAPI.isMethodName("chat.postMessage"))
        #expect(!SlackWebAPI.isMethodName("../chat.postMessage?x"))
        #expect(!SlackWebAPI.isMethodName(""))
    }
}
