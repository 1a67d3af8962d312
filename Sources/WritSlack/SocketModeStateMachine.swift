import WritCore
import WritExpr

/// One text frame from Slack's Socket Mode WebSocket, as the state machine sees it.
package enum SocketModeMessage: Sendable, Equatable {
    /// `{"type": "hello", "num_connections": N, …}`: the connection is live.
    case hello(connections: Int?)
    /// `{"type": "disconnect", "reason": R}`: Slack is about to close this connection.
    case disconnect(reason: String)
    /// Anything with an `envelope_id`: to be acknowledged at once.
    case envelope(SocketModeEnvelope)
    /// A message of a type this client does not act on.
    case other(type: String)
    /// Not a JSON object, or not one Slack documents.
    case malformed(String)

    /// Reads one complete text message.
    package static func parse(_ bytes: [UInt8]) -> SocketModeMessage {
        let value: JSONValue
        switch JSONValue.parse(bytes) {
        case .success(let parsed): value = parsed
        case .failure(let error): return .malformed(error.message)
        }
        guard case .object = value else { return .malformed("not a JSON object") }
        if let id = value["envelope_id"]?.stringValue {
            guard !id.isEmpty else { return .malformed("empty envelope_id") }
            return .envelope(
                SocketModeEnvelope(
                    id: id,
                    type: value["type"]?.stringValue ?? "",
                    payload: value["payload"] ?? .null,
                    acceptsResponsePayload: value["accepts_response_payload"]?.boolValue ?? false,
                    retryAttempt: value["retry_attempt"]?.intValue.map { Int(clamping: $0) } ?? 0,
                    retryReason: value["retry_reason"]?.stringValue ?? ""
                )
            )
        }
        switch value["type"]?.stringValue {
        case "hello":
            return .hello(connections: value["num_connections"]?.intValue.map { Int(clamping: $0) })
        case "disconnect":
            return .disconnect(reason: value["reason"]?.stringValue ?? "")
        case let type?:
            return .other(type: type)
        case nil:
            return .malformed("no type and no envelope_id")
        }
    }
}

/// A Socket Mode envelope: `{"envelope_id", "type", "payload", "accepts_response_payload",
/// "retry_attempt", "retry_reason"}`.
package struct SocketModeEnvelope: Sendable, Equatable {
    var id: String
    var type: String
    var payload: JSONValue
    var acceptsResponsePayload: Bool
    var retryAttempt: Int
    var retryReason: String

    /// What the handler gets, or nil for an envelope type this client does not hand on.
    package var inbound: SlackInbound? {
        switch type {
        case "slash_commands": .slashCommand(Self.formFields(payload))
        case "interactive": .interactive(payload)
        case "events_api": .event(payload)
        default: nil
        }
    }

    /// A slash command's payload as the form fields HTTP mode would have carried: strings as
    /// they are, booleans and numbers as text, anything else left out.
    static func formFields(_ payload: JSONValue) -> [String: String] {
        guard case .object(let members) = payload else { return [:] }
        var fields: [String: String] = [:]
        for (key, value) in members {
            switch value {
            case .string(let s): fields[key] = s
            case .bool(let b): fields[key] = b ? "true" : "false"
            case .int(let i): fields[key] = String(i)
            case .number(let d): fields[key] = String(d)
            case .null, .array, .object: break
            }
        }
        return fields
    }

    /// The acknowledgement Slack expects on the same connection within 3 s.
    var acknowledgement: String { "{\"envelope_id\":\(JSONText.quote(id))}" }

    /// Keys under which a repeat of this envelope is recognised: the envelope id, and for an
    /// Events API callback also its `event_id` (stable across Slack's retries whatever the
    /// envelope is called).
    var deduplicationKeys: [String] {
        var keys = ["envelope:" + id]
        if type == "events_api", let eventID = payload["event_id"]?.stringValue, !eventID.isEmpty {
            keys.append("event:" + eventID)
        }
        return keys
    }
}

