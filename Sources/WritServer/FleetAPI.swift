import FoundationEssentials
import Glibc
import Logging
import NIOConcurrencyHelpers
import OpenAPIRuntime
import WritCore
import WritEngine
import WritFleetAPI
import X509

/// The fleet API's routes (Sources/WritFleetAPI/openapi.yaml). Agent routes take the host from
/// the client certificate (`AgentPeer.current`) and ask the engine, per request, whether that
/// host may still be served with that key.
struct FleetAPI: APIProtocol {
    let engine: ApprovalEngine
    let hub: GrantFeedHub
    let ca: FleetCA
    let policy: ServerPolicy
    let integrations: ServerIntegrations
    let configuration: ServerConfiguration
    let logger: Logger
    /// Enrollments and renewals being signed: apart, so that a flood of enrollment attempts
    /// (no certificate needed) never holds up enrolled hosts' renewals.
    let enrolling: InFlightLimit
    let renewing: InFlightLimit

    init(
        engine: ApprovalEngine,
        hub: GrantFeedHub,
        ca: FleetCA,
        policy: ServerPolicy,
        integrations: ServerIntegrations,
        configuration: ServerConfiguration,
        logger: Logger
    ) {
        self.engine = engine
        self.hub = hub
        self.ca = ca
        self.policy = policy
        self.integrations = integrations
        self.configuration = configuration
        self.logger = logger
        enrolling = InFlightLimit(configuration.maxSigning)
        renewing = InFlightLimit(configuration.maxSigning)
    }

    /// The server's clock, in milliseconds: every answer carries it.
    static func now() -> Int64 { FleetClock.milliseconds() }

    static func problem(_ message: String) -> Components.Schemas.Problem {
        .init(error: message, serverTimeMs: now())
    }

    /// Why a request is refused, before the operation's own answer is chosen.
    enum Refusal: Error {
        case badRequest(String)
        case unauthorized(String)
        case forbidden(String)
        case gone(String)
        case conflict(String)
        case unavailable(String)
        case failed(String)

        /// What the engine's error means for the agent (do-catch in a closure sees `any Error`).
        init(_ error: any Error) {
            guard let error = error as? EngineError else {
                self = .failed("\(error)")
                return
            }
            switch error {
            case .refused(let m): self = .forbidden(m)
            case .notFound(let m): self = .forbidden(m)
            case .gone(let m): self = .gone(m)
            case .unavailable(let m), .retryable(let m): self = .unavailable(m)
            case .store: self = .unavailable("the server's store is unreachable: retry in a few seconds")
            case .corrupt, .schema: self = .failed(error.description)
            }
        }

        var problem: Components.Schemas.Problem {
            switch self {
            case .badRequest(let m), .unauthorized(let m), .forbidden(let m), .gone(let m), .conflict(let m),
                .unavailable(let m), .failed(let m):
                FleetAPI.problem(m)
            }
        }
    }

    /// The calling agent, once the engine says it may be served.
    func agent() async throws(Refusal) -> AgentPeer {
        guard let peer = AgentPeer.current else {
            throw .unauthorized("this route needs the client certificate of an enrolled host: enroll with writd enroll")
        }
        let allowed: Bool
        do {
            allowed = try await engine.hostMayConnect(peer.host, keyFingerprint: peer.key)
        } catch {
            throw Refusal(error)
        }
        guard allowed else {
            logger.warning("refused \(peer.host): disabled, unknown, or its key was replaced by a newer enrollment")
            throw .forbidden(
                "host \(peer.host) is disabled, or enrolled again with another key: ask an admin (writ-server host enable/enroll)"
            )
        }
        return peer
    }

    func log(_ operation: String, _ refusal: Refusal, host: String?) {
        let who = host ?? "an unauthenticated client"
        switch refusal {
        case .failed(let m): logger.error("\(operation) for \(who) failed: \(m)")
        case .unavailable(let m): logger.notice("\(operation) for \(who): \(m)")
        default: logger.info("\(operation) for \(who) refused: \(refusal.problem.error)")
        }
    }

