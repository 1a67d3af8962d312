import Testing
import WritExpr

@testable import WritSlack

/// The pure protocol logic, event by event, with a fixed clock and seed.
@Suite("Socket Mode state machine")
struct SocketModeStateMachineTests {
    typealias Machine = SocketModeStateMachine
    let t0 = ContinuousClock.now

    func at(_ seconds: Double) -> ContinuousClock.Instant { t0 + .milliseconds(Int64(seconds * 1000)) }

    func machine(_ adjust: (inout SocketModeClient.Options) -> Void = { _ in }) -> Machine {
        var options = SocketModeClient.Options()
        adjust(&options)
        return Machine(options: options, seed: 42)
    }

    /// Starts `machine` and brings connection 1 to hello at t0.
    func live(_ machine: inout Machine) {
        #expect(machine.start(now: t0).contains(.connect(1)))
        #expect(machine.handle(.upgraded(1), now: t0).isEmpty)
        _ = machine.handle(.message(1, .hello(connections: 1)), now: t0)
    }

    func envelope(_ id: String, type: String = "events_api", payload: JSONValue = .object([:])) -> SocketModeMessage {
        .envelope(
            SocketModeEnvelope(
                id: id,
                type: type,
                payload: payload,
                acceptsResponsePayload: false,
                retryAttempt: 0,
                retryReason: ""
            )
        )
    }

    func delays(_ actions: [Machine.Action]) -> [Duration] {
        actions.compactMap { if case .connectLater(_, let after) = $0 { return after } else { return nil } }
    }

    func tokens(_ actions: [Machine.Action]) -> [Int] {
        actions.compactMap { if case .connectLater(let token, _) = $0 { return token } else { return nil } }
    }

    func withoutLogs(_ actions: [Machine.Action]) -> [Machine.Action] {
        actions.filter { if case .log = $0 { return false } else { return true } }
    }

    // MARK: - Messages