/// The last `capacity` keys seen, oldest forgotten first.
struct RecentKeys {
    let capacity: Int
    private var ring: [String] = []
    private var next = 0
    private var members: Set<String> = []

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    func contains(_ key: String) -> Bool { members.contains(key) }

    /// Remembers `key`, forgetting the oldest key when full.
    mutating func insert(_ key: String) {
        guard !members.contains(key) else { return }
        if ring.count < capacity {
            ring.append(key)
        } else {
            members.remove(ring[next])
            ring[next] = key
            next = (next + 1) % capacity
        }
        members.insert(key)
    }
}

/// A small, seedable generator (SplitMix64) for backoff jitter, so the state machine stays
/// deterministic under test.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// How severe a log line the state machine asks for (the driver maps it onto swift-log).
enum SocketModeLogLevel: Sendable, Equatable {
    case debug, info, notice, warning, error
}

/// Slack's Socket Mode protocol as a pure state machine: which connections exist, when to open,
/// ping, acknowledge, hand on, close and give up. It performs no I/O and reads no clock: the
/// driver (`SocketModeClient`) feeds it events with the current time and performs the actions
/// it returns, in order.
struct SocketModeStateMachine {
    /// Connection ids are the driver's handles for its sockets (and for connection attempts).
    typealias ConnectionID = Int
    typealias Instant = ContinuousClock.Instant

    /// What happened.
    enum Event: Sendable, Equatable {
        /// `apps.connections.open` or the WebSocket handshake failed for attempt `id`.
        case connectFailed(ConnectionID, SlackError)
        /// The WebSocket handshake of attempt `id` succeeded.
        case upgraded(ConnectionID)
        /// A complete text message arrived on `id`.
        case message(ConnectionID, SocketModeMessage)
        /// Some other frame (ping, pong, a fragment) arrived on `id`.
        case alive(ConnectionID)
        /// Connection `id` is gone (TCP closed, after or without a close handshake).
        case closed(ConnectionID, why: String)
        /// A delayed connect (`Action.connectLater`) is due.
        case connectDue(token: Int)
        /// Time passed: check pings, dead connections and hello timeouts.
        case tick
    }

    /// What the driver is to do.
    enum Action: Sendable, Equatable {
        /// Fetch a URL from `apps.connections.open` and open a WebSocket to it, as `id`.
        case connect(ConnectionID)
        /// Feed `Event.connectDue(token:)` back after `after`.
        case connectLater(token: Int, after: Duration)
        /// Send a text frame on `id`.
        case send(ConnectionID, String)
        /// Send a ping on `id`.
        case ping(ConnectionID)
        /// Close `id`: with a close handshake (bounded in time) when `graceful`, else at once.
        case close(ConnectionID, graceful: Bool)
        /// Run the handler with this (it has been acknowledged).
        case deliver(SlackInbound)
        case log(SocketModeLogLevel, String)
        /// Stop for good: `stopReason` says why.
        case stop
    }

    enum Phase: Sendable, Equatable {
        /// Fetching the URL or in the WebSocket handshake.
        case handshaking
        /// Open, no `hello` yet.
        case awaitingHello
        /// `hello` received.
        case live
        /// Slack asked us to move (refresh_requested, warning): still served until the
        /// replacement says hello.
        case draining
    }

    struct Connection: Sendable, Equatable {
        var phase: Phase
        var startedAt: Instant
        var lastFrameAt: Instant
        var lastPingAt: Instant
        var hadHello = false
    }

    /// A connection attempt stuck this long past `helloTimeout` in `apps.connections.open` or
    /// the TCP/TLS/WebSocket handshake is given up (the driver bounds the handshake itself; this
    /// also bounds a caller's `openURL` that never returns).
    static let openURLAllowance: Duration = .seconds(30)

