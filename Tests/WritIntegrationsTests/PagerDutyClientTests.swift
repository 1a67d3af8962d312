import Glibc
import Testing

@testable import WritIntegrations

/// The client against Tests/Fakes/fake_pagerduty.py over real HTTP on 127.0.0.1 (one fake per test).
@Suite("PagerDutyClient against the fake")
struct PagerDutyClientTests {
    /// Fails the test when `error`'s description shows `token`.
    func expectNoToken(_ error: PagerDutyError?, _ token: String = FakePagerDuty.token) {
        guard let error else { return }
        #expect(!error.description.contains(token), "\(error.description)")
        #expect(!String(describing: error).contains(token))
        #expect(!String(reflecting: error).contains(token))
    }

    @Test func exactEmailMatch() async throws {
        try await FakePagerDuty.with { fake in
            var seed = Seed()
            seed.users = [
                .init(id: "PMALICE", name: "Malice", email: "malice@x.com"),
                .init(id: "PALICE1", name: "Alice", email: "alice@x.com"),
                .init(id: "PALICEAU", name: "Alice AU", email: "alice@x.com.au"),
                .init(id: "PNAMED", name: "alice@x.com fan", email: "fan@y.org"),
            ]
            try await fake.seed(seed)
            let pd = client(fake)
            #expect(try await pd.userID(email: "alice@x.com") == "PALICE1")
            #expect(try await pd.userID(email: "ALICE@X.com") == "PALICE1")
            #expect(try await pd.userID(email: "malice@x.com") == "PMALICE")
            #expect(try await pd.userID(email: "alice@x.com.au") == "PALICEAU")
            #expect(await failure { try await pd.userID(email: "lice@x.com") } == .noSuchUser(email: "lice@x.com"))
            #expect(await failure { try await pd.userID(email: "nobody@x.com") } == .noSuchUser(email: "nobody@x.com"))
            #expect(await failure { try await pd.userID(email: "") } == .noSuchUser(email: ""))
            // The query went to PagerDuty as sent, and it is what found the candidates.
            let queries = try await fake.requests(path: "/users").map { $0.params["query"] ?? [] }
            #expect(queries.first == ["alice@x.com"])
        }
    }

    @Test func exactEmailOnALaterPage() async throws {
        try await FakePagerDuty.with { fake in
            var seed = Seed()
            // 150 users whose e-mails contain "al@x.com", sorted (by name) before the one wanted.
            seed.users = (0..<150).map { .init(id: "PU\($0)", name: "A \($0)", email: "a\($0)al@x.com") }
            seed.users.append(.init(id: "PAL", name: "Zed", email: "al@x.com"))
            try await fake.seed(seed)
            #expect(try await client(fake).userID(email: "al@x.com") == "PAL")
            let pages = try await fake.requests(path: "/users")
            #expect(pages.map { $0.params["offset"] ?? [] } == [["0"], ["100"]])
            #expect(pages.allSatisfy { $0.params["limit"] == ["100"] })
        }
    }

    @Test func onCallsAcrossThreePages() async throws {
        try await FakePagerDuty.with { fake in
            let now = currentTime()
            var seed = Seed()
            seed.users = [.init(id: "PALICE1", name: "Alice", email: "alice@x.com")]
            seed.escalation_policies = [.init(id: "PEPBIG", name: "Big")]
            seed.oncalls = (1...250).map {
                Seed.Shift(user: "PALICE1", policy: "PEPBIG", level: $0, start: now - 3600, end: now + 3600)
            }
            try await fake.seed(seed)
            let entries = try await client(fake).onCalls(email: "alice@x.com", now: now)
            #expect(entries.count == 250)
            #expect(Set(entries.map(\.level)) == Set(1...250))
            #expect(entries.allSatisfy { $0.escalationPolicyName == "Big" && $0.start == now - 3600 })
            let pages = try await fake.requests(path: "/oncalls")
            #expect(pages.map { $0.params["offset"] ?? [] } == [["0"], ["100"], ["200"]])
            #expect(pages.allSatisfy { $0.params["limit"] == ["100"] && $0.params["user_ids[]"] == ["PALICE1"] })
            let instant = ISO8601Time.format(now)
            #expect(pages.allSatisfy { $0.params["since"] == [instant] && $0.params["until"] == [instant] })
        }
    }

