import FoundationEssentials
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import OpenAPIHummingbird
import OpenAPIRuntime
import ServiceLifecycle
import UnixSignals
import WritEngine
import WritFleetAPI
import X509

/// How one writ-server replica serves.
public struct ServerConfiguration: Sendable {
    /// The address to listen on; port 0 picks a free one (tests), reported by `onListening`.
    public var address = "0.0.0.0"
    public var port = 8443
    /// The names agents reach this replica by (DNS names, IP addresses): its TLS certificate's.
    public var names: [String] = ["localhost", "127.0.0.1"]
    /// How long an agent's client certificate lasts; agents renew at half of it.
    public var agentCertificateLifetime: Int64 = 86400
    /// How long a pending long-poll may be held, at most (an agent asks for about 30 s).
    public var maxWait: Int = 60
    /// Long-polls pending at once, at most; past it an agent is told to come back (503).
    public var maxWaiters = 50_000
    /// Connections open at once, at most: past it new ones wait in the listen backlog.
    public var maxConnections = 60_000
    /// How often the hub reads the feed without a notification: a NOTIFY lost while its
    /// connection was down (PostgreSQL), or a write by another process (SQLite, which notifies
    /// only this one: `writ-server grant add` on a trial server). nil: 5 s on PostgreSQL, 0.5 s
    /// on SQLite (a read of the feed's end, indexed).
    public var pollInterval: Duration?
    /// The largest request body (an audit upload of 1,000 records and 4 MiB, as JSON).
    public var maxBodyBytes = 8 << 20
    /// Enrollments and renewals being signed at once, at most (503 past it).
    public var maxSigning = 32
    /// How often due work (expiry, escalation, pending timeouts) is claimed; every replica
    /// claims, each row is done once.
    public var tickInterval: Duration = .seconds(1)
    /// How long a SIGTERM waits for the requests in flight before it cancels them.
    public var shutdownTimeout: Duration = .seconds(10)
    /// How often the policy file is checked for a change (SIGHUP checks at once).
    public var policyCheckInterval: Duration = .seconds(5)

    public init() {}
}

/// The connection an agent's request came on: the TLS peer certificate is read from it.
struct FleetRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// The host a request's client certificate names, and its key. BoringSSL has checked the chain
/// to the fleet CA and the validity dates during the handshake; whether the host may still be
/// served (enabled, this key) is the engine's to say per request.
struct AgentPeer: Sendable, Equatable {
    var host: String
    var key: String

    @TaskLocal static var current: AgentPeer?

    init(host: String, key: String) {
        self.host = host
        self.key = key
    }

    init?(_ certificate: NIOSSLCertificate) {
        guard let der = try? certificate.toDERBytes(), let parsed = try? Certificate(derEncoded: der),
            let name = FleetPKI.commonName(parsed)
        else { return nil }
        self.init(host: name, key: FleetPKI.fingerprint(parsed.publicKey))
    }
}

/// Reads the request's peer certificate into `AgentPeer.current` for the OpenAPI handlers (which
/// see no request context), and takes the body whole up to the limit: the OpenAPI runtime would
/// collect any length. A client without a certificate of the fleet (enrollment, the CA) sends
/// at most 64 KiB; an enrolled host up to `maxBodyBytes` (an audit upload).
struct AgentPeerMiddleware: RouterMiddleware {
    typealias Context = FleetRequestContext
    let maxBodyBytes: Int
    static let anonymousBodyBytes = 64 << 10

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let certificate = try? await context.channel.nioSSL_peerCertificate().get()
        let peer = certificate.flatMap { AgentPeer($0) }
        var request = request
        _ = try await request.collectBody(upTo: peer == nil ? Self.anonymousBodyBytes : maxBodyBytes)
        return try await AgentPeer.$current.withValue(peer) { try await next(request, context) }
    }
}

/// One writ-server replica: the fleet API over HTTPS, the grant feed's long-polls, and the
/// engine's due work. Stateless: every replica of a fleet serves any agent from the one store.
public struct FleetServer: Sendable {
    public let engine: ApprovalEngine
    public let ca: FleetCA
    public let policy: ServerPolicy
    public let integrations: ServerIntegrations
    public let configuration: ServerConfiguration
    let logger: Logger

    public init(
        engine: ApprovalEngine,
        ca: FleetCA,
        policy: ServerPolicy,
        integrations: ServerIntegrations,
        configuration: ServerConfiguration,
        logger: Logger
    ) {
        self.engine = engine
        self.ca = ca
        self.policy = policy
        self.integrations = integrations
        self.configuration = configuration
        self.logger = logger
    }

