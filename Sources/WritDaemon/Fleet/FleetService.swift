import Glibc
import Logging
import ServiceLifecycle
import WritAgent
import WritAudit
import WritEngine
import WritFleetAPI

/// writd as a fleet's agent: how it reaches writ-server.
public struct FleetConfiguration: Sendable {
    /// The server's URLs (a load balancer's, or each replica's): the agent moves to the next one
    /// when a call fails.
    public var servers: [String]
    /// Where `writd enroll` left the credentials (root-only).
    public var directory: String
    /// How long a long-poll waits on the server, before jitter (seconds).
    public var wait = 30
    /// Seconds between the heartbeats the long-poll asks for (nil: none; a lost connection is
    /// then noticed at the poll's timeout, wait + 8 s).
    public var heartbeat: Int? = FleetClient.defaultHeartbeat
    /// The host's audit log, whose records are uploaded (the server keeps the chain's head).
    public var auditPath: String?
    /// How often new audit records are uploaded, at most.
    public var auditInterval: Duration = .seconds(2)
    /// Strict mode: refuse new use of the server's grants once it has not answered for this
    /// many seconds (nil: keep enforcing them to their end).
    public var strictAfter: Int64?

    public static let defaultDirectory = "/var/lib/writ/agent"

    public init(servers: [String], directory: String = FleetConfiguration.defaultDirectory) {
        self.servers = servers
        self.directory = directory
    }
}

/// Keeps grants.db in step with the server: a snapshot, then long-polls for changes after the
/// cursor, each answer applied with its cursor in one transaction (`Engine.applyFleet`). A
/// failed call moves to the next server after a pause with jitter, so a thousand agents do not
/// come back at once; a cursor the server cannot follow takes a new snapshot. The certificate is
/// renewed half way through its life. While the server cannot be reached, the host enforces
/// what it has: the modules compare the clock, and writd's timer ends sessions on time.
public struct FleetService: Service {
    let engine: Engine
    let configuration: FleetConfiguration
    let logger: Logger

    public init(engine: Engine, configuration: FleetConfiguration, logger: Logger) {
        self.engine = engine
        self.configuration = configuration
        self.logger = logger
    }

    public func run() async throws {
        let session = FleetSession(configuration: configuration, logger: logger)
        try? await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await session.run(engine: engine) }
                if let path = configuration.auditPath {
                    group.addTask { await session.uploadAudit(from: path, every: configuration.auditInterval) }
                }
                if let limit = configuration.strictAfter {
                    group.addTask {
                        while !Task.isCancelled {
                            await engine.enforceFleetStaleness(limit: limit)
                            try? await Task.sleep(for: .seconds(1))
                        }
                    }
                }
                await group.waitForAll()
            }
        }
        await session.close()
    }
}