    @Test func tooManyPages() async throws {
        try await FakePagerDuty.with { fake in
            var seed = Seed()
            seed.users = [.init(id: "PALICE1", name: "Alice", email: "alice@x.com")]
            seed.escalation_policies = [.init(id: "PEPHUGE", name: "Huge")]
            seed.oncalls = (1...2001).map { Seed.Shift(user: "PALICE1", policy: "PEPHUGE", level: $0) }
            try await fake.seed(seed)
            let pd = client(fake, timeout: 30_000)
            let error = await failure { try await pd.onCalls(userID: "PALICE1", now: currentTime()) }
            #expect(error == .malformed("too many pages"))
            #expect(try await fake.requests(path: "/oncalls").count == 20)
        }
    }

    /// Alice: PEPA through schedule PS1 (level 1), PEPB directly (level 1), PEPC through PS2 (level 2);
    /// Bob on PEPA too.
    func seedFilters(_ fake: FakePagerDuty, now: Int64) async throws {
        var seed = Seed()
        seed.users = [
            .init(id: "PALICE1", name: "Alice", email: "alice@x.com"),
            .init(id: "PBOB001", name: "Bob", email: "bob@x.com"),
        ]
        seed.escalation_policies = [
            .init(id: "PEPA", name: "A"), .init(id: "PEPB", name: "B"), .init(id: "PEPC", name: "C"),
        ]
        seed.schedules = [.init(id: "PS1", name: "Primary"), .init(id: "PS2", name: "Secondary")]
        seed.oncalls = [
            .init(user: "PALICE1", policy: "PEPA", schedule: "PS1", level: 1, start: now - 60, end: now + 60),
            .init(user: "PALICE1", policy: "PEPB", level: 1),
            .init(user: "PALICE1", policy: "PEPC", schedule: "PS2", level: 2, start: now - 60, end: now + 60),
            .init(user: "PBOB001", policy: "PEPA", schedule: "PS1", level: 1, start: now - 60, end: now + 60),
        ]
        try await fake.seed(seed)
    }