    let options: SocketModeClient.Options
    private(set) var connections: [ConnectionID: Connection] = [:]
    /// Closed by us, waiting for the socket to go.
    private(set) var closing: Set<ConnectionID> = []
    private(set) var statistics: SocketModeClient.Statistics
    private(set) var stopReason: String?
    private var nextID: ConnectionID = 1
    private var nextToken = 1
    private var pendingToken: Int?
    /// Failed attempts since the last `hello`: the backoff exponent.
    private(set) var failures = 0
    /// Why there is no live connection (for `status`), nil while connected.
    private var lossReason: String?
    private var recoveryStartedAt: Instant?
    private var everConnected = false
    private var recent: RecentKeys
    private var random: SplitMix64

    init(
        options: SocketModeClient.Options,
        seed: UInt64,
        statistics: SocketModeClient.Statistics = .init(),
        rememberedEnvelopes: Int = 4096
    ) {
        self.options = options
        self.statistics = statistics
        self.recent = RecentKeys(capacity: rememberedEnvelopes)
        self.random = SplitMix64(seed: seed)
    }

    /// The status `SocketModeClient.status` reports.
    var status: SocketModeClient.Status {
        if let stopReason { return .stopped(reason: stopReason) }
        let open = connections.values.filter { $0.hadHello }.count
        if open > 0 { return .connected(connections: open) }
        if let lossReason { return .reconnecting(reason: lossReason) }
        return .starting
    }

    // MARK: - Events

    /// The first action: connect.
    mutating func start(now: Instant) -> [Action] {
        [.log(.info, "Socket Mode: connecting to Slack")] + openNow(now: now)
    }

    mutating func handle(_ event: Event, now: Instant) -> [Action] {
        guard stopReason == nil else {
            // Stopped: anything still arriving only needs its socket closed.
            switch event {
            case .upgraded(let id): return [.close(id, graceful: false)]
            case .closed(let id, _):
                closing.remove(id)
                return []
            default: return []
            }
        }
        switch event {
        case .connectFailed(let id, let error): return connectFailed(id, error, now: now)
        case .upgraded(let id): return upgraded(id, now: now)
        case .message(let id, let message): return received(message, on: id, now: now)
        case .alive(let id):
            connections[id]?.lastFrameAt = now
            return []
        case .closed(let id, let why): return closed(id, why: why, now: now)
        case .connectDue(let token):
            guard token == pendingToken else { return [] }
            pendingToken = nil
            guard !hasReplacementUnderway else { return [] }
            return openNow(now: now)
        case .tick: return tick(now: now)
        }
    }

    private mutating func connectFailed(_ id: ConnectionID, _ error: SlackError, now: Instant) -> [Action] {
        guard connections[id]?.phase == .handshaking else { return [] }
        connections[id] = nil
        failures += 1
        statistics.connectFailures += 1
        lossReason = error.description
        recoveryStartedAt = recoveryStartedAt ?? now
        let next = ensureConnection(now: now)
        let level: SocketModeLogLevel = error.isTransient ? .warning : .error
        return [.log(level, "Socket Mode: could not connect: \(error)\(Self.describeRetry(next))")] + next
    }

    private mutating func upgraded(_ id: ConnectionID, now: Instant) -> [Action] {
        guard var connection = connections[id], connection.phase == .handshaking else {
            return [.close(id, graceful: false)]
        }
        connection.phase = .awaitingHello
        connection.startedAt = now
        connection.lastFrameAt = now
        connection.lastPingAt = now
        connections[id] = connection
        return []
    }

