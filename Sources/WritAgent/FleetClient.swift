import AsyncHTTPClient
import FoundationEssentials
import Glibc
import NIOCore
import NIOPosix
import NIOSSL
import OpenAPIAsyncHTTPClient
import OpenAPIRuntime
import WritFleetAPI
import X509

/// Why a call to the server did not give its answer.
public enum AgentError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The server refused this host (disabled, enrolled again elsewhere, a used token): retrying
    /// will not help; an admin must act.
    case refused(String)
    /// The cursor is one the server cannot follow from: take a new snapshot.
    case gone(String)
    /// The records do not follow what the server stored.
    case conflict(String)
    /// Not reachable (no connection, no answer in time): retry soon, with jitter; the server is
    /// not loaded by a connection it never sees.
    case unavailable(String)
    /// The server answered that it cannot serve now (too many waiting, its store down, an error
    /// of its own): back off, doubling, with jitter.
    case busy(String)
    /// Something here is wrong (a bad URL, unreadable credentials, a CA that does not match).
    case local(String)
    /// The server failed, or does not know the call (an answer outside the contract): its
    /// admins must look; asking again soon will not help.
    case failed(String)

    public var description: String {
        switch self {
        case .refused(let m), .gone(let m), .conflict(let m), .unavailable(let m), .busy(let m), .local(let m),
            .failed(let m):
            m
        }
    }
}

/// An answer with the local clock around it: `sentAt` and `receivedAt` (milliseconds) bound the
/// moment the server stamped `serverTimeMs`, which is what clock-skew correction needs.
public struct Timed<Value: Sendable>: Sendable {
    public var value: Value
    public var sentAt: Int64
    public var receivedAt: Int64
}

/// The agent's side of the fleet API (Sources/WritFleetAPI/openapi.yaml): the generated client
/// over AsyncHTTPClient, with the host's client certificate and the fleet CA as its only trust
/// root. One per set of credentials: a renewal makes a new one.
public final class FleetClient: Sendable {
    /// One client, one connection pool: the long-poll reuses the connection the snapshot or the
    /// last call opened (a second pool would double the TLS handshakes of a fleet restarting at
    /// once). Its reads time out after three heartbeats missed; a quick call's answer must
    /// begin within that too.
    let http: HTTPClient
    /// Seconds between the heartbeats a long-poll asks the server for (nil: none).
    public let heartbeat: Int?
    /// Calls that answer at once, and the long-poll (up to a minute on the server).
    let quick: Client
    let polling: Client
    public let server: String

    /// The heartbeat agents ask for unless told otherwise (seconds). A long-poll that hears
    /// nothing for three of them is a lost connection (a partition, a replica gone without a
    /// word): it is dropped, not waited out. Each costs the server a write: at 10,000 agents, 2 s
    /// is about a third of a core of this machine (BENCHMARKS.md).
    public static let defaultHeartbeat = 2

    /// The wait one long-poll asks for: `base` seconds, 5 more or fewer at random. Polls answered
    /// together (a server restarted, a network back) come back spread over 10 s instead of as
    /// one wave every `base` seconds: 10,000 agents asking for exactly 30 s kept the server's
    /// answers in one 2 s burst, and an approval landing in it waited up to 2-4 s (BENCHMARKS.md).
    public static func pollWait<G: RandomNumberGenerator>(_ base: Int, using rng: inout G) -> Int {
        max(1, base + Int.random(in: -5...5, using: &rng))
    }