    func authority(_ input: Operations.Authority.Input) async throws -> Operations.Authority.Output {
        .ok(
            .init(
                body: .json(
                    .init(
                        ca: FleetPKI.pem(ca.certificate),
                        sha256: FleetPKI.fingerprint(ca.certificate),
                        serverTimeMs: Self.now()
                    )
                )
            )
        )
    }

    /// Runs one operation: a refusal becomes the operation's own answer for it, and is logged
    /// with the host when the certificate named one.
    func answer<Output: RefusalAnswer>(
        _ operation: String,
        _ body: (inout String?) async throws(Refusal) -> Output
    ) async -> Output {
        var host: String?
        do {
            return try await body(&host)
        } catch {
            log(operation, error, host: host)
            if case .failed = error { return .undocumented(statusCode: 500, .init()) }
            return .refused(error, error.problem)
        }
    }

    // MARK: enrollment and renewal

    func enroll(_ input: Operations.Enroll.Input) async throws -> Operations.Enroll.Output {
        await answer("enroll") { (_) throws(Refusal) in
            guard case .json(let body) = input.body else { throw .badRequest("send JSON") }
            guard enrolling.enter() else { throw .unavailable("too many enrollments at once: retry in a few seconds") }
            defer { enrolling.leave() }
            let request: CertificateSigningRequest
            do { request = try FleetPKI.readRequest(body.csr) } catch { throw .badRequest("\(error)") }
            let host: EngineHost
            do {
                host = try await engine.enroll(
                    token: body.token,
                    keyFingerprint: FleetPKI.fingerprint(request.publicKey)
                )
            } catch {
                throw Refusal(error)
            }
            logger.notice("enrolled \(host.name)")
            return .ok(.init(body: .json(try credentials(host: host.name, publicKey: request.publicKey))))
        }
    }

    func renew(_ input: Operations.Renew.Input) async throws -> Operations.Renew.Output {
        await answer("renew") { (host) throws(Refusal) in
            guard case .json(let body) = input.body else { throw .badRequest("send JSON") }
            let peer = try await agent()
            host = peer.host
            let request: CertificateSigningRequest
            do { request = try FleetPKI.readRequest(body.csr) } catch { throw .badRequest("\(error)") }
            guard FleetPKI.fingerprint(request.publicKey) == peer.key else {
                throw .badRequest("a renewal keeps the host's key: to change the key, enroll again with a new token")
            }
            guard renewing.enter() else { throw .unavailable("too many renewals at once: retry in a few seconds") }
            defer { renewing.leave() }
            return .ok(.init(body: .json(try credentials(host: peer.host, publicKey: request.publicKey))))
        }
    }

    private func credentials(
        host: String,
        publicKey: Certificate.PublicKey
    ) throws(Refusal)
        -> Components.Schemas.Credentials
    {
        let certificate: Certificate
        do {
            certificate = try ca.issueClient(
                host: host,
                publicKey: publicKey,
                lifetime: configuration.agentCertificateLifetime
            )
        } catch {
            throw .failed(error.description)
        }
        return .init(
            host: host,
            certificate: FleetPKI.pem(certificate),
            ca: FleetPKI.pem(ca.certificate),
            notAfter: Int64(certificate.notValidAfter.timeIntervalSince1970),
            serverTimeMs: Self.now()
        )
    }

    // MARK: grants

    func grantSnapshot(_ input: Operations.GrantSnapshot.Input) async throws -> Operations.GrantSnapshot.Output {
        await answer("snapshot") { (host) throws(Refusal) in
            let peer = try await agent()
            host = peer.host
            let snapshot: (grants: [EngineGrant], cursor: Int64)
            do { snapshot = try await engine.grantSnapshot(forHost: peer.host) } catch { throw Refusal(error) }
            return .ok(.init(body: .json(Self.page(snapshot.grants, cursor: snapshot.cursor, more: false))))
        }
    }

