import Glibc
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import WritCore
import WritExpr
import WritIntegrations

/// Slack's HTTP mode: the Request URLs Slack posts slash commands, interactions and Events API
/// callbacks to, served directly on swift-nio (HTTPS with a certificate, or plain HTTP behind a
/// TLS-terminating proxy).
///
/// Routes (POST only):
/// - `/slack/commands`: form fields → `SlackInbound.slashCommand`
/// - `/slack/interactivity`: the form field `payload` (JSON) → `SlackInbound.interactive`
/// - `/slack/events`: JSON; `url_verification` is answered with its `challenge` at once,
///   `event_callback` → `SlackInbound.event`; other types are acknowledged and dropped.
///
/// Every request's `X-Slack-Signature` is checked with `SlackSignature.verify` over the raw body
/// before anything in it is parsed; a bad, missing or stale signature gets 401 and one log line.
/// An accepted request is answered 200 (empty body) at once and only then handed to `handler`
/// in a new task, so a slow handler never makes Slack's 3-second wait run out: anything the user
/// should see goes through the Web API or the payload's `response_url`.
///
/// Slack re-sends an event it saw no timely 200 for, with `X-Slack-Retry-Num` and
/// `X-Slack-Retry-Reason`; such a request is acknowledged and passed on like any other.
/// Deduplicating (by `event_id`) is the handler's job.
///
/// Limits: bodies over `maxBodyBytes` get 413; a connection must deliver each whole request
/// within `requestTimeoutSeconds` (also the keep-alive idle limit), so a slowloris cannot pin
/// it; at most `maxConnections` connections are open at once, and at most
/// `maxConnectionsPerAddress` from one remote address (more are closed on accept), so one
/// address holding half-open connections leaves the rest to Slack. Refused connections are
/// logged once per 10 s with a count.
///
/// Replays: a signed request is accepted once. The signatures seen are kept for as long as their
/// timestamp is inside Slack's window (at most `maxRemembered`); the same request sent again is
/// answered 200 and dropped, so a captured `/writ` submission cannot file a second request.
public final class SlackHTTPReceiver: Sendable {
    /// Where to listen and what to accept.
    public struct Configuration: Sendable {
        /// The address to bind (`127.0.0.1` behind a local proxy; `0.0.0.0` or `::` to serve
        /// Slack directly).
        public var host: String
        /// The TCP port; 0 picks a free one (tests), which `start` returns.
        public var port: Int
        /// The app's signing secret (Basic Information → App Credentials).
        public var signingSecret: String
        /// A PEM certificate chain. With `tlsKeyPath` the receiver speaks HTTPS; with neither,
        /// plain HTTP; one without the other is a configuration error.
        public var tlsCertificatePath: String?
        /// The PEM private key for `tlsCertificatePath`.
        public var tlsKeyPath: String?
        /// The largest request body accepted; a bigger one gets 413.
        public var maxBodyBytes: Int
        /// How long a connection may take to deliver a whole request (headers and body), and how
        /// long it may stay idle between requests.
        public var requestTimeoutSeconds: Int
        /// The most connections open at once.
        public var maxConnections: Int
        /// The most connections open at once from one remote address (a TLS-terminating proxy
        /// in front counts as one address: raise it there, or let the proxy limit clients).
        public var maxConnectionsPerAddress: Int
        /// The most signatures remembered against replays (each for at most 10 minutes).
        public var maxRemembered: Int
        /// Now, in seconds since the epoch (for the signature's 5-minute window).
        public var clock: @Sendable () -> Int64

        /// A configuration; see the properties.
        public init(
            host: String = "127.0.0.1",
            port: Int,
            signingSecret: String,
            tlsCertificatePath: String? = nil,
            tlsKeyPath: String? = nil,
            maxBodyBytes: Int = 1 << 20,
            requestTimeoutSeconds: Int = 10,
            maxConnections: Int = 256,
            maxConnectionsPerAddress: Int = 32,
            maxRemembered: Int = 100_000,
            clock: @escaping @Sendable () -> Int64 = { Int64(time(nil)) }
        ) {
            self.host = host
            self.port = port
            self.signingSecret = signingSecret
            self.tlsCertificatePath = tlsCertificatePath
            self.tlsKeyPath = tlsKeyPath
            self.maxBodyBytes = maxBodyBytes
            self.requestTimeoutSeconds = requestTimeoutSeconds
            self.maxConnections = maxConnections
            self.maxConnectionsPerAddress = maxConnectionsPerAddress
            self.maxRemembered = maxRemembered
            self.clock = clock
        }
    }

    /// What the channel handlers share: immutable, so any event loop may read it.
    struct Context: Sendable {
        var configuration: Configuration
        var logger: Logger
        var handler: @Sendable (SlackInbound) async -> Void
        var replays: SlackReplayGuard
    }

    /// The listening channel and the open connections (closed by `stop`).
    struct State {
        var server: (any Channel)?
        var connections: [ObjectIdentifier: any Channel] = [:]
        var byAddress: [String: Int] = [:]
        var refusals = LogThrottle(interval: 10)
        var started = false
        var stopped = false
    }

    let context: Context
    let state = NIOLockedValueBox(State())

    /// A receiver that passes every verified request to `handler`; nothing listens before `start`.
    public init(
        configuration: Configuration,
        logger: Logger,
        handler: @escaping @Sendable (SlackInbound) async -> Void
    ) {
        self.context = Context(
            configuration: configuration,
            logger: logger,
            handler: handler,
            replays: SlackReplayGuard(capacity: configuration.maxRemembered)
        )
    }