/// The loop's state: the credentials, the client for the current server, the backoff.
actor FleetSession {
    let configuration: FleetConfiguration
    let logger: Logger
    var credentials: AgentCredentials?
    var client: FleetClient?
    var serverIndex = 0
    var failures = 0
    var rng = SystemRandomNumberGenerator()
    /// The server's head of this host's chain, and where the log was read to.
    var auditHead: Int64?
    var auditPosition: AuditPosition?

    init(configuration: FleetConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    func close() async {
        await client?.shutdown()
        client = nil
    }

    func run(engine: Engine) async {
        while !Task.isCancelled {
            let started = ContinuousClock.now
            do {
                try await step(engine: engine)
                if failures > 0 { logger.notice("fleet: \(configuration.servers[serverIndex]) answers again") }
                failures = 0
            } catch {
                // Stopping: the call was cancelled, nothing failed.
                if Task.isCancelled { break }
                await failed(error, engine: engine, after: ContinuousClock.now - started)
            }
        }
    }

    /// One call: the snapshot when there is no cursor, else one long-poll; renewal when due.
    func step(engine: Engine) async throws(AgentError) {
        let client = try await currentClient()
        if let credentials, let renewAt = credentials.renewAt, Int64(time(nil)) >= renewAt {
            try await renew(credentials, with: client)
            return
        }
        if let cursor = await engine.fleetCursor() {
            let wait = FleetClient.pollWait(configuration.wait, using: &rng)
            let answer = try await client.changes(after: cursor, wait: wait)
            if await engine.applyFleet(FleetSession.answer(answer, snapshot: false)).failed {
                throw .local("the server's changes could not be written to the grant store; retrying")
            }
        } else {
            let answer = try await client.snapshot()
            let applied = await engine.applyFleet(FleetSession.answer(answer, snapshot: true))
            if applied.failed {
                throw .local("the server's snapshot could not be written to the grant store; retrying")
            }
            logger.notice(
                "fleet: snapshot from \(client.server): \(answer.value.grants.count) live grant(s), \(applied.added) new here"
            )
        }
    }

    /// Uploads the host's audit records the server does not have, in order, every `interval`
    /// while there are any: each record once (the server refuses a gap or a rewrite, which is
    /// logged and retried from the server's head a minute later).
    func uploadAudit(from path: String, every interval: Duration) async {
        let log = AuditLog(path: path, rotateBytes: nil, keep: nil)
        while !Task.isCancelled {
            var pause = interval
            if let client {
                do {
                    let head: Int64
                    if let known = auditHead {
                        head = known
                    } else {
                        head = try await client.auditHead().seq
                        auditHead = head
                    }
                    let (lines, position) = try log.records(
                        after: head,
                        maxRecords: 500,
                        maxBytes: 2 << 20,
                        resume: auditPosition
                    )
                    if !lines.isEmpty {
                        let stored = try await client.uploadAudit(lines)
                        auditHead = stored.seq
                        auditPosition = stored.seq == position?.seq ? position : nil
                        if lines.count == 500 { pause = .zero }
                    }
                } catch let error as AgentError {
                    if case .conflict = error {
                        logger.error("fleet: the server refused this host's audit records: \(error.description)")
                        Syslog.log(LOG_ERR, "fleet: audit upload refused: \(error.description)")
                        pause = .seconds(60)
                    }
                    auditHead = nil
                    auditPosition = nil
                } catch {
                    logger.error("fleet: cannot read the audit log for upload: \(error)")
                    pause = .seconds(60)
                }
            }
            try? await Task.sleep(for: pause)
        }
    }

    static func answer(_ timed: Timed<FleetClient.Page>, snapshot: Bool) -> FleetAnswer {
        FleetAnswer(
            grants: timed.value.grants.map(FleetSession.grant),
            cursor: timed.value.cursor,
            snapshot: snapshot,
            serverTime: timed.value.serverTimeMs,
            sentAt: timed.sentAt,
            receivedAt: timed.receivedAt
        )
    }

    static func grant(_ g: Components.Schemas.Grant) -> EngineGrant {
        var grant = EngineGrant(
            id: g.id,
            requestID: g.requestId,
            user: g.user,
            capability: g.capability.rawValue,
            host: g.host,
            runas: g.runas,
            commands: g.commands,
            notBefore: g.notBefore,
            expiresAt: g.expiresAt,
            approvedBy: g.approvedBy,
            reason: g.reason
        )
        grant.revokedAt = g.revokedAt
        grant.revokedBy = g.revokedBy
        grant.endedAt = g.endedAt
        grant.endReason = g.endReason
        return grant
    }

    func currentClient() async throws(AgentError) -> FleetClient {
        if let client { return client }
        if credentials == nil {
            do {
                credentials = try AgentCredentials.load(directory: configuration.directory)
            } catch {
                throw .local("cannot read the agent's credentials in \(configuration.directory): \(error)")
            }
            guard credentials != nil else {
                throw .local(
                    "this host is not enrolled (\(configuration.directory) is empty): run writd enroll --server URL --token TOKEN --ca-sha256 HASH"
                )
            }
        }
        let made = try FleetClient(
            server: configuration.servers[serverIndex],
            caPEM: credentials!.caPEM,
            credentials: credentials,
            // The server answers at the wait (at most 35 s): 3 s later, the connection is lost.
            pollTimeout: .seconds(configuration.wait + 5 + 3),
            heartbeat: configuration.heartbeat
        )
        client = made
        return made
    }

    func renew(_ current: AgentCredentials, with client: FleetClient) async throws(AgentError) {
        let renewed = try await client.renew(current)
        do {
            try renewed.save(directory: configuration.directory)
        } catch {
            throw .local("cannot save the renewed certificate in \(configuration.directory): \(error)")
        }
        logger.notice("fleet: certificate renewed, valid until \(renewed.notAfter ?? 0)")
        credentials = renewed
        await self.client?.shutdown()
        self.client = nil
    }

    /// After a failed call: what to do, then a pause. A server that cannot be reached is tried
    /// again (the next URL) within a second, with jitter. When a call went unanswered (a
    /// long-poll fell silent, a connection timed out), the agent first waits for a server that
    /// takes a TCP connection, trying every half second: in a partition those attempts reach no
    /// server, and the first after the heal does, so the next call goes at once and the host
    /// hears what changed meanwhile within a second. A server that answers it is busy is left
    /// alone longer: from half a second, doubling to 30 s, each pause drawn at random up to its
    /// ceiling.
    func failed(_ error: AgentError, engine: Engine, after took: Duration) async {
        failures += 1
        var pause: Double
        switch error {
        case .gone:
            logger.notice("fleet: \(error.description); taking a new snapshot")
            await engine.forgetFleetCursor()
            return
        case .unavailable, .busy:
            if failures == 1 || failures % 60 == 0 {
                logger.warning("fleet: \(error.description) (failure \(failures)); enforcing the grants this host has")
            }
            await client?.shutdown()
            client = nil
            serverIndex = (serverIndex + 1) % configuration.servers.count
            if case .busy = error {
                pause = min(30, 0.5 * Double(1 << min(failures - 1, 6)))
            } else if took >= .seconds(1), await reachable() {
                // Unanswered, and a server takes connections now: a healed partition, or a
                // replica gone and another there. (A call that fails fast does not come here:
                // asking again at once could loop.)
                pause = 0
            } else {
                pause = 1
            }
        case .refused, .conflict:
            logger.error("fleet: \(error.description)")
            Syslog.log(LOG_ERR, "fleet: \(error.description)")
            // Read the credentials again before the next call: an admin may have enrolled this
            // host again (writd enroll) while it ran.
            await client?.shutdown()
            client = nil
            credentials = nil
            pause = 60
        case .local, .failed:
            logger.error("fleet: \(error.description)")
            Syslog.log(LOG_ERR, "fleet: \(error.description)")
            pause = 10
        }
        pause = Double.random(in: (pause / 4)...pause, using: &rng)
        if pause > 0 { try? await Task.sleep(for: .milliseconds(Int(pause * 1000))) }
    }

    /// Returns once a server's address takes a TCP connection (true), or refuses one at once
    /// (false: nothing listens there; the caller pauses as for any failure). While the attempts
    /// time out it keeps trying, each server in turn.
    func reachable() async -> Bool {
        var silent = 0
        while !Task.isCancelled {
            switch await FleetClient.probe(configuration.servers[serverIndex], timeout: .milliseconds(500)) {
            case .answers:
                if silent >= 2 { logger.notice("fleet: \(configuration.servers[serverIndex]) takes connections again") }
                return true
            case .refused:
                return false
            case .silent:
                silent += 1
                if silent == 2 {
                    logger.warning(
                        "fleet: no server answers a connection (a partition?); trying every half second, enforcing the grants this host has"
                    )
                }
                serverIndex = (serverIndex + 1) % configuration.servers.count
            }
        }
        return false
    }
}