    private mutating func received(_ message: SocketModeMessage, on id: ConnectionID, now: Instant) -> [Action] {
        if var connection = connections[id] {
            connection.lastFrameAt = now
            if connection.phase == .handshaking { connection.phase = .awaitingHello }
            connections[id] = connection
        } else {
            // A connection we are closing: whatever it still brings is handled (nothing may be
            // lost, and Slack can still turn Socket Mode off), but it no longer steers reconnects.
            guard closing.contains(id) else { return [] }
            switch message {
            case .envelope, .disconnect("link_disabled"): break
            default: return []
            }
        }
        switch message {
        case .hello(let reported): return hello(on: id, reported: reported, now: now)
        case .disconnect(let reason): return disconnect(reason, on: id, now: now)
        case .envelope(let envelope): return acknowledge(envelope, on: id)
        case .other(let type):
            return [.log(.debug, "Socket Mode: ignoring a \"\(LogText.escape(type, limit: 200))\" message")]
        case .malformed(let why): return [.log(.warning, "Socket Mode: ignoring a malformed message: \(why)")]
        }
    }

    private mutating func hello(on id: ConnectionID, reported: Int?, now: Instant) -> [Action] {
        guard var connection = connections[id], !connection.hadHello else { return [] }
        connection.hadHello = true
        if connection.phase == .awaitingHello { connection.phase = .live }
        connections[id] = connection
        failures = 0
        lossReason = nil
        statistics.connectionsOpened += 1
        if everConnected { statistics.reconnects += 1 }
        everConnected = true
        var recovered = ""
        if let started = recoveryStartedAt {
            let took = now - started
            statistics.lastRecovery = took
            statistics.lastRecoveryAt = now
            recoveryStartedAt = nil
            recovered = " (recovered in \(Self.describe(took)))"
        }
        // A connection that said hello makes any delayed connect moot.
        pendingToken = nil
        var actions: [Action] = [.log(.info, "Socket Mode: connected\(recovered)")]
        // Slack counts the app's open connections, those we are leaving included.
        let ours = connections.values.filter { $0.phase != .handshaking }.count
        // Make-before-break: the replacement is live, so the connections Slack asked us to leave go now.
        for (oldID, old) in connections.sorted(by: { $0.key < $1.key }) where old.phase == .draining {
            actions.append(.log(.info, "Socket Mode: closing the connection Slack asked to replace"))
            actions.append(close(oldID, graceful: true))
        }
        if let reported, reported > ours {
            actions.append(
                .log(
                    .notice,
                    "Socket Mode: Slack reports \(reported) open connections for this app, \(ours) of them ours: "
                        + "another process is connected with the same app and will receive some of its requests"
                )
            )
        }
        return actions
    }

    private mutating func disconnect(_ reason: String, on id: ConnectionID, now: Instant) -> [Action] {
        let shown = reason.isEmpty ? "(none given)" : LogText.escape(reason, limit: 200)
        var actions: [Action] = []
        switch reason {
        case "refresh_requested", "warning":
            actions.append(
                .log(.notice, "Socket Mode: Slack sent disconnect, reason \(shown): opening a new connection first")
            )
            if var connection = connections[id], connection.phase != .handshaking {
                connection.phase = .draining
                connections[id] = connection
            }
            recoveryStartedAt = recoveryStartedAt ?? now
            if !hasReplacementUnderway {
                pendingToken = nil
                actions += openNow(now: now)
            }
        case "too_many_websockets":
            if connections[id] != nil { actions.append(close(id, graceful: true)) }
            recoveryStartedAt = recoveryStartedAt ?? now
            if hasReplacementUnderway {
                actions.insert(
                    .log(
                        .notice,
                        "Socket Mode: Slack sent disconnect, reason \(shown): this app has too many connections "
                            + "(another process may be connected with the same app); keeping the other connection"
                    ),
                    at: 0
                )
            } else {
                lossReason = "too_many_websockets"
                let delay = options.tooManyWebsocketsDelay
                actions.insert(
                    .log(
                        .notice,
                        "Socket Mode: Slack sent disconnect, reason \(shown): this app has too many connections "
                            + "(another process may be connected with the same app); connecting again in "
                            + Self.describe(delay)
                    ),
                    at: 0
                )
                pendingToken = nil
                actions += schedule(after: delay, now: now)
            }
        case "link_disabled":
            let reason =
                "Slack disabled Socket Mode for this app (disconnect reason link_disabled): turn Socket Mode on "
                + "in the app's settings (https://api.slack.com/apps, the app, Socket Mode), then reload the service"
            actions.append(.log(.notice, "Socket Mode: Slack sent disconnect, reason link_disabled"))
            actions += stop(reason: reason)
        default:
            if connections[id] != nil { actions.append(close(id, graceful: true)) }
            lossReason = "disconnect: \(shown)"
            recoveryStartedAt = recoveryStartedAt ?? now
            let next = ensureConnection(now: now)
            actions.insert(
                .log(.notice, "Socket Mode: Slack sent disconnect, reason \(shown)\(Self.describeRetry(next))"),
                at: 0
            )
            actions += next
        }
        return actions
    }