    /// A client for `server`, trusting `caPEM` only, presenting `credentials` when given. A
    /// long-poll asks for a heartbeat every `heartbeat` seconds and is given up after three
    /// missed, or after `pollTimeout` in all; without heartbeats, after `pollTimeout` only.
    public init(
        server: String,
        caPEM: String,
        credentials: AgentCredentials?,
        pollTimeout: Duration = .seconds(63),
        heartbeat: Int? = FleetClient.defaultHeartbeat,
        eventLoopGroup: (any EventLoopGroup)? = nil
    ) throws(AgentError) {
        if let heartbeat, !FleetHeartbeat.allowed.contains(heartbeat) {
            throw .local("a heartbeat of \(heartbeat) s: it takes 1 to 30 s")
        }
        guard let url = URL(string: server), url.scheme == "https", url.host != nil else {
            throw .local("\(server) is not an https:// URL of a writ-server")
        }
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        // At writd's stop, waiting 5 s (the default) for the server's close_notify on each
        // connection only delays the exit.
        tls.shutdownTimeout = .seconds(1)
        do {
            // Exactly one certificate: a PEM text with more would trust more than what was pinned.
            let roots = try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8))
            guard roots.count == 1 else {
                throw AgentError.local("the fleet CA must be one certificate, not \(roots.count)")
            }
            tls.trustRoots = .certificates(roots)
            if let credentials {
                tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(credentials.certificatePEM.utf8))
                    .map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(credentials.keyPEM.utf8), format: .pem))
            }
        } catch {
            throw .local("the agent's credentials do not load: \(error)")
        }
        self.server = server
        self.heartbeat = heartbeat
        http = Self.makeHTTP(
            tls,
            readTimeout: heartbeat.map { .seconds(3 * $0) } ?? pollTimeout,
            eventLoopGroup: eventLoopGroup
        )
        quick = Client(
            serverURL: url,
            transport: AsyncHTTPClientTransport(configuration: .init(client: http, timeout: .seconds(20)))
        )
        polling = Client(
            serverURL: url,
            transport: AsyncHTTPClientTransport(
                configuration: .init(
                    client: http,
                    timeout: .nanoseconds(Int64(pollTimeout.components.seconds) * 1_000_000_000)
                )
            )
        )
    }

    /// `eventLoopGroup`: NIO's shared one unless given (a load generator keeps its thousands of
    /// agents off the threads its own database client uses).
    static func makeHTTP(
        _ tls: TLSConfiguration,
        readTimeout: Duration = .seconds(63),
        eventLoopGroup: (any EventLoopGroup)? = nil
    ) -> HTTPClient {
        var configuration = HTTPClient.Configuration(
            tlsConfiguration: tls,
            redirectConfiguration: .disallow,
            timeout: .init(
                // A server that does not take the connection within a second is tried again soon.
                connect: .seconds(2),
                read: .nanoseconds(Int64(readTimeout.components.seconds) * 1_000_000_000)
            )
        )
        configuration.httpVersion = .http1Only
        if let eventLoopGroup {
            return HTTPClient(eventLoopGroupProvider: .shared(eventLoopGroup), configuration: configuration)
        }
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// Closes the connections; the client cannot be used after.
    public func shutdown() async {
        try? await http.shutdown()
    }

    /// Whether a server's address takes a TCP connection.
    public enum Reach: Sendable, Equatable {
        case answers
        /// Refused at once (nothing listens there), or the address does not resolve or route.
        case refused
        /// No answer within the timeout: the packets go nowhere (a partition, a host gone).
        case silent
    }

    /// Connects to `server`'s address and port and closes at once (no TLS, no request): what a
    /// partitioned agent can afford to try every half second, since the server never sees an
    /// attempt that does not reach it.
    public static func probe(_ server: String, timeout: Duration) async -> Reach {
        guard let url = URL(string: server), let host = url.host else { return .refused }
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.milliseconds(Int64(timeout / .milliseconds(1))))
        do {
            let channel = try await bootstrap.connect(host: host, port: url.port ?? 443).get()
            try? await channel.close()
            return .answers
        } catch ChannelError.connectTimeout {
            return .silent
        } catch {
            return .refused
        }
    }

    /// Local wall-clock time in milliseconds.
    public static func now() -> Int64 { FleetClock.milliseconds() }

    func timed<T: Sendable>(_ call: () async throws(AgentError) -> T) async throws(AgentError) -> Timed<T> {
        let sent = Self.now()
        let value = try await call()
        return Timed(value: value, sentAt: sent, receivedAt: Self.now())
    }

    /// The transport's failure, as what to do next.
    static func unreachable(_ server: String, _ error: any Error) -> AgentError {
        // The generated client wraps the transport's error with the whole request; one line is
        // what a log needs.
        let cause = (error as? ClientError).map { "\($0.underlyingError)" } ?? "\(error)"
        return .unavailable("cannot reach \(server): \(cause)")
    }

    /// An answer the contract does not list. A server overloaded or restarting behind a proxy
    /// (429, 502, 504) is busy: back off and ask again. Anything else (404: a server that does not
    /// know this call; 500: a failure of its own) will not mend by itself soon.
    public static func undocumented(_ status: Int) -> AgentError {
        [429, 502, 503, 504].contains(status)
            ? .busy("the server answered \(status)")
            : .failed(
                "writ-server answered HTTP \(status)\(status == 404 ? " (it does not know this call: an older version?)" : "")"
            )
    }

    static func refusal(_ problem: Components.Schemas.Problem?, status: Int) -> String {
        problem?.error ?? "the server answered \(status)"
    }

    // MARK: enrollment

    /// Enrolls this host: reads the server's CA over a connection that trusts nothing yet,
    /// checks its SHA-256 against `caSHA256` (printed by `writ-server host enroll` beside the
    /// token), and only then sends the token and a certificate request for a new key, over a
    /// connection that trusts that CA alone.
    public static func enroll(
        server: String,
        token: String,
        caSHA256: String,
        localName: String
    ) async throws(AgentError) -> AgentCredentials {
        let caPEM = try await authority(server: server, expectedSHA256: caSHA256.lowercased())
        let keyPEM = FleetPKI.makeKey()
        let request: String
        do { request = try FleetPKI.makeRequest(keyPEM: keyPEM, host: localName) } catch {
            throw .local(error.description)
        }
        let client = try FleetClient(server: server, caPEM: caPEM, credentials: nil)
        defer { Task { await client.shutdown() } }
        let output: Operations.Enroll.Output
        do {
            output = try await client.quick.enroll(body: .json(.init(token: token, csr: request)))
        } catch {
            throw unreachable(server, error)
        }
        switch output {
        case .ok(let ok):
            guard case .json(let c) = ok.body else { throw .busy("the server answered without JSON") }
            return AgentCredentials(
                server: server,
                host: c.host,
                keyPEM: keyPEM,
                certificatePEM: c.certificate,
                caPEM: c.ca
            )
        case .badRequest(let r): throw .local(refusal(try? r.body.json, status: 400))
        case .forbidden(let r): throw .refused(refusal(try? r.body.json, status: 403))
        case .serviceUnavailable(let r): throw .busy(refusal(try? r.body.json, status: 503))
        case .undocumented(let status, _): throw Self.undocumented(status)
        }
    }

    /// The certificate of an enroll or renew answer, accepted only when it is for this host's
    /// own key, signed by the pinned CA, and the answer names that CA: the CA the agent trusts
    /// never changes after enrollment. Returned as PEM written anew.
    static func checked(
        _ c: Components.Schemas.Credentials,
        keyPEM: String,
        caPEM: String
    ) throws(AgentError) -> String {
        guard let ca = try? Certificate(pemEncoded: caPEM), let sent = try? Certificate(pemEncoded: c.ca),
            FleetPKI.fingerprint(sent) == FleetPKI.fingerprint(ca)
        else { throw .local("the server answered with another CA than the one this host trusts: refused") }
        guard let certificate = try? Certificate(pemEncoded: c.certificate),
            let key = try? Certificate.PrivateKey(pemEncoded: keyPEM),
            certificate.publicKey == key.publicKey,
            ca.publicKey.isValidSignature(certificate.signature, for: certificate),
            FleetPKI.commonName(certificate) == c.host
        else {
            throw .local("the server's certificate is not for this host's key, or not signed by the fleet CA: refused")
        }
        return FleetPKI.pem(certificate)
    }

    /// The server's CA, read without trusting the connection and accepted only when its SHA-256
    /// is `expectedSHA256`.
    static func authority(server: String, expectedSHA256: String) async throws(AgentError) -> String {
        guard let url = URL(string: server), url.scheme == "https" else {
            throw .local("\(server) is not an https:// URL of a writ-server")
        }
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .none
        let http = makeHTTP(tls)
        let client = Client(
            serverURL: url,
            transport: AsyncHTTPClientTransport(configuration: .init(client: http, timeout: .seconds(20)))
        )
        let output: Operations.Authority.Output
        do {
            output = try await client.authority()
        } catch {
            try? await http.shutdown()
            throw unreachable(server, error)
        }
        try? await http.shutdown()
        guard case .ok(let ok) = output, case .json(let a) = ok.body else {
            throw .unavailable("\(server) did not give its CA: is it a writ-server?")
        }
        guard let certificate = try? Certificate(pemEncoded: a.ca), FleetPKI.fingerprint(certificate) == expectedSHA256
        else {
            throw .local(
                "the CA of \(server) does not have the SHA-256 given (--ca-sha256): check the URL and the value writ-server host enroll printed"
            )
        }
        return a.ca
    }

    /// A new certificate for the same key, before the current one ends.
    public func renew(_ credentials: AgentCredentials) async throws(AgentError) -> AgentCredentials {
        let request: String
        do {
            request = try FleetPKI.makeRequest(keyPEM: credentials.keyPEM, host: credentials.host)
        } catch {
            throw .local(error.description)
        }
        let output: Operations.Renew.Output
        do {
            output = try await quick.renew(body: .json(.init(csr: request)))
        } catch {
            throw Self.unreachable(server, error)
        }
        switch output {
        case .ok(let ok):
            guard case .json(let c) = ok.body else { throw .busy("the server answered without JSON") }
            var renewed = credentials
            renewed.certificatePEM = try Self.checked(c, keyPEM: credentials.keyPEM, caPEM: credentials.caPEM)
            return renewed
        case .badRequest(let r): throw .local(Self.refusal(try? r.body.json, status: 400))
        case .unauthorized(let r): throw .refused(Self.refusal(try? r.body.json, status: 401))
        case .forbidden(let r): throw .refused(Self.refusal(try? r.body.json, status: 403))
        case .serviceUnavailable(let r): throw .busy(Self.refusal(try? r.body.json, status: 503))
        case .undocumented(let status, _): throw Self.undocumented(status)
        }
    }

    // MARK: grants

    public typealias Page = Components.Schemas.GrantPage

    /// Every live grant for this host, and the cursor to follow from.
    public func snapshot() async throws(AgentError) -> Timed<Page> {
        try await timed { () throws(AgentError) -> Page in
            let output: Operations.GrantSnapshot.Output
            do { output = try await quick.grantSnapshot() } catch { throw Self.unreachable(server, error) }
            switch output {
            case .ok(let ok):
                guard case .json(let page) = ok.body else { throw .busy("the server answered without JSON") }
                return page
            case .unauthorized(let r): throw .refused(Self.refusal(try? r.body.json, status: 401))
            case .forbidden(let r): throw .refused(Self.refusal(try? r.body.json, status: 403))
            case .serviceUnavailable(let r): throw .busy(Self.refusal(try? r.body.json, status: 503))
            case .undocumented(let status, _): throw Self.undocumented(status)
            }
        }
    }

    /// The grants that changed after `cursor`, waiting up to `wait` seconds for one.
    public func changes(after cursor: String, wait: Int) async throws(AgentError) -> Timed<Page> {
        try await timed { () throws(AgentError) -> Page in
            let output: Operations.GrantChanges.Output
            do {
                output = try await polling.grantChanges(
                    query: .init(cursor: cursor, wait: wait, heartbeat: heartbeat)
                )
            } catch {
                throw Self.unreachable(server, error)
            }
            switch output {
            case .ok(let ok):
                guard case .json(let page) = ok.body else { throw .busy("the server answered without JSON") }
                return page
            case .badRequest(let r): throw .gone(Self.refusal(try? r.body.json, status: 400))
            case .gone(let r): throw .gone(Self.refusal(try? r.body.json, status: 410))
            case .unauthorized(let r): throw .refused(Self.refusal(try? r.body.json, status: 401))
            case .forbidden(let r): throw .refused(Self.refusal(try? r.body.json, status: 403))
            case .serviceUnavailable(let r): throw .busy(Self.refusal(try? r.body.json, status: 503))
            case .undocumented(let status, _): throw Self.undocumented(status)
            }
        }
    }

    // MARK: audit

    /// Where this host's chain stands on the server: the last stored record's seq (0: none).
    public func auditHead() async throws(AgentError) -> (seq: Int64, hash: String?) {
        let output: Operations.AuditHead.Output
        do { output = try await quick.auditHead() } catch { throw Self.unreachable(server, error) }
        switch output {
        case .ok(let ok):
            guard case .json(let h) = ok.body else { throw .busy("the server answered without JSON") }
            return (h.seq, h.hash)
        case .unauthorized(let r): throw .refused(Self.refusal(try? r.body.json, status: 401))
        case .forbidden(let r): throw .refused(Self.refusal(try? r.body.json, status: 403))
        case .serviceUnavailable(let r): throw .busy(Self.refusal(try? r.body.json, status: 503))
        case .undocumented(let status, _): throw Self.undocumented(status)
        }
    }

    /// Uploads records of this host's chain, in order; the server's head after it.
    public func uploadAudit(_ lines: [String]) async throws(AgentError) -> (seq: Int64, hash: String?) {
        let output: Operations.UploadAudit.Output
        do {
            output = try await quick.uploadAudit(body: .json(.init(lines: lines)))
        } catch {
            throw Self.unreachable(server, error)
        }
        switch output {
        case .ok(let ok):
            guard case .json(let h) = ok.body else { throw .busy("the server answered without JSON") }
            return (h.seq, h.hash)
        case .badRequest(let r): throw .local(Self.refusal(try? r.body.json, status: 400))
        case .conflict(let r): throw .conflict(Self.refusal(try? r.body.json, status: 409))
        case .unauthorized(let r): throw .refused(Self.refusal(try? r.body.json, status: 401))
        case .forbidden(let r): throw .refused(Self.refusal(try? r.body.json, status: 403))
        case .serviceUnavailable(let r): throw .busy(Self.refusal(try? r.body.json, status: 503))
        case .undocumented(let status, _): throw Self.undocumented(status)
        }
    }

    // MARK: requests a user of this host makes through writd

    public typealias Request = Components.Schemas.Request

    /// The answer of an operation whose refusals are the API's four shared ones, or why not.
    func standard<Output: StandardOutput, Body>(
        _ call: () async throws -> Output,
        answer body: (Output.Ok) -> Body?
    ) async throws(AgentError) -> Body {
        let output: Output
        do { output = try await call() } catch { throw Self.unreachable(server, error) }
        if let ok = try? output.ok {
            guard let value = body(ok) else { throw .busy("the server answered without JSON") }
            return value
        }
        if let r = try? output.badRequest { throw .local(Self.refusal(try? r.body.json, status: 400)) }
        if let r = try? output.unauthorized { throw .refused(Self.refusal(try? r.body.json, status: 401)) }
        if let r = try? output.forbidden { throw .refused(Self.refusal(try? r.body.json, status: 403)) }
        if let r = try? output.serviceUnavailable { throw .busy(Self.refusal(try? r.body.json, status: 503)) }
        throw .busy("the server answered with a status its API does not name")
    }

    /// Files a request for this host, for `filing.user`.
    public func fileRequest(_ filing: Components.Schemas.RequestFiling) async throws(AgentError) -> Request {
        try await standard(
            { try await quick.fileRequest(body: .json(filing)) },
            answer: { try? $0.body.json.request }
        )
    }

    /// `user`'s requests filed through this host, and those they may decide from it.
    public func listRequests(user: String, groups: [String]) async throws(AgentError) -> [Request] {
        try await standard(
            { try await quick.listRequests(query: .init(user: user, groups: groups.joined(separator: ","))) },
            answer: { try? $0.body.json.requests }
        )
    }

    /// `decision.user` approves or denies request `id`.
    public func decide(
        _ id: String,
        _ decision: Components.Schemas.RequestDecision
    ) async throws(AgentError)
        -> Request
    {
        try await standard(
            { try await quick.decideRequest(path: .init(id: id), body: .json(decision)) },
            answer: { try? $0.body.json.request }
        )
    }

    /// The requester withdraws request `id`.
    public func cancel(_ id: String, user: String) async throws(AgentError) -> Request {
        try await standard(
            { try await quick.cancelRequest(path: .init(id: id), body: .json(.init(user: user))) },
            answer: { try? $0.body.json.request }
        )
    }

    /// The holder asks for more time on grant `id`.
    public func extendGrant(
        _ id: String,
        _ extension: Components.Schemas.Extension
    ) async throws(AgentError)
        -> Request
    {
        try await standard(
            { try await quick.extendGrant(path: .init(id: id), body: .json(`extension`)) },
            answer: { try? $0.body.json.request }
        )
    }

    /// The holder ends their grant `id` early.
    public func revokeGrant(
        _ id: String,
        user: String,
        reason: String
    ) async throws(AgentError)
        -> Components.Schemas.Grant
    {
        try await standard(
            { try await quick.revokeOwnGrant(path: .init(id: id), body: .json(.init(user: user, reason: reason))) },
            answer: { try? $0.body.json.grant }
        )
    }
}

/// The generated answers of the operations whose refusals are openapi.yaml's four shared
/// responses: read the same way whatever the operation.
protocol StandardOutput {
    associatedtype Ok
    var ok: Ok { get throws }
    var badRequest: Components.Responses.BadRequest { get throws }
    var unauthorized: Components.Responses.Unauthorized { get throws }
    var forbidden: Components.Responses.Forbidden { get throws }
    var serviceUnavailable: Components.Responses.Unavailable { get throws }
}

extension Operations.FileRequest.Output: StandardOutput {}
extension Operations.ListRequests.Output: StandardOutput {}
extension Operations.DecideRequest.Output: StandardOutput {}
extension Operations.CancelRequest.Output: StandardOutput {}
extension Operations.RevokeOwnGrant.Output: StandardOutput {}
extension Operations.ExtendGrant.Output: StandardOutput {}