    func grantChanges(_ input: Operations.GrantChanges.Input) async throws -> Operations.GrantChanges.Output {
        await answer("changes") { (host) throws(Refusal) in
            guard let after = FeedCursor.parse(input.query.cursor) else {
                throw .badRequest(
                    "\(input.query.cursor.prefix(64)) is not a cursor of this server: take a new snapshot"
                )
            }
            let wait = min(max(input.query.wait ?? 30, 0), configuration.maxWait)
            let peer = try await agent()
            host = peer.host
            // Heartbeats asked for: the first interval is waited here, the rest while they go out
            // (HeartbeatMiddleware).
            var beat = input.query.heartbeat.flatMap { FleetHeartbeat.allowed.contains($0) ? $0 : nil }
            if HeartbeatSlot.current == nil || (beat ?? wait) >= wait { beat = nil }
            let first = beat ?? wait
            let started = ContinuousClock.now
            let answer: GrantFeedHub.Answer
            do {
                answer = try await hub.wait(host: peer.host, after: after, timeout: .seconds(first))
            } catch {
                throw Refusal(error)
            }
            // Nothing within the first interval, and not woken early (the server stopping, the
            // host changed): the rest of the wait goes to the middleware.
            if let slot = HeartbeatSlot.current, let beat, answer.grants.isEmpty, !answer.more,
                ContinuousClock.now - started >= .seconds(first)
            {
                slot.rest = .init(host: peer.host, cursor: answer.cursor, remaining: wait - first, interval: beat)
            }
            return .ok(.init(body: .json(Self.page(answer.grants, cursor: answer.cursor, more: answer.more))))
        }
    }

    static func page(_ grants: [EngineGrant], cursor: Int64, more: Bool) -> Components.Schemas.GrantPage {
        .init(grants: grants.map(wire), cursor: FeedCursor.format(cursor), more: more, serverTimeMs: now())
    }

    static func wire(_ g: EngineGrant) -> Components.Schemas.Grant {
        .init(
            id: g.id,
            requestId: g.requestID,
            user: g.user,
            capability: g.capability == "login" ? .login : .sudo,
            host: g.host,
            runas: g.runas,
            commands: g.commands,
            notBefore: g.notBefore,
            expiresAt: g.expiresAt,
            approvedBy: g.approvedBy,
            reason: g.reason,
            revokedAt: g.revokedAt,
            revokedBy: g.revokedBy,
            endedAt: g.endedAt,
            endReason: g.endReason
        )
    }

    // MARK: audit

    func auditHead(_ input: Operations.AuditHead.Input) async throws -> Operations.AuditHead.Output {
        await answer("audit head") { (host) throws(Refusal) in
            let peer = try await agent()
            host = peer.host
            let head: HostAuditHead?
            do { head = try await engine.hostAuditHead(peer.host) } catch { throw Refusal(error) }
            return .ok(.init(body: .json(.init(seq: head?.seq ?? 0, hash: head?.hash, serverTimeMs: Self.now()))))
        }
    }

    func uploadAudit(_ input: Operations.UploadAudit.Input) async throws -> Operations.UploadAudit.Output {
        await answer("audit upload") { (host) throws(Refusal) in
            guard case .json(let body) = input.body else { throw .badRequest("send JSON") }
            let peer = try await agent()
            host = peer.host
            let head: HostAuditHead?
            do {
                head = try await engine.uploadAudit(host: peer.host, lines: body.lines)
            } catch {
                // The engine refuses what does not follow the stored chain: a conflict, not a
                // disabled host.
                if case .refused(let m) = error as? EngineError { throw .conflict(m) }
                throw Refusal(error)
            }
            return .ok(.init(body: .json(.init(seq: head?.seq ?? 0, hash: head?.hash, serverTimeMs: Self.now()))))
        }
    }
}