    private mutating func acknowledge(_ envelope: SocketModeEnvelope, on id: ConnectionID) -> [Action] {
        statistics.envelopesReceived += 1
        var actions: [Action] = []
        if connections[id] != nil {
            actions.append(.send(id, envelope.acknowledgement))
            statistics.envelopesAcked += 1
        } else {
            // We already sent a close frame on it, after which WebSocket allows no data frame.
            actions.append(
                .log(.warning, "Socket Mode: an envelope arrived on a closing connection and cannot be acknowledged")
            )
        }
        let keys = envelope.deduplicationKeys
        if keys.contains(where: recent.contains) {
            statistics.duplicatesDropped += 1
            for key in keys { recent.insert(key) }
            actions.append(
                .log(
                    .debug,
                    "Socket Mode: envelope \(LogText.escape(envelope.id, limit: 200)) (retry \(envelope.retryAttempt)"
                        + "\(envelope.retryReason.isEmpty ? "" : ", \(LogText.escape(envelope.retryReason, limit: 200))")) "
                        + "was handled already: acknowledged again, not handled twice"
                )
            )
            return actions
        }
        for key in keys { recent.insert(key) }
        if let inbound = envelope.inbound {
            actions.append(.deliver(inbound))
        } else {
            actions.append(
                .log(
                    .notice,
                    "Socket Mode: acknowledged an envelope of unhandled type \"\(LogText.escape(envelope.type, limit: 200))\""
                )
            )
        }
        return actions
    }

    private mutating func closed(_ id: ConnectionID, why: String, now: Instant) -> [Action] {
        closing.remove(id)
        guard let connection = connections.removeValue(forKey: id) else { return [] }
        var actions: [Action] = []
        switch connection.phase {
        case .draining:
            actions.append(.log(.info, "Socket Mode: the connection Slack asked to replace closed (\(why))"))
        case .handshaking, .awaitingHello:
            failures += 1
            lossReason = "connection closed before hello: \(why)"
            recoveryStartedAt = recoveryStartedAt ?? now
        case .live:
            lossReason = "connection lost: \(why)"
            recoveryStartedAt = recoveryStartedAt ?? now
        }
        let next = ensureConnection(now: now)
        if connection.phase != .draining {
            actions.append(.log(.warning, "Socket Mode: \(lossReason ?? why)\(Self.describeRetry(next))"))
        }
        return actions + next
    }

