import Logging
import Testing
import WritExpr

@testable import WritSlack

/// The Socket Mode client against Tests/Fakes/fake_slack.py over real WebSockets on 127.0.0.1
/// (one fake per test). Serialized: the timing checks are loose, but two cores shared by several
/// fakes would make them looser still.
@Suite("SocketModeClient against the fake", .serialized)
struct SocketModeClientTests {
    static let seed = """
        {"users": [{"id": "U0ALICE001", "email": "alice@example.com", "real_name": "Alice"}],
         "channels": [{"id": "C0APPROVE1", "name": "approvals"}]}
        """

    /// An Events API delivery; `extra` is spliced into the request (e.g. `"retry": [0.5]`).
    static func event(_ text: String, extra: String = "") -> String {
        #"{"kind": "event", "event": {"type": "app_mention", "user": "U0ALICE001", "text": "\#(text)"}"#
            + (extra.isEmpty ? "" : ", " + extra) + "}"
    }

    @Test func helloMeansConnected() async throws {
        try await FakeSlack.with { fake in
            let running = startClient(fake)
            #expect(await eventually { running.client.status == .connected(connections: 1) })
            let sockets = try await fake.sockets()
            #expect(sockets.count == 1)
            #expect(sockets.first?["state"]?.stringValue == "open")
            #expect(running.client.statistics.connectionsOpened == 1)
            #expect(running.client.statistics.reconnects == 0)
            #expect(running.opens.value == 1)
            await running.stop()
            // The single-use ticket is a credential until used: it is not logged.
            let ticket = sockets.first?["ticket"]?.stringValue ?? "?"
            #expect(!running.log.all.contains { $0.message.contains(ticket) })
            #expect(running.log.all.contains { $0.message.contains("/link/") })
        }
    }