    /// Binds and starts serving; returns the bound port.
    ///
    /// Throws `SlackError.configuration` for an empty signing secret, half a TLS setting, an
    /// unreadable certificate or key, a port already in use, or a second `start`.
    public func start() async throws -> Int {
        let configuration = context.configuration
        guard !configuration.signingSecret.isEmpty else {
            throw SlackError.configuration("HTTP mode needs the app's signing secret, which is empty")
        }
        guard configuration.maxBodyBytes > 0, configuration.requestTimeoutSeconds > 0,
            configuration.maxConnections > 0, configuration.maxConnectionsPerAddress > 0,
            configuration.maxRemembered > 0, (0...65_535).contains(configuration.port)
        else {
            throw SlackError.configuration(
                "HTTP mode: the port, body limit, request timeout, connection caps and replay memory must be positive"
            )
        }
        let tls = try Self.tlsContext(configuration)
        let claimed = state.withLockedValue { state -> Bool in
            guard !state.started else { return false }
            state.started = true
            return true
        }
        guard claimed else { throw SlackError.configuration("the Slack HTTP receiver was started twice") }

        let shared = context
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [self] channel in
                guard self.admit(channel) else {
                    return channel.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel)
                }
                return channel.eventLoop.makeCompletedFuture {
                    let operations = channel.pipeline.syncOperations
                    if let tls { try operations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try operations.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: true)
                    try operations.addHandler(SlackHTTPRequestHandler(shared))
                }
            }
        let server: any Channel
        do {
            server = try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
        } catch {
            throw SlackError.configuration(
                "HTTP mode cannot listen on \(configuration.host):\(configuration.port): \(error)"
            )
        }
        let stoppedMeanwhile = state.withLockedValue { state -> Bool in
            state.server = server
            return state.stopped
        }
        if stoppedMeanwhile {
            try? await server.close()
            throw SlackError.configuration("the Slack HTTP receiver was stopped while starting")
        }
        let port = server.localAddress?.port ?? configuration.port
        context.logger.info(
            "Slack HTTP mode listening",
            metadata: [
                "address": "\(configuration.host):\(port)", "tls": "\(tls != nil)",
            ]
        )
        return port
    }

    /// Stops listening and closes every open connection. Handlers already running go on.
    public func stop() async {
        let (server, connections) = state.withLockedValue { state in
            state.stopped = true
            let taken = (state.server, Array(state.connections.values))
            state.server = nil
            state.connections = [:]
            state.byAddress = [:]
            return taken
        }
        try? await server?.close()
        for connection in connections { try? await connection.close() }
    }

    /// Counts `channel` in, unless a cap is reached (in all, or for its remote address) or the
    /// receiver stopped; it is counted out when it closes.
    private func admit(_ channel: any Channel) -> Bool {
        let id = ObjectIdentifier(channel)
        let configuration = context.configuration
        let address = Self.address(of: channel)
        let (admitted, logLine) = state.withLockedValue { state -> (Bool, String?) in
            if state.stopped { return (false, nil) }
            let mine = state.byAddress[address, default: 0]
            let why: String
            if state.connections.count >= configuration.maxConnections {
                why = "\(configuration.maxConnections) are open already"
            } else if mine >= configuration.maxConnectionsPerAddress {
                why = "\(mine) are open from \(address) already (its share)"
            } else {
                state.connections[id] = channel
                state.byAddress[address] = mine + 1
                return (true, nil)
            }
            let (log, notLogged) = state.refusals.admit(now: configuration.clock())
            guard log else { return (false, nil) }
            let more = notLogged > 0 ? "; \(notLogged) more refused since the last line" : ""
            return (false, "Slack HTTP mode refused a connection from \(address): \(why)\(more)")
        }
        guard admitted else {
            if let logLine { context.logger.warning("\(logLine)") }
            return false
        }
        channel.closeFuture.whenComplete { [self] _ in
            state.withLockedValue { state in
                guard state.connections.removeValue(forKey: id) != nil else { return }
                let left = state.byAddress[address, default: 1] - 1
                state.byAddress[address] = left > 0 ? left : nil
            }
        }
        return true
    }

    /// Who a connection counts against: its remote IPv4 address, or the /64 of an IPv6 one (one
    /// host usually holds a whole /64); `?` when unknown.
    static func address(of channel: any Channel) -> String {
        guard let remote = channel.remoteAddress else { return "?" }
        if case .v6(let v6) = remote {
            let bytes = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
            if bytes.count == 16 && !(bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF) {
                let hex = bytes[0..<8].map { String($0, radix: 16) }.joined(separator: ".")
                return hex + "::/64"
            }
        }
        return remote.ipAddress ?? "?"
    }

    /// The TLS context for the configured certificate and key; nil for plain HTTP.
    static func tlsContext(_ configuration: Configuration) throws(SlackError) -> NIOSSLContext? {
        switch (configuration.tlsCertificatePath, configuration.tlsKeyPath) {
        case (nil, nil):
            return nil
        case (let certificatePath?, let keyPath?):
            do {
                let chain = try NIOSSLCertificate.fromPEMFile(certificatePath)
                guard !chain.isEmpty else {
                    throw SlackError.configuration("HTTP mode: \(certificatePath) holds no PEM certificate")
                }
                let key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
                var tls = TLSConfiguration.makeServerConfiguration(
                    certificateChain: chain.map { .certificate($0) },
                    privateKey: .privateKey(key)
                )
                tls.minimumTLSVersion = .tlsv12
                return try NIOSSLContext(configuration: tls)
            } catch let error as SlackError {
                throw error
            } catch {
                throw .configuration(
                    "HTTP mode cannot load the TLS certificate \(certificatePath) and key \(keyPath): \(error)"
                )
            }
        default:
            throw .configuration(
                "HTTP mode: set both the TLS certificate and key paths (HTTPS) or neither (plain HTTP behind a proxy)"
            )
        }
    }
}
