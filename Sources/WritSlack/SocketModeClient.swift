import Logging
import NIOCore
import NIOSSL
import Synchronization

/// Slack's Socket Mode: receives slash commands, interactions and Events API callbacks over a
/// WebSocket that this process opens to Slack, so no inbound port is needed.
///
/// The client asks `openURL` (which calls `apps.connections.open` with the app-level token)
/// for a single-use URL, opens a WebSocket to it, acknowledges every envelope at once and only
/// then hands it to `handler`. It follows Slack's protocol for the rest: `refresh_requested`
/// and `warning` disconnects are bridged make-before-break (the new connection says `hello`
/// before the old one is closed, and envelopes arriving on the old one meanwhile are still
/// handled); `too_many_websockets` waits before connecting again; `link_disabled` stops the
/// client. Pings detect dead connections; any failure reconnects with exponential backoff and
/// jitter, with a fresh URL each time. An envelope Slack delivers again (an Events API retry,
/// possibly on another connection) is acknowledged again but handled once.
///
/// Run one client per Slack app, in one process: Slack spreads envelopes over all of an app's
/// open connections, so a second process connected with the same app would receive (and have to
/// handle) part of them. When the hello reports more connections than this client holds, that
/// is logged.
///
/// The client knows nothing of what the envelopes mean: writd and a fleet server can both use it.
public final class SocketModeClient: Sendable {
    /// Timings. The defaults suit Slack; tests shorten them.
    public struct Options: Sendable {
        /// The client pings this often.
        public var pingInterval: Duration = .seconds(10)
        /// No frame at all (pong, hello, envelope, ping) for this long: the connection is dead,
        /// dropped without a close handshake and replaced.
        public var deadAfter: Duration = .seconds(25)
        /// Reconnect backoff: `backoffBase · 2^n` after n failures in a row, at most `backoffCap`,
        /// with ±25% jitter. Reset by a `hello`.
        public var backoffBase: Duration = .seconds(1)
        public var backoffCap: Duration = .seconds(30)
        /// How long to wait after a `too_many_websockets` disconnect before connecting again.
        public var tooManyWebsocketsDelay: Duration = .seconds(60)
        /// A new socket that sends no `hello` within this is closed (also bounds the TCP, TLS and
        /// WebSocket handshakes).
        public var helloTimeout: Duration = .seconds(10)
        /// How long a close handshake may take before the TCP connection is closed anyway.
        public var closeTimeout: Duration = .seconds(1)

        public init() {}
    }

    /// Where the client stands.
    public enum Status: Sendable, Equatable {
        /// `run()` has not connected yet.
        case starting
        /// Live: this many open connections have said hello (two while one replaces the other).
        case connected(connections: Int)
        /// No live connection; the reason is the last failure.
        case reconnecting(reason: String)
        /// Slack turned Socket Mode off for the app (`link_disabled`, the reason says what to do),
        /// or `run()` ended.
        case stopped(reason: String)
    }

    /// Counters for tests and `writ doctor`.
    public struct Statistics: Sendable, Equatable {
        /// Envelopes received, duplicates included.
        public var envelopesReceived = 0
        /// Acknowledgements sent.
        public var envelopesAcked = 0
        /// Envelopes seen before (Slack's retries): acknowledged, not handled again.
        public var duplicatesDropped = 0
        /// Connections that said hello.
        public var connectionsOpened = 0
        /// Connections that said hello after the first.
        public var reconnects = 0
        /// Failed attempts: `apps.connections.open`, TCP, TLS or WebSocket handshake, no hello.
        public var connectFailures = 0
        /// From losing the connection (or Slack asking to replace it) to the next hello.
        public var lastRecovery: Duration?
        /// When that recovery completed.
        public var lastRecoveryAt: ContinuousClock.Instant?

        public init() {}
    }

    private let openURL: @Sendable () async throws(SlackError) -> String
    private let options: Options
    private let logger: Logger
    private let handler: @Sendable (SlackInbound) async -> Void
    private let shared = Mutex(Shared())
    private let tlsContext = Mutex<NIOSSLContext?>(nil)

    private struct Shared {
        var running = false
        var machine: SocketModeStateMachine?
        var finished: Status?
        var statistics = Statistics()
    }

    /// - Parameters:
    ///   - openURL: calls `apps.connections.open` (the caller owns the app-level token) and returns
    ///     the `wss://` URL; errors are retried with backoff. It should honour task cancellation.
    ///   - handler: called for every envelope after it was acknowledged, in its own task:
    ///     `slash_commands` as `.slashCommand`, `interactive` as `.interactive`, `events_api` as
    ///     `.event`. Other envelope types are acknowledged, logged and dropped.
    public init(
        openURL: @escaping @Sendable () async throws(SlackError) -> String,
        options: Options = Options(),
        logger: Logger,
        handler: @escaping @Sendable (SlackInbound) async -> Void
    ) {
        self.openURL = openURL
        self.options = options
        self.logger = logger
        self.handler = handler
    }

    /// Where the client stands now (`.starting` before `run()`, `.stopped` after it).
    public var status: Status {
        shared.withLock { shared in
            if let machine = shared.machine { return machine.status }
            return shared.finished ?? .starting
        }
    }

    /// The counters so far, across runs of `run()`.
    public var statistics: Statistics {
        shared.withLock { $0.machine?.statistics ?? $0.statistics }
    }