    /// The TLS settings: this replica's certificate (a new key each start, signed by the fleet
    /// CA), and client certificates of the fleet CA checked when presented (enrollment has none).
    func tlsConfiguration() throws -> TLSConfiguration {
        let server = try ca.issueServer(names: configuration.names, lifetime: 398 * 86400)
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: [
                .certificate(try NIOSSLCertificate(bytes: FleetPKI.der(server.certificate), format: .der))
            ],
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(server.keyPEM.utf8), format: .pem))
        )
        tls.certificateVerification = .optionalVerification
        tls.trustRoots = .certificates([try NIOSSLCertificate(bytes: FleetPKI.der(ca.certificate), format: .der)])
        tls.minimumTLSVersion = .tlsv12
        // At SIGTERM an agent's idle connection is closed; waiting 5 s (the default) for its
        // close_notify only delays the exit.
        tls.shutdownTimeout = .seconds(1)
        return tls
    }

    /// Serves until SIGTERM or SIGINT (or the task is cancelled): then answers every pending
    /// long-poll at once, so agents move to another replica, and finishes the requests in flight.
    /// `onListening` is told the bound port.
    public func run(onListening: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let logger = logger
        var trace: (@Sendable (String) -> Void)? = nil
        if logger.logLevel <= .debug { trace = { line in logger.debug("\(line)") } }
        let hub = GrantFeedHub(
            engine: engine,
            pollInterval: configuration.pollInterval
                ?? (engine.store.kind == "sqlite" ? .milliseconds(500) : .seconds(5)),
            maxWaiters: configuration.maxWaiters,
            trace: trace
        )
        let router = Router(context: FleetRequestContext.self)
        router.add(middleware: AgentPeerMiddleware(maxBodyBytes: configuration.maxBodyBytes))
        router.add(middleware: HeartbeatMiddleware(hub: hub))
        let api = FleetAPI(
            engine: engine,
            hub: hub,
            ca: ca,
            policy: policy,
            integrations: integrations,
            configuration: configuration,
            logger: logger
        )
        try api.registerHandlers(on: router, middlewares: [ErrorHandlingMiddleware()])
        let app = Application(
            router: router,
            server: try .tls(
                .http1(configuration: .init(idleTimeout: .seconds(Int64(configuration.maxWait) + 60))),
                tlsConfiguration: tlsConfiguration()
            ),
            configuration: .init(
                address: .hostname(configuration.address, port: configuration.port),
                serverName: nil,
                backlog: 4096,
                reuseAddress: true,
                availableConnectionsDelegate: MaximumAvailableConnections(configuration.maxConnections)
            ),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? 0) },
            logger: logger
        )
        var services = ServiceGroupConfiguration(
            // Shut down last to first: the hub answers the pending polls before the server
            // waits for its requests in flight to end.
            services: [
                app, DueWork(engine: engine, interval: configuration.tickInterval, logger: logger),
                FeedService(hub: hub),
                PolicyWatch(
                    policy: policy,
                    integrations: integrations,
                    interval: configuration.policyCheckInterval
                ),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
        // A request still waiting for a database that went away is cancelled after this, so
        // SIGTERM always ends the server (systemd's stop would otherwise wait 90 s, then kill).
        services.maximumGracefulShutdownDuration = configuration.shutdownTimeout
        try await ServiceGroup(configuration: services).run()
    }
}

/// The hub as a service: followed until a graceful shutdown, which answers every pending wait.
struct FeedService: Service {
    let hub: GrantFeedHub

    func run() async throws {
        let following = Task { await hub.run() }
        try? await gracefulShutdown()
        await hub.shutdown()
        following.cancel()
        // It ends at once, unless a store connection that went away mid-call is not noticed by
        // postgres-nio (seen in 1 of 3 runs of ServerTests.sigtermDatabaseAway): the pending
        // waits are answered already, so the exit does not wait for it.
        _ = await finished(following, within: .seconds(2))
    }
}

/// Due work, claimed every `interval`: each replica claims, and each row is done once
/// (`FOR UPDATE SKIP LOCKED`).
struct DueWork: Service {
    let engine: ApprovalEngine
    let interval: Duration
    let logger: Logger

    func run() async throws {
        var failing = false
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                // A tick waiting for a store that is away must not hold up the shutdown.
                _ = try await cancelWhenGracefulShutdown { try await engine.tick() }
                if failing { logger.notice("due work runs again") }
                failing = false
            } catch {
                if Task.isShuttingDownGracefully || Task.isCancelled { break }
                if !failing { logger.error("due work failed, retrying every \(interval): \(error)") }
                failing = true
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}

/// The policy and the integrations file, read again when they change (checked every `interval`)
/// and at once on SIGHUP.
struct PolicyWatch: Service {
    let policy: ServerPolicy
    let integrations: ServerIntegrations
    let interval: Duration

    func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        let onHangup = Task {
            for await _ in hangups {
                policy.reload(force: true)
                integrations.reload(force: true)
            }
        }
        defer { onHangup.cancel() }
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            policy.reload()
            integrations.reload()
        }
    }
}

/// Waits for `task` at most `limit`; whether it ended. The task goes on if it did not (awaiting a
/// task's value does not cancel it, and a task that ignores cancellation is waited for forever).
public func finished(_ task: Task<Void, Never>, within limit: Duration) async -> Bool {
    let (ends, end) = AsyncStream<Bool>.makeStream()
    Task {
        await task.value
        end.yield(true)
    }
    let timer = Task {
        try? await Task.sleep(for: limit)
        end.yield(false)
    }
    var done = false
    for await value in ends {
        done = value
        break
    }
    end.finish()
    timer.cancel()
    return done
}