    @Test func envelopesAreAcknowledgedAtOnceThenHandled() async throws {
        try await FakeSlack.with { fake in
            try await fake.control("seed", Self.seed)
            // No handler finishes until the gate opens: the acks must not wait for them.
            let gate = Gate()
            let running = startClient(fake, handlerGate: gate)
            #expect(await eventually { running.client.status.isConnected })

            let slash = try await fake.control(
                "socket/deliver",
                #"{"kind": "slash_command", "user_id": "U0ALICE001", "command": "/writ", "#
                    + #""text": "request root on db1", "channel_id": "C0APPROVE1"}"#
            )
            let click = try await fake.control(
                "socket/deliver",
                #"{"kind": "block_actions", "user_id": "U0ALICE001", "channel_id": "C0APPROVE1", "#
                    + #""message_ts": "1700000000.000001", "action_id": "approve", "value": "req-1", "force": true}"#
            )
            let event = try await fake.control("socket/deliver", Self.event("hi"))
            let deliveries = [slash, click, event]
            #expect(deliveries.allSatisfy { $0["delivered"]?.boolValue == true })

            #expect(await eventually(timeout: .seconds(15)) { (try? await fake.items("acks").count) == 3 })
            let acks = try await fake.items("acks")
            #expect(
                Set(acks.compactMap { $0["envelope_id"]?.stringValue })
                    == Set(deliveries.compactMap { $0["envelope_id"]?.stringValue })
            )
            for ack in acks {
                #expect(ack["known"]?.boolValue == true)
                #expect(ack["late"]?.boolValue == false)
                #expect(ack["duplicate"]?.boolValue == false)
                #expect(ack["has_payload"]?.boolValue == false)
            }
            // All three were acknowledged while every handler was still held.
            #expect(running.inbox.all.isEmpty)

            gate.release()
            #expect(await eventually { running.inbox.all.count == 3 })
            var sawSlash = false
            var sawClick = false
            var sawEvent = false
            for inbound in running.inbox.all {
                switch inbound {
                case .slashCommand(let fields):
                    sawSlash = true
                    #expect(fields["command"] == "/writ")
                    #expect(fields["text"] == "request root on db1")
                    #expect(fields["user_id"] == "U0ALICE001")
                    #expect(fields["channel_id"] == "C0APPROVE1")
                    #expect(fields["team_id"] == FakeSlack.teamID)
                    #expect(fields["trigger_id"] == slash["trigger_id"]?.stringValue)
                    #expect(fields["response_url"] == slash["response_url"]?.stringValue)
                    #expect(fields["is_enterprise_install"] == "false")
                case .interactive(let payload):
                    sawClick = true
                    #expect(payload["type"]?.stringValue == "block_actions")
                    #expect(payload["user"]?["id"]?.stringValue == "U0ALICE001")
                    let action = payload["actions"]?.arrayValue?.first
                    #expect(action?["action_id"]?.stringValue == "approve")
                    #expect(action?["value"]?.stringValue == "req-1")
                    #expect(payload["trigger_id"]?.stringValue == click["trigger_id"]?.stringValue)
                case .event(let payload):
                    sawEvent = true
                    #expect(payload["type"]?.stringValue == "event_callback")
                    #expect(payload["event"]?["type"]?.stringValue == "app_mention")
                    #expect(payload["event_id"]?.stringValue == event["event_id"]?.stringValue)
                }
            }
            #expect(sawSlash && sawClick && sawEvent)
            let statistics = running.client.statistics
            #expect(statistics.envelopesReceived == 3)
            #expect(statistics.envelopesAcked == 3)
            #expect(statistics.duplicatesDropped == 0)
            await running.stop()
        }
    }

    @Test func anEnvelopeOfAnotherTypeIsAcknowledgedAndDropped() async throws {
        try await FakeSlack.with { fake in
            let running = startClient(fake)
            #expect(await eventually { running.client.status.isConnected })
            let raw = try await fake.control(
                "socket/deliver",
                #"{"kind": "raw", "envelope_type": "something_new", "payload": {"a": 1}}"#
            )
            #expect(await eventually(timeout: .seconds(15)) { (try? await fake.items("acks").count) == 1 })
            #expect(try await fake.items("acks").first?["envelope_id"] == raw["envelope_id"])
            try await Task.sleep(for: .milliseconds(300))
            #expect(running.inbox.all.isEmpty)
            #expect(running.log.all.contains { $0.message.contains("something_new") })
            await running.stop()
        }
    }

    @Test func anEventDeliveredAgainIsHandledOnce() async throws {
        try await FakeSlack.with { fake in
            try await fake.control("seed", Self.seed)
            let running = startClient(fake)
            #expect(await eventually { running.client.status.isConnected })

            // Acknowledged in time, so the fake (like Slack) does not retry it.
            let event = try await fake.control("socket/deliver", Self.event("once", extra: #""retry": [0.5]"#))
            let envelopeID = event["envelope_id"]?.stringValue ?? "?"
            let eventID = event["event_id"]?.stringValue ?? "?"
            #expect(await eventually { running.inbox.eventIDs == [eventID] })
            try await Task.sleep(for: .seconds(1))
            let envelope = try await fake.items("envelopes?envelope_id=\(envelopeID)").first
            #expect(envelope?["status"]?.stringValue == "acked")
            #expect(envelope?["attempts"]?.arrayValue?.count == 1)

            // The same event again, in a new envelope (as a retry on another connection may come):
            // acknowledged, not handled twice.
            guard let payload = event["payload"] else { throw HarnessError("no payload") }
            let again = try await fake.control(
                "socket/deliver",
                #"{"kind": "raw", "envelope_type": "events_api", "payload": \#(try jsonText(payload))}"#
            )
            #expect(
                await eventually(timeout: .seconds(15)) {
                    (try? await fake.items("acks?envelope_id=\(again["envelope_id"]?.stringValue ?? "?")").count) == 1
                }
            )
            try await Task.sleep(for: .milliseconds(300))
            #expect(running.inbox.eventIDs == [eventID])
            #expect(running.client.statistics.duplicatesDropped == 1)
            #expect(running.client.statistics.envelopesAcked == 2)
            await running.stop()
        }
    }

    /// refresh_requested and warning: the new connection first, then the old one closes; nothing
    /// delivered meanwhile is lost or handled twice. Also measures the recovery time.
    @Test(arguments: ["refresh_requested", "warning"])
    func slackAsksToMove(reason: String) async throws {
        try await FakeSlack.with { fake in
            try await fake.control("seed", Self.seed)
            try await fake.control("config", #"{"refresh_grace": 3, "warning_grace": 3}"#)
            // The replacement's apps.connections.open takes 0.6 s, so envelopes certainly arrive on
            // the old connection after the disconnect.
            let slowOpen = Counter()
            let running = startClient { () throws(SlackError) -> String in
                if slowOpen.value == 1 { try? await Task.sleep(for: .milliseconds(600)) }
                return try await openSocketModeURL(fake)
            }
            #expect(await eventually { running.client.status.isConnected })
            slowOpen.increment()
            let first = try await fake.sockets().first?["id"]?.stringValue ?? "?"

            try await fake.control("socket/disconnect", #"{"reason": "\#(reason)"}"#)
            var sent: [String] = []
            for i in 0..<12 {
                let delivery = try await fake.control("socket/deliver", Self.event("during \(i)"))
                sent.append(delivery["event_id"]?.stringValue ?? "?")
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(await eventually { running.inbox.eventIDs.count >= sent.count })
            try await Task.sleep(for: .milliseconds(300))
            let handled = running.inbox.eventIDs
            #expect(handled.sorted() == sent.sorted(), "every event handled exactly once")
            let envelopes = try await fake.items("envelopes")
            #expect(envelopes.allSatisfy { $0["status"]?.stringValue == "acked" })
            #expect(try await fake.items("acks").allSatisfy { $0["late"]?.boolValue == false })

            let sockets = try await fake.sockets()
            #expect(sockets.count == 2)
            let old = sockets.first { $0["id"]?.stringValue == first }
            let new = sockets.first { $0["id"]?.stringValue != first }
            let disconnectAt = fake.number(old?["disconnects_sent"]?.arrayValue?.first?["at"]) ?? 0
            let oldClosedAt = fake.number(old?["closed_at"]) ?? 0
            let newOpenedAt = fake.number(new?["opened_at"]) ?? .infinity
            #expect(newOpenedAt < oldClosedAt, "make-before-break: the new socket opened before the old closed")
            #expect(oldClosedAt - disconnectAt < 2.5, "the client closed the old socket, not the grace period")
            #expect(old?["client_close_code"] == 1000)
            // Some envelopes went over the old connection after the disconnect, and were handled.
            let onOld = envelopes.filter { envelope in
                envelope["attempts"]?.arrayValue?.contains { $0["connection_id"]?.stringValue == first } == true
            }
            #expect(!onOld.isEmpty)
            #expect(running.log.all.contains { $0.level == .notice && $0.message.contains(reason) })
            #expect(running.client.status == .connected(connections: 1))

            // Recovery without the artificial delay: from the disconnect message to the new hello.
            slowOpen.increment()
            var recoveries: [Duration] = []
            for _ in 0..<5 {
                let before = running.client.statistics.connectionsOpened
                try await fake.control("socket/disconnect", #"{"reason": "\#(reason)"}"#)
                #expect(await eventually { running.client.statistics.connectionsOpened == before + 1 })
                if let recovery = running.client.statistics.lastRecovery { recoveries.append(recovery) }
            }
            recoveries.sort()
            let milliseconds = recoveries.map { recovery in
                let ms = Double(recovery.components.seconds) * 1000 + Double(recovery.components.attoseconds) / 1e15
                return "\((ms * 10).rounded() / 10)"
            }
            let median = milliseconds.isEmpty ? "none" : milliseconds[milliseconds.count / 2]
            print(
                "socket-mode \(reason) recovery: median \(median) ms (runs: \(milliseconds.joined(separator: ", ")) ms)"
            )
            #expect(recoveries.count == 5)
            // Loose (a loaded machine stalls for seconds): catches waiting for a backoff or a timeout.
            #expect(recoveries.allSatisfy { $0 < .seconds(8) })
            await running.stop()
        }
    }

    @Test func tooManyWebsocketsWaitsBeforeConnectingAgain() async throws {
        try await FakeSlack.with { fake in
            try await fake.control("config", #"{"max_connections": 1, "refresh_grace": 1}"#)
            let running = startClient(fake)  // tooManyWebsocketsDelay 1.5 s
            #expect(await eventually { running.client.status.isConnected })

            try await fake.control("socket/disconnect", #"{"reason": "too_many_websockets"}"#)
            #expect(await eventually { running.client.status == .reconnecting(reason: "too_many_websockets") })
            #expect(await eventually { (try? await fake.sockets().count) == 2 && running.client.status.isConnected })
            var sockets = try await fake.sockets()
            let gap = (fake.number(sockets[1]["opened_at"]) ?? 0) - (fake.number(sockets[0]["closed_at"]) ?? 0)
            #expect(gap >= 1.3, "waited \(gap) s")
            #expect(running.opens.value == 2)
            #expect(running.log.all.contains { $0.level == .notice && $0.message.contains("too_many_websockets") })

            // As Slack does it: with the app's connections used up, the replacement opened for a
            // refresh is the one told too_many_websockets; the client waits, then connects again.
            try await fake.control("socket/disconnect", #"{"reason": "refresh_requested"}"#)
            #expect(await eventually { (try? await fake.sockets().count) == 4 && running.client.status.isConnected })
            sockets = try await fake.sockets()
            #expect(sockets[2]["disconnects_sent"]?.arrayValue?.first?["reason"] == "too_many_websockets")
            let secondGap = (fake.number(sockets[3]["opened_at"]) ?? 0) - (fake.number(sockets[2]["closed_at"]) ?? 0)
            #expect(secondGap >= 1.3, "waited \(secondGap) s")
            #expect(running.opens.value == 4)
            await running.stop()
        }
    }

    @Test func linkDisabledStopsForGood() async throws {
        try await FakeSlack.with { fake in
            let running = startClient(fake)
            #expect(await eventually { running.client.status.isConnected })
            try await fake.control("socket/disconnect", #"{"reason": "link_disabled"}"#)
            #expect(await eventually(timeout: .seconds(15)) { running.finished.value == 1 }, "run() returned")
            guard case .stopped(let reason) = running.client.status else {
                Issue.record("status \(running.client.status)")
                return
            }
            #expect(reason.contains("link_disabled") && reason.contains("Socket Mode on"))
            #expect(reason.contains("https://api.slack.com/apps"))
            #expect(running.log.all.contains { $0.level == .error && $0.message.contains("link_disabled") })
            try await Task.sleep(for: .seconds(1))
            #expect(running.opens.value == 1, "no reconnect attempt")
            #expect(try await fake.items("calls?method=apps.connections.open").count == 1)
            #expect(try await fake.sockets().allSatisfy { $0["state"]?.stringValue == "closed" })
            await running.stop()
        }
    }

    @Test func aDroppedConnectionIsReplaced() async throws {
        try await FakeSlack.with { fake in
            try await fake.control("seed", Self.seed)
            let running = startClient(fake)
            #expect(await eventually { running.client.status.isConnected })
            try await fake.control("socket/drop")
            #expect(await eventually { (try? await fake.sockets().count) == 2 && running.client.status.isConnected })
            #expect(running.opens.value == 2, "a fresh URL for the new connection")
            #expect(running.client.statistics.reconnects == 1)
            #expect(running.client.statistics.lastRecovery != nil)
            let event = try await fake.control("socket/deliver", Self.event("after the drop"))
            #expect(await eventually { running.inbox.eventIDs == [event["event_id"]?.stringValue ?? "?"] })
            await running.stop()
        }
    }

    @Test func aFrozenConnectionIsDetectedAsDead() async throws {
        try await FakeSlack.with { fake in
            try await fake.control("seed", Self.seed)
            var options = quickOptions()
            options.deadAfter = .milliseconds(1500)
            let running = startClient(fake, options: options)
            #expect(await eventually { running.client.status.isConnected })
            let clock = ContinuousClock()
            let frozenAt = clock.now
            try await fake.control("socket/freeze")
            // Lost on the frozen socket; Slack retries it, and a retry reaches the new connection.
            let event = try await fake.control(
                "socket/deliver",
                Self.event("while frozen", extra: #""retry": [0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4]"#)
            )
            #expect(await eventually { (try? await fake.sockets().count) == 2 && running.client.status.isConnected })
            let took = clock.now - frozenAt
            #expect(took >= .seconds(1), "not before deadAfter (less a ping interval)")
            #expect(took < .milliseconds(1500) + .seconds(8), "detected within deadAfter and some slack: \(took)")
            // The fake sees the frozen socket closed a moment after the client gave it up.
            #expect(await eventually { (try? await fake.sockets().first?["state"]?.stringValue) == "closed" })
            #expect(running.log.all.contains { $0.level == .warning && $0.message.contains("dead") })

            let eventID = event["event_id"]?.stringValue ?? "?"
            #expect(await eventually { running.inbox.eventIDs == [eventID] })
            try await Task.sleep(for: .milliseconds(800))
            #expect(running.inbox.eventIDs == [eventID], "handled once")
            let envelope = try await fake.items("envelopes?envelope_id=\(event["envelope_id"]?.stringValue ?? "?")")
            #expect(envelope.first?["status"]?.stringValue == "acked")
            #expect((envelope.first?["attempts"]?.arrayValue?.count ?? 0) >= 2)
            await running.stop()
        }
    }

    @Test func handshakeFailuresAreRetriedWithBackoff() async throws {
        try await FakeSlack.with { fake in
            try await fake.control("down", #"{"mode": "503", "scope": "socket"}"#)
            let running = startClient(fake)  // backoff 100 ms doubling to 400 ms
            #expect(await eventually { running.opens.value >= 5 })
            guard case .reconnecting(let reason) = running.client.status else {
                Issue.record("status \(running.client.status)")
                return
            }
            // The fake answers the upgrade 503 and closes; under load the client may see the close
            // before the status line (seen once in a whole-suite run). Both are a failed handshake.
            #expect(reason.contains("503") || reason.contains("closed during the handshake"), "\(reason)")
            let times = try await fake.items("calls?method=apps.connections.open").compactMap { fake.number($0["at"]) }
            let gaps = zip(times.dropFirst(), times).map { $0 - $1 }
            #expect(gaps.allSatisfy { $0 >= 0.07 }, "backoff between attempts: \(gaps)")
            #expect(gaps.allSatisfy { $0 < 2 }, "capped: \(gaps)")

            try await fake.control("up")
            #expect(await eventually { running.client.status.isConnected })
            #expect(running.client.statistics.connectFailures >= 4)
            #expect(running.client.statistics.connectionsOpened == 1)
            await running.stop()
        }
    }

    @Test func aStaleTicketIsRefusedAndAFreshOneFetched() async throws {
        try await FakeSlack.with { fake in
            let calls = Counter()
            let stale = "ws" + fake.url.dropFirst("http".count) + "/link/?ticket=00000000-0000-0000-0000-000000000000"
            let running = startClient { () throws(SlackError) -> String in
                calls.increment()
                return calls.value <= 2 ? stale : try await openSocketModeURL(fake)
            }
            #expect(await eventually { running.client.status.isConnected })
            #expect(running.opens.value == 3)
            let rejected = try await fake.items("connections").filter { $0["state"]?.stringValue == "rejected" }
            #expect(rejected.count == 2)
            #expect(running.log.all.contains { $0.level == .warning && $0.message.contains("HTTP 401") })
            #expect(!running.log.all.contains { $0.message.contains("00000000-0000") })
            await running.stop()
        }
    }

    @Test func cancellationClosesEverythingPromptly() async throws {
        try await FakeSlack.with { fake in
            let running = startClient(fake)
            #expect(await eventually { running.client.status.isConnected })
            let took = await running.stop()
            #expect(took < .seconds(10), "run() returned after \(took)")
            guard case .stopped = running.client.status else {
                Issue.record("status \(running.client.status)")
                return
            }
            #expect(
                await eventually(timeout: .seconds(15)) {
                    (try? await fake.sockets().allSatisfy { $0["state"]?.stringValue == "closed" }) == true
                }
            )
            #expect(try await fake.sockets().first?["client_close_code"] == 1000)

            // Also in the middle of a WebSocket handshake that is never answered.
            try await fake.control("down", #"{"mode": "hang", "scope": "socket"}"#)
            let hanging = startClient(fake)
            #expect(await eventually { hanging.opens.value == 1 })
            try await Task.sleep(for: .milliseconds(300))
            let hangingTook = await hanging.stop()
            #expect(hangingTook < .seconds(10), "run() returned after \(hangingTook)")
        }
    }

    @Test func plainWebSocketIsRefusedOffLoopback() async throws {
        let running = startClient { () throws(SlackError) -> String in
            "ws://socket.example.com/link/?ticket=secret-ticket"
        }
        #expect(
            await eventually {
                if case .reconnecting(let reason) = running.client.status { return reason.contains("refusing") }
                return false
            }
        )
        #expect(running.client.statistics.connectionsOpened == 0)
        #expect(!running.log.all.contains { $0.message.contains("secret-ticket") })
        await running.stop()
    }
}
