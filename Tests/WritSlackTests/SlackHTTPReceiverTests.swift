import AsyncHTTPClient
import Glibc
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization
import Testing
import WritExpr
import WritIntegrations

@testable import WritSlack

/// The HTTP-mode receiver on 127.0.0.1, with Tests/Fakes/fake_slack.py delivering Slack's signed
/// requests to it (`/_fake/http/deliver`) and recording the answers.
@Suite("SlackHTTPReceiver with the fake delivering", .serialized)
struct SlackHTTPReceiverTests {
    /// What the handler was given.
    final class Inbox: Sendable {
        private let items = Mutex<[SlackInbound]>([])

        func add(_ item: SlackInbound) { items.withLock { $0.append(item) } }

        var all: [SlackInbound] { items.withLock { $0 } }

        /// Waits (polling) until `count` items arrived or `seconds` passed; what arrived.
        func wait(count: Int = 1, seconds: Double = 5) async -> [SlackInbound] {
            let clock = ContinuousClock()
            let giveUp = clock.now + .milliseconds(Int(seconds * 1000))
            while all.count < count && clock.now < giveUp {
                try? await Task.sleep(for: .milliseconds(20))
            }
            return all
        }
    }

    /// Every line logged, with its level.
    final class LogLines: Sendable {
        private let lines = Mutex<[(Logger.Level, String)]>([])
        func add(_ level: Logger.Level, _ line: String) { lines.withLock { $0.append((level, line)) } }
        var all: [(Logger.Level, String)] { lines.withLock { $0 } }
        func at(_ level: Logger.Level) -> [String] { all.filter { $0.0 == level }.map(\.1) }
    }

    struct CapturingLogHandler: LogHandler {
        let sink: LogLines
        var metadata: Logger.Metadata = [:]
        var metadataProvider: Logger.MetadataProvider?
        var logLevel: Logger.Level = .trace

        func log(event: LogEvent) {
            let fields = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            sink.add(event.level, ([event.message.description] + fields).joined(separator: " "))
        }

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
    }

    /// Seconds added to the receiver's clock (to replay a request later).
    final class Skew: Sendable {
        let seconds = Atomic<Int64>(0)
    }

    struct Running {
        let port: Int
        let inbox: Inbox
        let log: LogLines
        let skew: Skew

        func url(_ path: String, scheme: String = "http") -> String { "\(scheme)://127.0.0.1:\(port)\(path)" }
    }

    /// Runs `body` with a receiver started on a free port and stopped afterwards.
    static func withReceiver<T>(
        maxBodyBytes: Int = 1 << 20,
        requestTimeoutSeconds: Int = 10,
        maxConnections: Int = 256,
        tls: (certificate: String, key: String)? = nil,
        handlerDelay: Duration = .zero,
        _ body: (Running) async throws -> T
    ) async throws -> T {
        let inbox = Inbox()
        let log = LogLines()
        let skew = Skew()
        let receiver = SlackHTTPReceiver(
            configuration: .init(
                port: 0,
                signingSecret: FakeSlack.signingSecret,
                tlsCertificatePath: tls?.certificate,
                tlsKeyPath: tls?.key,
                maxBodyBytes: maxBodyBytes,
                requestTimeoutSeconds: requestTimeoutSeconds,
                maxConnections: maxConnections,
                clock: { Int64(time(nil)) + skew.seconds.load(ordering: .relaxed) }
            ),
            logger: Logger(label: "test.slack.http") { _ in CapturingLogHandler(sink: log) },
            handler: { inbound in
                inbox.add(inbound)
                if handlerDelay > .zero { try? await Task.sleep(for: handlerDelay) }
            }
        )
        let port = try await receiver.start()
        do {
            let result = try await body(Running(port: port, inbox: inbox, log: log, skew: skew))
            await receiver.stop()
            return result
        } catch {
            await receiver.stop()
            throw error
        }
    }