    @Test func filtersByEscalationPolicyAndSchedule() async throws {
        try await FakePagerDuty.with { fake in
            let now = currentTime()
            try await seedFilters(fake, now: now)
            let pd = client(fake)
            func policies(_ entries: [OnCall]) -> [String] { entries.map(\.escalationPolicyID).sorted() }

            let all = try await pd.onCalls(userID: "PALICE1", now: now)
            #expect(policies(all) == ["PEPA", "PEPB", "PEPC"])
            #expect(all.allSatisfy { $0.userID == "PALICE1" })
            let byPolicy = try await pd.onCalls(userID: "PALICE1", escalationPolicies: ["PEPA"], now: now)
            #expect(
                byPolicy == [
                    OnCall(
                        userID: "PALICE1",
                        escalationPolicyID: "PEPA",
                        escalationPolicyName: "A",
                        scheduleID: "PS1",
                        scheduleName: "Primary",
                        level: 1,
                        start: now - 60,
                        end: now + 60
                    )
                ]
            )
            let bySchedule = try await pd.onCalls(userID: "PALICE1", schedules: ["PS2"], now: now)
            #expect(policies(bySchedule) == ["PEPC"] && bySchedule.first?.level == 2)
            // Both lists: the union (PagerDuty itself would intersect them).
            let union = try await pd.onCalls(
                userID: "PALICE1",
                escalationPolicies: ["PEPB"],
                schedules: ["PS1"],
                now: now
            )
            #expect(policies(union) == ["PEPA", "PEPB"])
            let direct = union.first { $0.escalationPolicyID == "PEPB" }
            #expect(direct?.scheduleID == nil && direct?.start == nil && direct?.end == nil)
            #expect(try await pd.onCalls(userID: "PALICE1", schedules: ["PSNONE"], now: now).isEmpty)
            #expect(try await pd.onCalls(userID: "PNOBODY", now: now).isEmpty)

            let sent = try await fake.requests(path: "/oncalls")
            #expect(sent.count == 6)
            #expect(sent[1].params["escalation_policy_ids[]"] == ["PEPA"] && sent[1].params["schedule_ids[]"] == nil)
            #expect(sent[2].params["schedule_ids[]"] == ["PS2"] && sent[2].params["escalation_policy_ids[]"] == nil)
            #expect(sent[3].params["schedule_ids[]"] == nil && sent[3].params["escalation_policy_ids[]"] == nil)
            #expect(sent.allSatisfy { $0.params["user_ids[]"]?.count == 1 })
        }
    }

    @Test func qualifyingOnTheFakesAnswer() async throws {
        try await FakePagerDuty.with { fake in
            let now = currentTime()
            var seed = Seed()
            seed.users = [.init(id: "PALICE1", name: "Alice", email: "alice@x.com")]
            seed.escalation_policies = [.init(id: "PEPA", name: "A"), .init(id: "PEPB", name: "B")]
            seed.schedules = [.init(id: "PS1", name: "Primary"), .init(id: "PS9", name: "Other")]
            seed.oncalls = [
                .init(user: "PALICE1", policy: "PEPA", schedule: "PS1", level: 2, start: now - 60, end: now + 600),
                .init(user: "PALICE1", policy: "PEPA", schedule: "PS1", level: 1, start: now + 60, end: now + 600),
                .init(user: "PALICE1", policy: "PEPA", schedule: "PS1", level: 1, start: now - 600, end: now - 60),
                .init(user: "PALICE1", policy: "PEPB", level: 1),
            ]
            try await fake.seed(seed)
            let pd = client(fake)
            // Future and past shifts are not on call now.
            let entries = try await pd.onCalls(email: "alice@x.com", now: now)
            #expect(entries.count == 2)
            let pepa = entries.first { $0.escalationPolicyID == "PEPA" }
            #expect(pepa?.level == 2 && pepa?.scheduleID == "PS1" && pepa?.scheduleName == "Primary")
            let open = entries.first { $0.escalationPolicyID == "PEPB" }
            #expect(open?.level == 1 && open?.start == nil && open?.end == nil && open?.scheduleID == nil)
            // An hour later only the permanent one is left.
            let later = try await pd.onCalls(email: "alice@x.com", now: now + 3600)
            #expect(later.map(\.escalationPolicyID) == ["PEPB"])
        }
    }

    @Test func rateLimitedOnceThenAnswered() async throws {
        try await FakePagerDuty.with { fake in
            let now = currentTime()
            try await seedFilters(fake, now: now)
            try await fake.post("ratelimit", #"{"path": "/oncalls", "count": 1, "retry_after": 1}"#)
            let clock = ContinuousClock()
            let start = clock.now
            // A deadline far past the one-second wait: under load (AddressSanitizer, every suite at
            // once) the first answer alone took over 2 s, and the client rightly gave up the wait.
            let entries = try await client(fake, timeout: 15_000).onCalls(email: "alice@x.com", now: now)
            let elapsed = clock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            #expect(entries.count == 3)
            #expect(seconds >= 0.95 && seconds < 10, "waited \(seconds) s")
            let sent = try await fake.requests(path: "/oncalls")
            #expect(sent.map(\.status) == [429, 200])
        }
    }

    @Test func rateLimitedUntilTheDeadline() async throws {
        try await FakePagerDuty.with { fake in
            try await seedFilters(fake, now: currentTime())
            try await fake.post("ratelimit", #"{"path": "*", "retry_after": 1}"#)
            let (error, seconds) = await timed {
                await failure {
                    try await client(fake, timeout: 4500).onCalls(email: "alice@x.com", now: currentTime())
                }
            }
            // Rate-limited to the end; under load the last retry may still be in flight when the
            // deadline comes, and then the deadline is the answer: both are the client giving up
            // in time, after waiting as told (the tries below).
            #expect(
                error == .rateLimited(retryAfterSeconds: 1) || error == .timedOut(milliseconds: 4500),
                "\(String(describing: error))"
            )
            // It waits while a wait still fits before the deadline: two to five tries, depending on
            // how fast a loaded machine answers each one (never one, never after the deadline).
            #expect(seconds >= 0.95 && seconds <= 15, "gave up after \(seconds) s")
            #expect((2...5).contains(try await fake.requests(path: "/users").count))
            expectNoToken(error)

            // A wait longer than the deadline: no retry at all.
            try await fake.post("ratelimit", #"{"path": "*", "retry_after": 30}"#)
            let (long, quick) = await timed {
                await failure { try await client(fake, timeout: 2500).userID(email: "alice@x.com") }
            }
            #expect(long == .rateLimited(retryAfterSeconds: 30))
            #expect(quick < 10, "gave up after \(quick) s")  // a retry would wait the 30 s
        }
    }

    @Test func badToken() async throws {
        try await FakePagerDuty.with { fake in
            let wrong = "u+WRONG-sekrit-4711"
            let pd = client(fake, token: wrong)
            let error = await failure { try await pd.userID(email: "alice@x.com") }
            #expect(error == .unauthorized)
            expectNoToken(error, wrong)
            let pinged = await pd.ping()
            #expect(pinged == .unauthorized)
            expectNoToken(pinged, wrong)
            #expect(await client(fake).ping() == nil)
            // A token that cannot be a header value is not sent at all.
            let broken = await failure { try await client(fake, token: "abc\r\nX-Evil: 1").userID(email: "a@x.com") }
            guard case .transport(let why) = broken else {
                Issue.record("\(String(describing: broken))")
                return
            }
            #expect(why.hasPrefix("not sent: pagerduty.token"))
            let sent = try await fake.requests()
            #expect(sent.count == 3, "the bad token was not sent")
        }
    }

    /// A redirect is never followed: the origin it names (here a second fake where the user is on
    /// call) is not asked, and the answer is an error that sends the request to people.
    @Test func redirectIsNotFollowed() async throws {
        try await FakePagerDuty.with { elsewhere in
            var seed = Seed()
            seed.users = [.init(id: "PALICE1", name: "Alice", email: "alice@x.com")]
            seed.escalation_policies = [.init(id: "PEP1", name: "Ops")]
            seed.oncalls = [.init(user: "PALICE1", policy: "PEP1")]
            try await elsewhere.seed(seed)
            try await FakePagerDuty.with { fake in
                for status in [301, 302, 303, 307, 308] {
                    try await fake.post(
                        "down",
                        #"{"mode": "redirect", "status": \#(status), "location": "\#(elsewhere.url)"}"#
                    )
                    let pd = client(fake)
                    let lookup = await failure { try await pd.onCalls(userID: "PALICE1", now: currentTime()) }
                    guard case .http(let answered, let message) = lookup else {
                        Issue.record("a \(status) gave \(String(describing: lookup))")
                        continue
                    }
                    #expect(answered == status)
                    #expect(message.contains("not followed") && message.contains("pagerduty.api_url"))
                    #expect(await failure { try await pd.userID(email: "alice@x.com") } != nil)
                    expectNoToken(lookup)
                }
                #expect(try await fake.requests().count == 10)
            }
            #expect(try await elsewhere.requests().isEmpty, "the redirect's target was asked")
        }
    }

    @Test func serviceDown() async throws {
        try await FakePagerDuty.with { fake in
            try await fake.post("down", #"{"mode": "503"}"#)
            let pd = client(fake)
            let error = await failure { try await pd.onCalls(userID: "PALICE1", now: currentTime()) }
            #expect(error == .http(status: 503, message: "Service Unavailable"))
            #expect(await pd.ping() == .http(status: 503, message: "Service Unavailable"))
            expectNoToken(error)

            // PagerDuty's message and details are kept (escaped); a token in them is not.
            try await fake.post(
                "down",
                """
                {"mode": "503", "status": 400, "body": {"error": {"message": "Invalid Input Provided",
                  "code": 2001, "errors": ["Token pd-fake-token is\\nodd", "Offset too large"]}}}
                """
            )
            let detailed = await failure { try await pd.userID(email: "alice@x.com") }
            #expect(
                detailed
                    == .http(
                        status: 400,
                        message: "Invalid Input Provided: Token <redacted> is\\nodd; Offset too large"
                    )
            )
            expectNoToken(detailed)

            // Not PagerDuty's error object: the reason phrase.
            try await fake.post("down", #"{"mode": "503", "status": 502, "body": "<html>bad gateway</html>"}"#)
            #expect(
                await failure { try await pd.userID(email: "alice@x.com") }
                    == .http(status: 502, message: "Bad Gateway")
            )
        }
    }

    @Test func malformedAnswers() async throws {
        try await FakePagerDuty.with { fake in
            let pd = client(fake)
            try await fake.post("down", #"{"mode": "503", "status": 200, "body": "not json"}"#)
            #expect(
                await failure { try await pd.onCalls(userID: "PALICE1", now: currentTime()) }
                    == .malformed("/oncalls: the body is not JSON")
            )
            try await fake.post(
                "down",
                #"{"mode": "503", "status": 200, "body": {"oncalls": [{"user": {"id": "PALICE1"}}], "more": false}}"#
            )
            #expect(
                await failure { try await pd.onCalls(userID: "PALICE1", now: currentTime()) }
                    == .malformed("/oncalls: no \"oncalls[0].escalation_policy\"")
            )
            try await fake.post("down", #"{"mode": "503", "status": 200, "body": {"users": "alice", "more": false}}"#)
            #expect(
                await failure { try await pd.userID(email: "alice@x.com") }
                    == .malformed("/users: \"users\" is not the documented shape")
            )
            try await fake.post("down", #"{"mode": "503", "status": 200, "body": {"oncalls": [], "more": true}}"#)
            #expect(
                await failure { try await pd.onCalls(userID: "PALICE1", now: currentTime()) }
                    == .malformed("/oncalls: \"more\" is true on an empty page")
            )
            try await fake.post("down", #"{"mode": "503", "status": 200, "body": [1, 2]}"#)
            #expect(await pd.ping() == .malformed("/abilities: the body is not a JSON object"))
        }
    }

    @Test func hangingServiceTimesOut() async throws {
        try await FakePagerDuty.with { fake in
            try await fake.post("down", #"{"mode": "hang"}"#)
            let (error, seconds) = await timed {
                await failure {
                    try await client(fake, timeout: 1000).onCalls(email: "alice@x.com", now: currentTime())
                }
            }
            #expect(error == .timedOut(milliseconds: 1000))
            #expect(seconds >= 0.95 && seconds <= 10, "took \(seconds) s")
            let (pinged, pingSeconds) = await timed { await client(fake, timeout: 800).ping() }
            #expect(pinged == .timedOut(milliseconds: 800))
            // The fake hangs for ever: the bound catches a missing deadline, not a slow machine.
            #expect(pingSeconds <= 10, "took \(pingSeconds) s")
            try await fake.post("up", "{}")
        }
    }

    @Test func oneDeadlineForEmailAndOnCalls() async throws {
        try await FakePagerDuty.with { fake in
            try await seedFilters(fake, now: currentTime())
            // The user lookup spends a second in a 429 wait; the on-call lookup then hangs.
            try await fake.post("ratelimit", #"{"path": "/users", "count": 1, "retry_after": 1}"#)
            try await fake.post("down", #"{"mode": "slow", "delay": 10}"#)
            let (error, seconds) = await timed {
                await failure {
                    try await client(fake, timeout: 1500).onCalls(email: "alice@x.com", now: currentTime())
                }
            }
            #expect(error == .timedOut(milliseconds: 1500))
            #expect(seconds >= 1.45 && seconds <= 10, "took \(seconds) s")
        }
    }

    @Test func slowButInTime() async throws {
        try await FakePagerDuty.with { fake in
            try await seedFilters(fake, now: currentTime())
            try await fake.post("down", #"{"mode": "slow", "delay": 0.3}"#)
            // Slow (0.3 s per answer), and well inside a deadline a loaded machine cannot miss.
            let entries = try await client(fake, timeout: 15_000).onCalls(email: "alice@x.com", now: currentTime())
            #expect(entries.count == 3)
        }
    }

    @Test func connectionRefused() async throws {
        // A port nothing listens on: bind one, note it, close it.
        let socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let port = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic -> UInt16 in
                guard bind(socketFD, generic, length) == 0, getsockname(socketFD, generic, &length) == 0 else {
                    return 0
                }
                return UInt16(bigEndian: pointer.pointee.sin_port)
            }
        }
        close(socketFD)
        try #require(port != 0)

        let pd = PagerDutyClient(
            configuration: PagerDutyConfiguration(
                apiURL: "http://127.0.0.1:\(port)",
                token: FakePagerDuty.token,
                // AsyncHTTPClient retries a refused connection until the deadline, then reports the
                // refusal: a short deadline keeps this test short.
                timeoutMilliseconds: 2000
            )
        )
        let (error, seconds) = await timed { await failure { try await pd.userID(email: "alice@x.com") } }
        // The refusal, reported at the deadline; or the backstop's time-out 250 ms later, when
        // the whole test process stalls past it (seen under AddressSanitizer, and with every
        // suite at once). Each call may end either way.
        func refusedOrTimedOut(_ e: PagerDutyError?) -> Bool {
            switch e {
            case .transport(let why)?: why.contains("connection refused by 127.0.0.1:\(port)")
            case .timedOut(milliseconds: 2000)?: true
            default: false
            }
        }
        #expect(refusedOrTimedOut(error), "\(String(describing: error))")
        // An upper bound that only catches a hang: under AddressSanitizer with every suite at once
        // a 10 s deadline took 24 s; the deadline is what counts, and a hang never ends.
        #expect(seconds <= 15, "took \(seconds) s")
        expectNoToken(error)
        // ping answers the same way, within the same deadline (or its backstop's time-out).
        let pinged = await pd.ping()
        #expect(refusedOrTimedOut(pinged), "\(String(describing: pinged))")
    }

    @Test func connectionReset() async throws {
        try await FakePagerDuty.with { fake in
            try await fake.post("down", #"{"mode": "refuse"}"#)
            let error = await failure { try await client(fake, timeout: 1500).userID(email: "alice@x.com") }
            guard case .transport = error else {
                Issue.record("expected .transport, got \(String(describing: error))")
                return
            }
            expectNoToken(error)
        }
    }

    @Test func sendsPagerDutysHeaders() async throws {
        try await FakePagerDuty.with { fake in
            let now = currentTime()
            try await seedFilters(fake, now: now)
            let pd = client(fake)
            _ = try await pd.onCalls(email: "alice@x.com", escalationPolicies: ["PEPA"], now: now)
            #expect(await pd.ping() == nil)
            let sent = try await fake.requests()
            #expect(sent.map(\.path) == ["/users", "/oncalls", "/abilities"])
            for request in sent {
                #expect(request.accept == "application/vnd.pagerduty+json;version=2" && request.accept_v2)
                #expect(request.authorization == "Token token=pd-fake-token")
                #expect(request.status == 200)
            }
        }
    }
}