    /// Connects and keeps connected until the calling task is cancelled, or until Slack says
    /// `link_disabled` (then `status` is `.stopped` with what the admin has to do). Either way
    /// every socket is closed before it returns, and handlers already started have finished
    /// (on cancellation they are cancelled too). Calling it while it runs logs an error and
    /// returns at once.
    public func run() async {
        let alreadyRunning = shared.withLock { shared in
            defer { shared.running = true }
            if shared.running { return true }
            shared.machine = SocketModeStateMachine(
                options: options,
                seed: UInt64.random(in: .min ... .max),
                statistics: shared.statistics
            )
            shared.finished = nil
            return shared.running
        }
        guard !alreadyRunning else {
            logger.error("Socket Mode: run() called while already running; ignored")
            return
        }
        await supervise()
        shared.withLock { shared in
            shared.statistics = shared.machine?.statistics ?? shared.statistics
            shared.finished = .stopped(reason: shared.machine?.stopReason ?? "the Socket Mode client was stopped")
            shared.machine = nil
            shared.running = false
        }
    }

    /// The supervisor: one loop owns the state machine and performs its actions; sockets, timers
    /// and connection attempts only feed it events.
    private func supervise() async {
        let (inputs, continuation) = AsyncStream.makeStream(of: SocketModeInput.self)
        let clock = ContinuousClock()
        let channels = SocketModeChannels()
        let connector = SocketModeConnector(
            channels: channels,
            events: continuation,
            handshakeTimeout: options.helloTimeout,
            tls: { () throws(SlackError) -> NIOSSLContext in try self.tls() }
        )
        let closeTimeout = Self.timeAmount(options.closeTimeout)
        let tick = Self.tickInterval(options)

        await withDiscardingTaskGroup { handlers in
            await withDiscardingTaskGroup { background in
                background.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: tick)
                        continuation.yield(.event(.tick))
                    }
                }
                var sockets: [SocketModeStateMachine.ConnectionID: SocketModeWebSocket] = [:]
                var actions = shared.withLock { $0.machine?.start(now: clock.now) ?? [.stop] }
                var stopped = false
                var iterator = inputs.makeAsyncIterator()
                while true {
                    for action in actions {
                        switch action {
                        case .connect(let id):
                            background.addTask {
                                await self.connect(id: id, connector: connector, events: continuation)
                            }
                        case .connectLater(let token, let delay):
                            background.addTask {
                                guard (try? await Task.sleep(for: delay)) != nil else { return }
                                continuation.yield(.event(.connectDue(token: token)))
                            }
                        case .send(let id, let text):
                            sockets[id]?.send(text: text)
                        case .ping(let id):
                            sockets[id]?.ping()
                        case .close(let id, let graceful):
                            sockets.removeValue(forKey: id)?.close(graceful: graceful, handshakeTimeout: closeTimeout)
                        case .deliver(let inbound):
                            let handler = self.handler
                            handlers.addTask { await handler(inbound) }
                        case .log(let level, let message):
                            logger.log(level: Self.level(level), "\(message)")
                        case .stop:
                            stopped = true
                        }
                    }
                    if stopped { break }
                    guard let input = await iterator.next() else { break }
                    let event: SocketModeStateMachine.Event
                    switch input {
                    case .upgraded(let socket):
                        sockets[socket.id] = socket
                        event = .upgraded(socket.id)
                    case .event(let e):
                        event = e
                    }
                    if case .closed(let id, _) = event { sockets[id] = nil }
                    actions = shared.withLock { $0.machine?.handle(event, now: clock.now) ?? [.stop] }
                }
                continuation.finish()
                background.cancelAll()
                await channels.shutDown(timeout: Task.isCancelled ? .milliseconds(200) : closeTimeout)
            }
        }
    }

    /// One connection attempt: a fresh URL (tickets are single-use), then the WebSocket.
    private func connect(
        id: SocketModeStateMachine.ConnectionID,
        connector: SocketModeConnector,
        events: AsyncStream<SocketModeInput>.Continuation
    ) async {
        do throws(SlackError) {
            let url = try await openURL()
            try Task.checkCancellation(orThrow: .transport(method: "Socket Mode", message: "cancelled"))
            let endpoint = try SocketModeEndpoint(parsing: url)
            logger.debug("Socket Mode: opening \(endpoint.logDescription)")
            try await connector.open(id: id, endpoint: endpoint)
        } catch {
            events.yield(.event(.connectFailed(id, error)))
        }
    }

    /// The TLS context, made once: system trust roots, hostname verification.
    private func tls() throws(SlackError) -> NIOSSLContext {
        try tlsContext.withLock { (cached) throws(SlackError) -> NIOSSLContext in
            if let cached { return cached }
            do {
                let context = try NIOSSLContext(configuration: .makeClientConfiguration())
                cached = context
                return context
            } catch {
                throw .transport(method: "Socket Mode", message: "cannot set up TLS: \(error)")
            }
        }
    }

    /// How often the state machine checks pings and timeouts: a fifth of the shortest of them,
    /// between 20 ms and 1 s.
    static func tickInterval(_ options: Options) -> Duration {
        let shortest = min(options.pingInterval, options.deadAfter, options.helloTimeout)
        return min(max(shortest / 5, .milliseconds(20)), .seconds(1))
    }

    static func timeAmount(_ duration: Duration) -> TimeAmount {
        let (seconds, attoseconds) = duration.components
        return .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    static func level(_ level: SocketModeLogLevel) -> Logger.Level {
        switch level {
        case .debug: .debug
        case .info: .info
        case .notice: .notice
        case .warning: .warning
        case .error: .error
        }
    }
}

extension Task where Success == Never, Failure == Never {
    /// `checkCancellation` with a typed error.
    fileprivate static func checkCancellation(orThrow error: SlackError) throws(SlackError) {
        if Task.isCancelled { throw error }
    }
}