    /// `/_fake/http/deliver` with `fields` plus the target URL.
    static func deliver(_ fake: FakeSlack, to url: String, _ fields: String) async throws -> JSONValue {
        try await fake.control("http/deliver", #"{"url": "\#(url)", \#(fields)}"#)
    }

    /// Sends the request the fake delivered (`delivery`: its bytes and headers, as captured) to
    /// `url` again; the answer's status.
    static func resend(_ delivery: JSONValue, to url: String) async throws -> HTTPResponseStatus {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        if case .object(let headers) = delivery["request"]?["headers"] {
            for (name, value) in headers { request.headers.add(name: name, value: value.stringValue ?? "") }
        }
        let body = try #require(delivery["request"]?["body"]?.stringValue)
        request.body = .bytes(ByteBuffer(string: body))
        return try await HTTPClient.shared.execute(request, timeout: .seconds(10)).status
    }

    static let seed = """
        {"users": [{"id": "U0ALICE001", "email": "alice@example.com"}],
         "channels": [{"id": "C0APPROVE1", "name": "approvals"}]}
        """

    @Test func slashCommand() async throws {
        try await FakeSlack.with { fake in
            try await fake.control("seed", Self.seed)
            try await Self.withReceiver { running in
                let delivery = try await Self.deliver(
                    fake,
                    to: running.url("/slack/commands"),
                    #""kind": "slash_command", "user_id": "U0ALICE001", "command": "/writ", "text": "root db1 30m", "#
                        + #""channel_id": "C0APPROVE1""#
                )
                #expect(delivery["response"]?["status"]?.intValue == 200)
                #expect(delivery["response"]?["body"]?.stringValue == "")
                #expect(delivery["late"]?.boolValue == false)

                let received = await running.inbox.wait()
                guard case .slashCommand(let fields) = try #require(received.first) else {
                    Issue.record("expected a slash command, got \(received)")
                    return
                }
                #expect(received.count == 1)
                #expect(fields["command"] == "/writ")
                #expect(fields["text"] == "root db1 30m")
                #expect(fields["user_id"] == "U0ALICE001")
                #expect(fields["team_id"] == FakeSlack.teamID)
                #expect(fields["channel_id"] == "C0APPROVE1")
                #expect(fields["trigger_id"] == delivery["trigger_id"]?.stringValue)
                let responseURL = try #require(fields["response_url"])
                #expect(responseURL == delivery["response_url"]?.stringValue)

                // The handler's way to answer the user: the payload's response_url.
                let api = SlackWebAPI(configuration: .init(apiURL: fake.url + "/api/", botToken: FakeSlack.botToken))
                try await api.respond(responseURL: responseURL, .object(["text": "request sent"]))
                let responses = try await fake.items("responses")
                #expect(responses.first?["body"]?["text"]?.stringValue == "request sent")
                #expect(responses.first?["kind"]?.stringValue == "commands")
            }
        }
    }