/// An operation's answers to a refusal: each has its own set of statuses (openapi.yaml), and
/// a refusal it has no status for takes the nearest one it has.
protocol RefusalAnswer {
    static func refused(_ refusal: FleetAPI.Refusal, _ problem: Components.Schemas.Problem) -> Self
    static func undocumented(statusCode: Int, _ payload: UndocumentedPayload) -> Self
}

extension Operations.Enroll.Output: RefusalAnswer {
    static func refused(_ refusal: FleetAPI.Refusal, _ problem: Components.Schemas.Problem) -> Self {
        switch refusal {
        case .badRequest: .badRequest(.init(body: .json(problem)))
        case .unavailable, .failed: .serviceUnavailable(.init(body: .json(problem)))
        case .forbidden, .unauthorized, .gone, .conflict: .forbidden(.init(body: .json(problem)))
        }
    }
}

extension Operations.Renew.Output: StandardRefusals {}

extension Operations.GrantSnapshot.Output: RefusalAnswer {
    static func refused(_ refusal: FleetAPI.Refusal, _ problem: Components.Schemas.Problem) -> Self {
        switch refusal {
        case .unauthorized: .unauthorized(.init(body: .json(problem)))
        case .unavailable, .failed: .serviceUnavailable(.init(body: .json(problem)))
        case .forbidden, .gone, .conflict, .badRequest: .forbidden(.init(body: .json(problem)))
        }
    }
}

extension Operations.GrantChanges.Output: RefusalAnswer {
    static func refused(_ refusal: FleetAPI.Refusal, _ problem: Components.Schemas.Problem) -> Self {
        switch refusal {
        case .badRequest: .badRequest(.init(body: .json(problem)))
        case .unauthorized: .unauthorized(.init(body: .json(problem)))
        case .gone: .gone(.init(body: .json(problem)))
        case .unavailable, .failed: .serviceUnavailable(.init(body: .json(problem)))
        case .forbidden, .conflict: .forbidden(.init(body: .json(problem)))
        }
    }
}

extension Operations.AuditHead.Output: RefusalAnswer {
    static func refused(_ refusal: FleetAPI.Refusal, _ problem: Components.Schemas.Problem) -> Self {
        switch refusal {
        case .unauthorized: .unauthorized(.init(body: .json(problem)))
        case .unavailable, .failed: .serviceUnavailable(.init(body: .json(problem)))
        case .forbidden, .gone, .conflict, .badRequest: .forbidden(.init(body: .json(problem)))
        }
    }
}

extension Operations.UploadAudit.Output: RefusalAnswer {
    static func refused(_ refusal: FleetAPI.Refusal, _ problem: Components.Schemas.Problem) -> Self {
        switch refusal {
        case .badRequest: .badRequest(.init(body: .json(problem)))
        case .unauthorized: .unauthorized(.init(body: .json(problem)))
        case .conflict: .conflict(.init(body: .json(problem)))
        case .unavailable, .failed: .serviceUnavailable(.init(body: .json(problem)))
        case .forbidden, .gone: .forbidden(.init(body: .json(problem)))
        }
    }
}

/// The feed's cursors on the wire: `1.` and the position. Opaque to agents, so a later server can
/// add what it needs (a store epoch, for a failover) without a new route.
enum FeedCursor {
    static func format(_ position: Int64) -> String { "1.\(position)" }

    static func parse(_ text: String) -> Int64? {
        guard text.hasPrefix("1."), text.utf8.count <= 24, let n = Int64(text.dropFirst(2)), n >= 0 else { return nil }
        return n
    }
}

/// A count of operations in flight with a ceiling: past it, callers are told to come back.
final class InFlightLimit: Sendable {
    private let count = NIOLockedValueBox(0)
    private let limit: Int

    init(_ limit: Int) { self.limit = limit }

    func enter() -> Bool {
        count.withLockedValue { n in
            guard n < limit else { return false }
            n += 1
            return true
        }
    }

    func leave() { count.withLockedValue { $0 -= 1 } }
}