    @Test func parsesSlackMessages() {
        #expect(
            SocketModeMessage.parse(Array(#"{"type": "hello", "num_connections": 2}"#.utf8)) == .hello(connections: 2)
        )
        #expect(
            SocketModeMessage.parse(Array(#"{"type": "disconnect", "reason": "warning", "debug_info": {}}"#.utf8))
                == .disconnect(reason: "warning")
        )
        let text = #"""
            {"envelope_id": "e-1", "type": "events_api", "payload": {"event_id": "Ev1"},
             "accepts_response_payload": false, "retry_attempt": 2, "retry_reason": "timeout"}
            """#
        #expect(
            SocketModeMessage.parse(Array(text.utf8))
                == .envelope(
                    SocketModeEnvelope(
                        id: "e-1",
                        type: "events_api",
                        payload: .object(["event_id": "Ev1"]),
                        acceptsResponsePayload: false,
                        retryAttempt: 2,
                        retryReason: "timeout"
                    )
                )
        )
        #expect(SocketModeMessage.parse(Array(#"{"type": "new_thing"}"#.utf8)) == .other(type: "new_thing"))
        for bad in ["", "[1]", "{\"a\": 1}", "{\"type\": \"hello\"", "{\"envelope_id\": \"\"}"] {
            guard case .malformed = SocketModeMessage.parse(Array(bad.utf8)) else {
                Issue.record("\(bad) parsed")
                continue
            }
        }
    }

    @Test func acknowledgementIsValidJSONForAnyID() throws {
        for id in ["e-1", "a\"b\\c", "line\nbreak\u{1}", "ünï"] {
            let ack = SocketModeEnvelope(
                id: id,
                type: "x",
                payload: .null,
                acceptsResponsePayload: false,
                retryAttempt: 0,
                retryReason: ""
            ).acknowledgement
            #expect(try JSONValue.parse(Array(ack.utf8)).get() == .object(["envelope_id": .string(id)]))
        }
    }

    @Test func slashCommandPayloadBecomesFormFields() {
        let payload: JSONValue = .object([
            "command": "/writ", "text": "root db1", "is_enterprise_install": false, "n": 3, "nested": .object([:]),
        ])
        #expect(
            SocketModeEnvelope.formFields(payload)
                == ["command": "/writ", "text": "root db1", "is_enterprise_install": "false", "n": "3"]
        )
    }

    @Test func recentKeysForgetTheOldestFirst() {
        var keys = RecentKeys(capacity: 3)
        for key in ["a", "b", "c", "a", "d"] { keys.insert(key) }
        #expect(!keys.contains("a"))
        #expect(keys.contains("b") && keys.contains("c") && keys.contains("d"))
    }

    // MARK: - Envelopes

    @Test func anEnvelopeIsAcknowledgedBeforeItIsHandedOn() {
        var m = machine()
        live(&m)
        let payload: JSONValue = .object(["event_id": "Ev1", "type": "event_callback"])
        let actions = withoutLogs(m.handle(.message(1, envelope("e-1", payload: payload)), now: at(1)))
        #expect(actions == [.send(1, #"{"envelope_id":"e-1"}"#), .deliver(.event(payload))])
        #expect(
            withoutLogs(m.handle(.message(1, envelope("e-2", type: "interactive", payload: ["x"])), now: at(1)))
                == [.send(1, #"{"envelope_id":"e-2"}"#), .deliver(.interactive(["x"]))]
        )
        #expect(
            withoutLogs(
                m.handle(
                    .message(1, envelope("e-3", type: "slash_commands", payload: .object(["text": "t"]))),
                    now: at(1)
                )
            ) == [.send(1, #"{"envelope_id":"e-3"}"#), .deliver(.slashCommand(["text": "t"]))]
        )
        #expect(
            withoutLogs(m.handle(.message(1, envelope("e-4", type: "hello_world")), now: at(1))) == [
                .send(1, #"{"envelope_id":"e-4"}"#)
            ]
        )
        #expect(m.statistics.envelopesReceived == 4)
        #expect(m.statistics.envelopesAcked == 4)
    }

    @Test func aRepeatedEnvelopeIsAcknowledgedButNotHandedOnAgain() {
        var m = machine()
        live(&m)
        let payload: JSONValue = .object(["event_id": "Ev1"])
        _ = m.handle(.message(1, envelope("e-1", payload: payload)), now: at(1))
        // The same envelope again (a retry), then the same event in another envelope.
        #expect(
            withoutLogs(m.handle(.message(1, envelope("e-1", payload: payload)), now: at(4))) == [
                .send(1, #"{"envelope_id":"e-1"}"#)
            ]
        )
        #expect(
            withoutLogs(m.handle(.message(1, envelope("e-9", payload: payload)), now: at(5))) == [
                .send(1, #"{"envelope_id":"e-9"}"#)
            ]
        )
        #expect(m.statistics.duplicatesDropped == 2)
        #expect(m.statistics.envelopesAcked == 3)
    }

    // MARK: - Disconnects

    @Test func refreshIsMakeBeforeBreak() {
        var m = machine()
        live(&m)
        let actions = withoutLogs(m.handle(.message(1, .disconnect(reason: "refresh_requested")), now: at(100)))
        #expect(actions == [.connect(2)])
        #expect(m.status == .connected(connections: 1))
        // A second notice while the replacement is on its way opens nothing more.
        #expect(withoutLogs(m.handle(.message(1, .disconnect(reason: "warning")), now: at(100.1))).isEmpty)
        // The old connection still works meanwhile.
        #expect(m.handle(.message(1, envelope("e-1")), now: at(100.2)).contains(.send(1, #"{"envelope_id":"e-1"}"#)))
        _ = m.handle(.upgraded(2), now: at(100.3))
        let hello = withoutLogs(m.handle(.message(2, .hello(connections: 2)), now: at(100.35)))
        #expect(hello == [.close(1, graceful: true)])
        #expect(m.statistics.lastRecovery == .milliseconds(350))
        #expect(m.statistics.reconnects == 1)
        #expect(m.status == .connected(connections: 1))
        // The old socket's close is expected: nothing more happens.
        #expect(m.handle(.closed(1, why: "closed"), now: at(101)).isEmpty)
    }

    @Test func theOldConnectionClosingFirstIsNoLoss() {
        var m = machine()
        live(&m)
        _ = m.handle(.message(1, .disconnect(reason: "warning")), now: at(100))
        // Slack closes the old socket before the new one is up: the replacement is already underway.
        #expect(withoutLogs(m.handle(.closed(1, why: "close frame"), now: at(110))).isEmpty)
        _ = m.handle(.upgraded(2), now: at(110.5))
        #expect(withoutLogs(m.handle(.message(2, .hello(connections: 1)), now: at(111))).isEmpty)
        #expect(m.status == .connected(connections: 1))
    }

    @Test func tooManyWebsocketsWaitsTheConfiguredDelay() {
        var m = machine { $0.tooManyWebsocketsDelay = .seconds(60) }
        live(&m)
        let actions = withoutLogs(m.handle(.message(1, .disconnect(reason: "too_many_websockets")), now: at(5)))
        #expect(actions.first == .close(1, graceful: true))
        #expect(delays(actions) == [.seconds(60)])
        #expect(m.status == .reconnecting(reason: "too_many_websockets"))
        #expect(m.handle(.closed(1, why: "closed"), now: at(5.1)).isEmpty)
        #expect(m.handle(.connectDue(token: 999), now: at(30)).isEmpty)
        #expect(m.handle(.connectDue(token: tokens(actions).first ?? -1), now: at(65)) == [.connect(2)])
    }

    @Test func tooManyWebsocketsOnAReplacementKeepsTheOldConnectionUntilTheDelay() {
        var m = machine { $0.tooManyWebsocketsDelay = .seconds(60) }
        live(&m)
        _ = m.handle(.message(1, .disconnect(reason: "refresh_requested")), now: at(100))
        _ = m.handle(.upgraded(2), now: at(100.1))
        let actions = withoutLogs(m.handle(.message(2, .disconnect(reason: "too_many_websockets")), now: at(100.2)))
        #expect(actions.first == .close(2, graceful: true))
        #expect(delays(actions) == [.seconds(60)])
        // The draining one closing does not cut the wait short.
        #expect(withoutLogs(m.handle(.closed(1, why: "grace over"), now: at(110))).isEmpty)
    }

    @Test func linkDisabledStopsForGood() {
        var m = machine()
        live(&m)
        let actions = m.handle(.message(1, .disconnect(reason: "link_disabled")), now: at(5))
        #expect(withoutLogs(actions) == [.close(1, graceful: true), .stop])
        #expect(
            actions.contains { if case .log(.error, let line) = $0 { line.contains("link_disabled") } else { false } }
        )
        guard case .stopped(let reason) = m.status else {
            Issue.record("status \(m.status)")
            return
        }
        #expect(reason.contains("turn Socket Mode on"))
        #expect(m.handle(.closed(1, why: "closed"), now: at(6)).isEmpty)
        #expect(m.handle(.tick, now: at(100)).isEmpty)
        #expect(m.handle(.upgraded(7), now: at(100)) == [.close(7, graceful: false)])
    }

    @Test func anyOtherDisconnectReconnectsWithBackoff() {
        var m = machine()
        live(&m)
        let actions = withoutLogs(m.handle(.message(1, .disconnect(reason: "socket_mode_outage")), now: at(5)))
        #expect(actions.first == .close(1, graceful: true))
        let delay = delays(actions).first ?? .zero
        #expect(delay >= .milliseconds(750) && delay <= .milliseconds(1250))
        #expect(m.status == .reconnecting(reason: "disconnect: socket_mode_outage"))
    }

    // MARK: - Failures

    @Test func backoffDoublesUpToTheCapWithJitterAndResetsOnHello() {
        var m = machine {
            $0.backoffBase = .seconds(1)
            $0.backoffCap = .seconds(30)
        }
        _ = m.start(now: t0)
        var id = 1
        var now = 0.0
        for n in 0..<8 {
            let actions = m.handle(
                .connectFailed(id, .http(method: "Socket Mode handshake", status: 401)),
                now: at(now)
            )
            guard let delay = delays(actions).first, let token = tokens(actions).first else {
                Issue.record("no retry after failure \(n)")
                return
            }
            let nominal = min(Duration.seconds(1) * (1 << (n + 1)), .seconds(30))
            #expect(delay >= nominal * 0.75 && delay <= nominal * 1.25, "failure \(n + 1): \(delay)")
            now += 40
            id += 1
            #expect(m.handle(.connectDue(token: token), now: at(now)) == [.connect(id)])
        }
        #expect(m.statistics.connectFailures == 8)
        _ = m.handle(.upgraded(id), now: at(now))
        _ = m.handle(.message(id, .hello(connections: 1)), now: at(now))
        #expect(m.failures == 0)
        let lost = m.handle(.closed(id, why: "reset"), now: at(now + 1))
        let delay = delays(lost).first ?? .zero
        #expect(delay >= .milliseconds(750) && delay <= .milliseconds(1250))
    }

    @Test func aPermanentErrorIsLoggedAsAnError() {
        var m = machine()
        _ = m.start(now: t0)
        let actions = m.handle(.connectFailed(1, .api(method: "apps.connections.open", code: "invalid_auth")), now: t0)
        #expect(
            actions.contains { if case .log(.error, let line) = $0 { line.contains("invalid_auth") } else { false } }
        )
        #expect(m.status == .reconnecting(reason: "Slack apps.connections.open: invalid_auth"))
    }

    @Test func pingsAndDeadConnections() {
        var m = machine {
            $0.pingInterval = .seconds(10)
            $0.deadAfter = .seconds(25)
        }
        live(&m)
        #expect(m.handle(.tick, now: at(5)).isEmpty)
        #expect(m.handle(.tick, now: at(10)) == [.ping(1)])
        _ = m.handle(.alive(1), now: at(10.1))  // the pong
        #expect(m.handle(.tick, now: at(20)) == [.ping(1)])
        // No pong, nothing else: dead 25 s after the last frame, dropped without a handshake.
        #expect(m.handle(.tick, now: at(30)) == [.ping(1)])
        let actions = withoutLogs(m.handle(.tick, now: at(35.1)))
        #expect(actions.first == .close(1, graceful: false))
        #expect(delays(actions).count == 1)
        guard case .reconnecting(let reason) = m.status else {
            Issue.record("status \(m.status)")
            return
        }
        #expect(reason.contains("dead"))
    }

    @Test func noHelloInTimeClosesTheSocket() {
        var m = machine { $0.helloTimeout = .seconds(10) }
        _ = m.start(now: t0)
        _ = m.handle(.upgraded(1), now: at(1))
        #expect(withoutLogs(m.handle(.tick, now: at(10.5))).isEmpty)
        let actions = withoutLogs(m.handle(.tick, now: at(11)))
        #expect(actions.first == .close(1, graceful: false))
        #expect(delays(actions).count == 1)
        #expect(m.failures == 1)
    }

    @Test func aHandshakeThatNeverEndsIsGivenUp() {
        var m = machine { $0.helloTimeout = .seconds(10) }
        _ = m.start(now: t0)
        #expect(withoutLogs(m.handle(.tick, now: at(39))).isEmpty)
        let actions = withoutLogs(m.handle(.tick, now: at(41)))
        #expect(actions.first == .close(1, graceful: false))
        #expect(delays(actions).count == 1)
        // Its late success is closed.
        #expect(m.handle(.upgraded(1), now: at(42)) == [.close(1, graceful: false)])
    }

    @Test func statusFollowsTheConnection() {
        var m = machine()
        #expect(m.status == .starting)
        _ = m.start(now: t0)
        #expect(m.status == .starting)
        _ = m.handle(.upgraded(1), now: t0)
        _ = m.handle(.message(1, .hello(connections: 1)), now: t0)
        #expect(m.status == .connected(connections: 1))
        _ = m.handle(.closed(1, why: "connection lost (no close frame)"), now: at(3))
        #expect(m.status == .reconnecting(reason: "connection lost: connection lost (no close frame)"))
    }

    @Test func anotherProcessOnTheSameAppIsReported() {
        var m = machine()
        _ = m.start(now: t0)
        _ = m.handle(.upgraded(1), now: t0)
        let actions = m.handle(.message(1, .hello(connections: 3)), now: t0)
        #expect(
            actions.contains {
                if case .log(.notice, let line) = $0 { line.contains("another process") } else { false }
            }
        )
    }

    // MARK: - URLs

    @Test func socketModeURLs() throws {
        let slack = try SocketModeEndpoint(parsing: "wss://wss-primary.slack.com/link/?ticket=abc&app_id=A1")
        #expect(slack.secure && slack.host == "wss-primary.slack.com" && slack.port == 443)
        #expect(slack.target == "/link/?ticket=abc&app_id=A1")
        #expect(slack.hostHeader == "wss-primary.slack.com")
        #expect(slack.logDescription == "wss://wss-primary.slack.com/link/")

        let fake = try SocketModeEndpoint(parsing: "ws://127.0.0.1:8080/link/?ticket=x")
        #expect(!fake.secure && fake.host == "127.0.0.1" && fake.port == 8080 && fake.hostHeader == "127.0.0.1:8080")
        let v6 = try SocketModeEndpoint(parsing: "ws://[::1]:9/x")
        #expect(v6.host == "::1" && v6.port == 9 && v6.hostHeader == "[::1]:9")
        #expect(try SocketModeEndpoint(parsing: "ws://LOCALHOST?t=1").target == "/?t=1")
        #expect(try SocketModeEndpoint(parsing: "WSS://Slack.COM:8443").hostHeader == "slack.com:8443")

        for refused in [
            "ws://socket.example.com/link/", "ws://10.0.0.1/", "ws://128.0.0.1/", "ws://127.0.0.256/", "wss://1.2.3.4/",
            "wss://[2001:db8::1]/",
            "https://slack.com/", "wss://slack.com/a b", "wss://slack.com/\r\nX: y", "wss://user@slack.com/",
            "wss://slack.com:0/", "wss://slack.com:70000/", "wss:///link", "slack.com", "wss://[::1/",
        ] {
            #expect(throws: SlackError.self, "\(refused)") { try SocketModeEndpoint(parsing: refused) }
        }
    }

    @Test func tickIntervalFollowsTheShortestTimeout() {
        #expect(SocketModeClient.tickInterval(SocketModeClient.Options()) == .seconds(1))
        var quick = SocketModeClient.Options()
        quick.pingInterval = .milliseconds(300)
        #expect(SocketModeClient.tickInterval(quick) == .milliseconds(60))
    }
}