    @Test func blockActions() async throws {
        try await FakeSlack.with { fake in
            try await fake.control("seed", Self.seed)
            let api = SlackWebAPI(configuration: .init(apiURL: fake.url + "/api/", botToken: FakeSlack.botToken))
            let posted = try await api.postMessage(
                channel: "C0APPROVE1",
                text: "alice asks for root",
                blocks: [
                    .object([
                        "type": "actions", "block_id": "decision",
                        "elements": [
                            .object([
                                "type": "button", "action_id": "approve", "value": "req-42",
                                "text": .object(["type": "plain_text", "text": "Approve"]),
                            ])
                        ],
                    ])
                ]
            )
            try await Self.withReceiver { running in
                let delivery = try await Self.deliver(
                    fake,
                    to: running.url("/slack/interactivity"),
                    #""kind": "block_actions", "user_id": "U0ALICE001", "channel_id": "C0APPROVE1", "#
                        + #""message_ts": "\#(posted.ts)", "action_id": "approve""#
                )
                #expect(delivery["response"]?["status"]?.intValue == 200)
                let received = await running.inbox.wait()
                guard case .interactive(let payload) = try #require(received.first) else {
                    Issue.record("expected an interaction, got \(received)")
                    return
                }
                #expect(payload == delivery["payload"])
                #expect(payload["type"]?.stringValue == "block_actions")
                #expect(payload["user"]?["id"]?.stringValue == "U0ALICE001")
                let action = try #require(payload["actions"]?.arrayValue?.first)
                #expect(action["action_id"]?.stringValue == "approve")
                #expect(action["value"]?.stringValue == "req-42")
                #expect(action["block_id"]?.stringValue == "decision")
                #expect(payload["container"]?["message_ts"]?.stringValue == posted.ts)
            }
        }
    }

    @Test func badSignatureIsRefused() async throws {
        try await FakeSlack.with { fake in
            try await Self.withReceiver { running in
                let delivery = try await Self.deliver(
                    fake,
                    to: running.url("/slack/commands"),
                    #""kind": "slash_command", "user_id": "U0ALICE001", "bad_signature": true"#
                )
                #expect(delivery["response"]?["status"]?.intValue == 401)
                let wrongSecret = try await Self.deliver(
                    fake,
                    to: running.url("/slack/interactivity"),
                    #""kind": "view_submission", "user_id": "U0ALICE001", "signing_secret": "not-the-secret""#
                )
                #expect(wrongSecret["response"]?["status"]?.intValue == 401)
                try await Task.sleep(for: .milliseconds(300))
                #expect(running.inbox.all.isEmpty)
                let warnings = running.log.at(.warning)
                #expect(warnings.count == 2, "\(warnings)")
                #expect(warnings.allSatisfy { $0.contains("does not match") })
                #expect(running.log.all.allSatisfy { !$0.1.contains(FakeSlack.signingSecret) })
            }
        }
    }

    @Test func staleTimestampIsRefused() async throws {
        try await FakeSlack.with { fake in
            try await Self.withReceiver { running in
                let old = Int64(time(nil)) - 600
                let delivery = try await Self.deliver(
                    fake,
                    to: running.url("/slack/commands"),
                    #""kind": "slash_command", "user_id": "U0ALICE001", "timestamp": \#(old)"#
                )
                #expect(delivery["response"]?["status"]?.intValue == 401)
                try await Task.sleep(for: .milliseconds(200))
                #expect(running.inbox.all.isEmpty)
                #expect(running.log.at(.warning).count == 1)
                #expect(running.log.at(.warning).first?.contains("5-minute window") == true)
            }
        }
    }

    @Test func replayLaterIsRefused() async throws {
        try await FakeSlack.with { fake in
            try await Self.withReceiver { running in
                let delivery = try await Self.deliver(
                    fake,
                    to: running.url("/slack/commands"),
                    #""kind": "slash_command", "user_id": "U0ALICE001", "text": "once""#
                )
                #expect(delivery["response"]?["status"]?.intValue == 200)
                #expect(await running.inbox.wait().count == 1)

                // The same bytes and headers, captured and sent again six minutes later.
                running.skew.seconds.store(360, ordering: .relaxed)
                #expect(try await Self.resend(delivery, to: running.url("/slack/commands")) == .unauthorized)
                try await Task.sleep(for: .milliseconds(200))
                #expect(running.inbox.all.count == 1)
            }
        }
    }

    /// One signed `/writ` captured and sent again at once (inside the 5-minute window): answered
    /// 200 each time, passed on once (it would file one request each).
    @Test func replayWithinTheWindowIsPassedOnOnce() async throws {
        try await FakeSlack.with { fake in
            try await fake.control("seed", Self.seed)
            try await Self.withReceiver { running in
                let delivery = try await Self.deliver(
                    fake,
                    to: running.url("/slack/commands"),
                    #""kind": "slash_command", "user_id": "U0ALICE001", "command": "/writ", "text": "root 30m INC-1""#
                )
                #expect(delivery["response"]?["status"]?.intValue == 200)
                #expect(await running.inbox.wait().count == 1)
                for _ in 0..<3 {
                    #expect(try await Self.resend(delivery, to: running.url("/slack/commands")) == .ok)
                }
                try await Task.sleep(for: .milliseconds(300))
                #expect(running.inbox.all.count == 1, "a replay was passed on")
                #expect(running.log.all.filter { $0.1.contains("replay") }.count == 3)
            }
        }
    }

    @Test func urlVerificationEchoesTheChallenge() async throws {
        try await FakeSlack.with { fake in
            try await Self.withReceiver { running in
                let challenge = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
                let delivery = try await Self.deliver(
                    fake,
                    to: running.url("/slack/events"),
                    #""kind": "raw", "envelope_type": "events_api", "#
                        + #""payload": {"token": "x", "challenge": "\#(challenge)", "type": "url_verification"}"#
                )
                #expect(delivery["response"]?["status"]?.intValue == 200)
                let body = try #require(delivery["response"]?["body"]?.stringValue)
                #expect(try parseJSON(body) == .object(["challenge": .string(challenge)]))
                try await Task.sleep(for: .milliseconds(200))
                #expect(running.inbox.all.isEmpty)
            }
        }
    }

    @Test func eventRetriesArePassedOn() async throws {
        try await FakeSlack.with { fake in
            try await Self.withReceiver { running in
                let event = #""kind": "event", "event": {"type": "app_mention", "user": "U0ALICE001", "text": "hi"}"#
                let first = try await Self.deliver(fake, to: running.url("/slack/events"), event)
                let retry = try await Self.deliver(
                    fake,
                    to: running.url("/slack/events"),
                    event + #", "retry_num": 1, "retry_reason": "http_timeout""#
                )
                #expect(first["response"]?["status"]?.intValue == 200)
                #expect(retry["response"]?["status"]?.intValue == 200)
                let received = await running.inbox.wait(count: 2)
                #expect(received.count == 2)
                for item in received {
                    guard case .event(let payload) = item else {
                        Issue.record("expected an event, got \(item)")
                        continue
                    }
                    #expect(payload["type"]?.stringValue == "event_callback")
                    #expect(payload["event"]?["type"]?.stringValue == "app_mention")
                }
            }
        }
    }

    @Test func answerDoesNotWaitForTheHandler() async throws {
        try await FakeSlack.with { fake in
            try await Self.withReceiver(handlerDelay: .seconds(5)) { running in
                let delivery = try await Self.deliver(
                    fake,
                    to: running.url("/slack/commands"),
                    #""kind": "slash_command", "user_id": "U0ALICE001""#
                )
                #expect(delivery["response"]?["status"]?.intValue == 200)
                let elapsed = try #require(delivery["response"]?["elapsed"])
                let seconds: Double =
                    switch elapsed {
                    case .number(let d): d
                    case .int(let i): Double(i)
                    default: 99
                    }
                // Before the handler's 5 s are over: the answer does not wait for it. (Not "within
                // 1 s": a loaded machine is slow, and that is not what this checks.)
                #expect(seconds < 4, "answered after \(seconds) s")
                #expect(delivery["late"]?.boolValue == false)
                #expect(await running.inbox.wait().count == 1)
            }
        }
    }

    @Test func oversizedBodyAndWrongRoutes() async throws {
        try await FakeSlack.with { fake in
            try await Self.withReceiver(maxBodyBytes: 2048) { running in
                let big = String(repeating: "x", count: 8000)
                let oversized = try await Self.deliver(
                    fake,
                    to: running.url("/slack/commands"),
                    #""kind": "slash_command", "user_id": "U0ALICE001", "raw_body": "text=\#(big)""#
                )
                #expect(oversized["response"]?["status"]?.intValue == 413)

                let unknown = try await Self.deliver(
                    fake,
                    to: running.url("/slack/other"),
                    #""kind": "slash_command", "user_id": "U0ALICE001""#
                )
                #expect(unknown["response"]?["status"]?.intValue == 404)

                let get = try await HTTPClient.shared.execute(
                    HTTPClientRequest(url: running.url("/slack/commands")),
                    timeout: .seconds(10)
                )
                #expect(get.status == .methodNotAllowed)
                #expect(get.headers.first(name: "Allow") == "POST")

                // Signed correctly, but the payload is not JSON.
                let garbage = try await Self.deliver(
                    fake,
                    to: running.url("/slack/interactivity"),
                    #""kind": "view_closed", "user_id": "U0ALICE001", "raw_body": "payload=%7Bnot-json""#
                )
                #expect(garbage["response"]?["status"]?.intValue == 400)

                try await Task.sleep(for: .milliseconds(200))
                #expect(running.inbox.all.isEmpty)
                // The receiver still serves well-formed requests.
                let fine = try await Self.deliver(
                    fake,
                    to: running.url("/slack/commands"),
                    #""kind": "slash_command", "user_id": "U0ALICE001""#
                )
                #expect(fine["response"]?["status"]?.intValue == 200)
                #expect(await running.inbox.wait().count == 1)
            }
        }
    }

    /// A raw TCP connection to `port` on 127.0.0.1 that sends `text`; the seconds until the server
    /// closed it (nil if it was still open after `seconds`).
    static func secondsUntilClosed(port: Int, sending text: String, within seconds: Int) async throws -> Double? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket: errno \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw HarnessError("connect: errno \(errno)") }
        _ = text.withCString { send(fd, $0, strlen($0), 0) }
        let clock = ContinuousClock()
        let start = clock.now
        var buffer = [UInt8](repeating: 0, count: 512)
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        while clock.now - start < .seconds(seconds) {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count == 0 || (count < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                let elapsed = clock.now - start
                return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }

    /// Connects to 127.0.0.1:`port` from `source` (another loopback address) and sends `text`;
    /// the descriptor, or -1 when the connection failed.
    static func openHalfRequest(port: Int, from source: String, sending text: String) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return -1 }
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        local.sin_addr.s_addr = inet_addr(source)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &local) { l in
            withUnsafePointer(to: &address) { a in
                l.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                } == 0
                    && a.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    } == 0
            }
        }
        guard ok else {
            close(fd)
            return -1
        }
        _ = text.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        return fd
    }

    /// 400 half-open requests from one address (the attack that let 7 of 42 signed requests
    /// through) take that address's share only: every signed request from elsewhere is answered,
    /// and the refusals are logged a few times, not once each.
    @Test func slowlorisFromOneAddressLeavesRoomForSlack() async throws {
        try await FakeSlack.with { fake in
            try await fake.control("seed", Self.seed)
            try await Self.withReceiver(requestTimeoutSeconds: 10) { running in
                var held: [Int32] = []
                defer { for fd in held { close(fd) } }
                for _ in 0..<400 {
                    let fd = Self.openHalfRequest(
                        port: running.port,
                        from: "127.0.0.2",
                        sending: "POST /slack/commands HTTP/1.1\r\nHost: x\r\n"
                    )
                    if fd >= 0 { held.append(fd) }
                }
                try await Task.sleep(for: .milliseconds(300))
                var answered = 0
                for i in 0..<42 {
                    let delivery = try await Self.deliver(
                        fake,
                        to: running.url("/slack/commands"),
                        #""kind": "slash_command", "user_id": "U0ALICE001", "text": "n\#(i)""#
                    )
                    if delivery["response"]?["status"]?.intValue == 200 { answered += 1 }
                }
                #expect(answered == 42, "\(answered) of 42 signed requests answered")
                #expect(await running.inbox.wait(count: 42).count == 42)
                let refusals = running.log.at(.warning).filter { $0.contains("refused a connection") }
                #expect(!refusals.isEmpty && refusals.count <= 2, "\(refusals.count) refusal lines")
                #expect(refusals.first?.contains("127.0.0.2") == true)
            }
        }
    }

    /// A slow client is cut off at the request timeout, not before and not never; past the cap a
    /// connection is closed at once. The timeout is 3 s so that "at once" and "at the timeout"
    /// stay apart on a loaded machine; the upper bounds only catch a client held forever.
    @Test func slowClientsAndTheConnectionCap() async throws {
        try await Self.withReceiver(requestTimeoutSeconds: 3, maxConnections: 2) { running in
            async let first = Self.secondsUntilClosed(
                port: running.port,
                sending: "POST /slack/commands HTTP/1.1\r\nHost: x\r\n",
                within: 15
            )
            async let second = Self.secondsUntilClosed(
                port: running.port,
                sending: "POST /slack/commands HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc",
                within: 15
            )
            try await Task.sleep(for: .milliseconds(300))
            // Both slots are taken: a third connection is closed at once.
            let third = try await Self.secondsUntilClosed(port: running.port, sending: "", within: 3)
            let (a, b) = try await (first, second)
            #expect(third.map { $0 < 2 } == true, "third connection closed after \(String(describing: third))")
            #expect(a.map { $0 > 2.5 && $0 < 14 } == true, "slow headers closed after \(String(describing: a))")
            #expect(b.map { $0 > 2.5 && $0 < 14 } == true, "slow body closed after \(String(describing: b))")
            #expect(running.inbox.all.isEmpty)
        }
    }

    @Test func signatureIsCheckedBeforeTheBodyIsParsed() {
        let now: Int64 = 1_700_000_000
        let garbage = Array("payload=%7Bnot-json".utf8)
        func headers(_ body: [UInt8], secret: String = FakeSlack.signingSecret) -> HTTPHeaders {
            HTTPHeaders([
                ("X-Slack-Request-Timestamp", String(now)),
                ("X-Slack-Signature", SlackSignature.sign(secret: secret, timestamp: String(now), body: body)),
            ])
        }
        let replays = SlackReplayGuard(capacity: 100)
        func decide(_ route: SlackHTTPRoute, _ body: [UInt8], _ headers: HTTPHeaders) -> SlackHTTPDecision {
            SlackHTTPDecision.decide(
                route: route,
                headers: headers,
                body: body,
                secret: FakeSlack.signingSecret,
                now: now,
                replays: replays
            )
        }
        #expect(decide(.interactivity, garbage, headers(garbage, secret: "other")).status == .unauthorized)
        #expect(decide(.interactivity, garbage, HTTPHeaders()).status == .unauthorized)
        #expect(decide(.interactivity, garbage, headers(garbage)).status == .badRequest)
        let duplicate = Array("command=%2Fwrit&command=%2Fother".utf8)
        #expect(decide(.commands, duplicate, headers(duplicate)).status == .badRequest)
        let rateLimited = Array(#"{"type": "app_rate_limited", "minute_rate_limited": 1518467820}"#.utf8)
        let quiet = decide(.events, rateLimited, headers(rateLimited))
        #expect(quiet.status == .ok && quiet.inbound == nil)
        let command = Array("command=%2Fwrit&text=a+b".utf8)
        #expect(
            decide(.commands, command, headers(command)).inbound == .slashCommand(["command": "/writ", "text": "a b"])
        )
        // The same signed request again: answered 200, not passed on.
        let again = decide(.commands, command, headers(command))
        #expect(again.status == .ok && again.inbound == nil && again.refusal?.contains("replay") == true)
    }

    @Test func replayMemoryIsBoundedAndAgesOut() {
        let replays = SlackReplayGuard(capacity: 2)
        #expect(replays.check(signature: "a", timestamp: 1000, now: 1000) == .first)
        #expect(replays.check(signature: "a", timestamp: 1000, now: 1299) == .replay)
        #expect(replays.check(signature: "b", timestamp: 1000, now: 1000) == .first)
        #expect(replays.check(signature: "c", timestamp: 1000, now: 1000) == .full)
        // Once outside the window (where the signature check refuses it anyway), an entry goes.
        #expect(replays.check(signature: "c", timestamp: 1301, now: 1301) == .first)
        #expect(replays.count == 1)
    }

    @Test func https() async throws {
        let directory = "/tmp/writ-slack-tls-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        #expect(mkdir(directory, 0o700) == 0)
        defer {
            unlink(directory + "/cert.pem")
            unlink(directory + "/key.pem")
            rmdir(directory)
        }
        let openssl = [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-days", "1",
            "-keyout", directory + "/key.pem", "-out", directory + "/cert.pem",
        ]
        var pid: pid_t = 0
        var argv: [UnsafeMutablePointer<CChar>?] = openssl.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        try #require(posix_spawnp(&pid, "openssl", &actions, nil, &argv, environ) == 0)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        try #require(status == 0, "openssl failed")
        let certificate = directory + "/cert.pem"
        let key = directory + "/key.pem"

        // Half a TLS setting is refused.
        let half = SlackHTTPReceiver(
            configuration: .init(port: 0, signingSecret: "s", tlsCertificatePath: certificate),
            logger: Logger(label: "test"),
            handler: { _ in }
        )
        await #expect(throws: SlackError.self) { try await half.start() }

        try await Self.withReceiver(tls: (certificate, key)) { running in
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(certificate))
            let client = HTTPClient(
                eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
                configuration: .init(tlsConfiguration: tls)
            )
            do {
                let body = "command=%2Fwrit&text=root+db1&user_id=U0ALICE001"
                let timestamp = String(time(nil))
                var request = HTTPClientRequest(url: running.url("/slack/commands", scheme: "https"))
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
                request.headers.add(name: "X-Slack-Request-Timestamp", value: timestamp)
                request.headers.add(
                    name: "X-Slack-Signature",
                    value: SlackSignature.sign(
                        secret: FakeSlack.signingSecret,
                        timestamp: timestamp,
                        body: Array(body.utf8)
                    )
                )
                request.body = .bytes(ByteBuffer(string: body))
                let response = try await client.execute(request, timeout: .seconds(10))
                #expect(response.status == .ok)
                let received = await running.inbox.wait()
                #expect(received == [.slashCommand(["command": "/writ", "text": "root db1", "user_id": "U0ALICE001"])])

                // Plain HTTP to the TLS port gets no answer.
                await #expect(throws: (any Error).self) {
                    try await HTTPClient.shared.execute(
                        HTTPClientRequest(url: running.url("/slack/commands")),
                        timeout: .seconds(5)
                    )
                }
            } catch {
                try? await client.shutdown()
                throw error
            }
            try await client.shutdown()
        }
    }
}