    private mutating func tick(now: Instant) -> [Action] {
        var actions: [Action] = []
        for (id, connection) in connections.sorted(by: { $0.key < $1.key }) {
            switch connection.phase {
            case .handshaking:
                if now - connection.startedAt > options.helloTimeout + Self.openURLAllowance {
                    connections[id] = nil
                    failures += 1
                    lossReason =
                        "connecting took longer than \(Self.describe(options.helloTimeout + Self.openURLAllowance))"
                    recoveryStartedAt = recoveryStartedAt ?? now
                    actions.append(.close(id, graceful: false))
                    let next = ensureConnection(now: now)
                    actions.append(.log(.warning, "Socket Mode: \(lossReason ?? "")\(Self.describeRetry(next))"))
                    actions += next
                }
                continue
            case .awaitingHello where now - connection.startedAt >= options.helloTimeout:
                actions.append(close(id, graceful: false))
                failures += 1
                lossReason = "no hello from Slack within \(Self.describe(options.helloTimeout))"
                recoveryStartedAt = recoveryStartedAt ?? now
                let next = ensureConnection(now: now)
                actions.append(.log(.warning, "Socket Mode: \(lossReason ?? "")\(Self.describeRetry(next))"))
                actions += next
                continue
            default:
                break
            }
            if now - connection.lastFrameAt >= options.deadAfter {
                // A half-open connection never completes a close handshake: drop it at once.
                actions.append(close(id, graceful: false))
                let why = "nothing received for \(Self.describe(now - connection.lastFrameAt)), the connection is dead"
                if connection.phase != .draining {
                    lossReason = why
                    recoveryStartedAt = recoveryStartedAt ?? now
                }
                let next = ensureConnection(now: now)
                actions.append(.log(.warning, "Socket Mode: \(why)\(Self.describeRetry(next))"))
                actions += next
                continue
            }
            if now - connection.lastPingAt >= options.pingInterval {
                connections[id]?.lastPingAt = now
                actions.append(.ping(id))
            }
        }
        return actions
    }

    // MARK: - Helpers

    /// True when a connection other than the draining ones exists or is being opened.
    private var hasReplacementUnderway: Bool {
        connections.values.contains { $0.phase != .draining }
    }

    private mutating func openNow(now: Instant) -> [Action] {
        let id = nextID
        nextID += 1
        connections[id] = Connection(phase: .handshaking, startedAt: now, lastFrameAt: now, lastPingAt: now)
        return [.connect(id)]
    }

    private mutating func schedule(after delay: Duration, now: Instant) -> [Action] {
        guard delay > .zero else { return openNow(now: now) }
        let token = nextToken
        nextToken += 1
        pendingToken = token
        return [.connectLater(token: token, after: delay)]
    }

    /// Opens a connection (after the backoff) unless one is open, being opened or scheduled.
    private mutating func ensureConnection(now: Instant) -> [Action] {
        guard stopReason == nil, pendingToken == nil, !hasReplacementUnderway else { return [] }
        return schedule(after: backoff(), now: now)
    }

    private mutating func close(_ id: ConnectionID, graceful: Bool) -> Action {
        connections[id] = nil
        closing.insert(id)
        return .close(id, graceful: graceful)
    }

    private mutating func stop(reason: String) -> [Action] {
        stopReason = reason
        pendingToken = nil
        var actions: [Action] = [.log(.error, "Socket Mode: \(reason)")]
        for id in connections.keys.sorted() {
            actions.append(close(id, graceful: connections[id]?.phase != .handshaking))
        }
        return actions + [.stop]
    }

    /// `backoffBase · 2^failures`, capped at `backoffCap`, times a random factor in [0.75, 1.25].
    mutating func backoff() -> Duration {
        var delay = options.backoffBase
        var doublings = failures
        while doublings > 0 && delay < options.backoffCap {
            delay = delay * 2
            doublings -= 1
        }
        delay = min(delay, options.backoffCap)
        let jitter = 0.75 + 0.5 * Double(random.next() >> 11) / Double(1 << 53)
        return delay * jitter
    }

    private static func describeRetry(_ actions: [Action]) -> String {
        for action in actions {
            switch action {
            case .connect: return "; connecting again now"
            case .connectLater(_, let delay): return "; connecting again in \(describe(delay))"
            default: continue
            }
        }
        return ""
    }

    /// A duration for a log line: "850 ms", "2.4 s".
    static func describe(_ duration: Duration) -> String {
        let ms = Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
        if ms < 1000 { return "\(Int(ms.rounded())) ms" }
        let tenths = (ms / 100).rounded() / 10
        return tenths == tenths.rounded() ? "\(Int(tenths)) s" : "\(tenths) s"
    }
}
