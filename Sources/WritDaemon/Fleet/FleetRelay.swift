import Glibc
import Logging
import NIOConcurrencyHelpers
import WritAgent
import WritCore
import WritEngine
import WritFleetAPI
import WritPolicy
import WritProcesses
import WritProtocol

/// `writ request`, `approve`, `deny`, `cancel`, `revoke`, `status` and `requests` on an enrolled
/// host: writd passes them to writ-server as the Unix account the kernel named on its socket
/// (never a name the client sends), with its groups, over the host's certificate. The server
/// decides and records "USER on HOST"; the grants come back through the feed like any other.
/// What writd checks here first (sizes, the per-user filing budget) it checks exactly as
/// standalone, so a local user cannot flood the server through it.
final class FleetRelay: Sendable {
    static let operations: Set<Operation> = [
        .request, .approve, .deny, .cancel, .revoke, .extend, .status, .requests, .get,
    ]

    let servers: [String]
    let directory: String
    /// This host's name, as writd's grants name it.
    let hostName: String
    let logger: Logger
    private let state = NIOLockedValueBox<(client: FleetClient?, certificate: String, index: Int)>((nil, "", 0))
    /// Calls in flight per uid: one account cannot tie up the server through this host.
    private let inFlight = NIOLockedValueBox<[UInt32: Int]>([:])
    static let maxInFlightPerUser = 4

    init(servers: [String], directory: String, hostName: String, logger: Logger) {
        self.servers = servers
        self.directory = directory
        self.hostName = hostName
        self.logger = logger
    }

    /// The client for the current server, with the credentials on disk now: a renewal or a new
    /// enrollment (writd enroll while writd runs) is picked up at the next call.
    private func client() async throws(AgentError) -> FleetClient {
        let credentials: AgentCredentials?
        do { credentials = try AgentCredentials.load(directory: directory) } catch {
            throw .local("cannot read the agent's credentials in \(directory): \(error)")
        }
        guard let credentials else { throw .local("this host is not enrolled: an admin must run writd enroll") }
        let pem = credentials.certificatePEM
        let (current, stale, index) = state.withLockedValue {
            s -> (FleetClient?, FleetClient?, Int) in
            if let c = s.client, s.certificate == pem { return (c, nil, s.index) }
            let stale = s.client
            s.client = nil
            return (nil, stale, s.index)
        }
        if let stale { await stale.shutdown() }
        if let current { return current }
        // No long-poll here, so no heartbeat: a relayed request may wait on the server's PagerDuty
        // lookup for seconds before its answer begins (the call's deadline is 20 s).
        let made = try FleetClient(
            server: servers[index],
            caPEM: credentials.caPEM,
            credentials: credentials,
            heartbeat: nil
        )
        let (chosen, extra) = state.withLockedValue { s -> (FleetClient, FleetClient?) in
            if let existing = s.client { return (existing, made) }
            s.client = made
            s.certificate = pem
            return (made, nil)
        }
        if let extra { await extra.shutdown() }
        return chosen
    }

    /// Runs `call` on the current server. A read that cannot reach it goes to the next URL, each
    /// tried once; a change (`retry` false) is tried once, since it may have been recorded
    /// before the answer was lost: the user is told to look with writ status.
    func call<T: Sendable>(
        retry: Bool,
        _ call: (FleetClient) async throws(AgentError) -> T
    ) async throws(AgentError) -> T {
        var last: AgentError = .local("no server")
        for _ in 0..<(retry ? servers.count : 1) {
            let client = try await client()
            do {
                return try await call(client)
            } catch {
                last = error
                // Not reachable: the next call goes to the next URL. Refused: the credentials
                // may have changed; read them again next time.
                switch error {
                case .unavailable, .refused:
                    state.withLockedValue { s in
                        if s.client === client {
                            s.client = nil
                            if case .unavailable = error { s.index = (s.index + 1) % servers.count }
                        }
                    }
                    await client.shutdown()
                    guard case .unavailable = error, retry else { throw error }
                default:
                    throw error
                }
            }
        }
        throw last
    }

    /// What the user reads when the server did not answer the request.
    static func wireError(_ error: AgentError) -> WireError {
        switch error {
        case .refused(let m): WireError("refused", m)
        case .local(let m): WireError("bad_request", m)
        case .unavailable(let m), .busy(let m):
            WireError(
                "unavailable",
                "writ-server cannot take this now (\(m)); try again in a minute — the grants this host has are still enforced"
            )
        case .gone(let m), .conflict(let m): WireError("internal", m)
        case .failed(let m):
            WireError(
                "internal",
                "\(m): the server's log says why — tell the fleet's admins; the grants this host has are still enforced"
            )
        }
    }

    /// One relayed operation for `who`. `engine` keeps the per-user filing budget and serves
    /// the local half of `status` (the grants in this host's grants.db).
    func serve(
        _ r: WireRequest,
        who: UserDirectory.Account,
        groups: Set<String>,
        engine: Engine,
        caller: Caller
    ) async -> WireResponse {
        let admitted = inFlight.withLockedValue { n -> Bool in
            guard n[who.uid, default: 0] < Self.maxInFlightPerUser else { return false }
            n[who.uid, default: 0] += 1
            return true
        }
        guard admitted else {
            return .failure(
                WireError("busy", "you have \(Self.maxInFlightPerUser) calls to writ-server in flight — wait for them")
            )
        }
        defer {
            inFlight.withLockedValue { n in
                n[who.uid, default: 1] -= 1
                if n[who.uid] == 0 { n[who.uid] = nil }
            }
        }
        do throws(WireError) {
            return try await relay(r, who: who, groups: groups.sorted(), engine: engine, caller: caller)
        } catch {
            return .failure(error)
        }
    }

    private func relay(
        _ r: WireRequest,
        who: UserDirectory.Account,
        groups: [String],
        engine: Engine,
        caller: Caller
    ) async throws(WireError) -> WireResponse {
        var resp = WireResponse(ok: true)
        switch r.op {
        case .request:
            guard who.uid != 0 else {
                throw WireError("refused", "root is never restricted by Writ: no request is needed")
            }
            try await engine.requireFilingBudget(who, at: Int64(time(nil)))
            try Engine.requireShortCommandList(r.commands)
            let fields = try Engine.requestFields(r.fields)
            if let host = r.host, !HostIdentity(nodename: hostName).matches(host) {
                throw WireError(
                    "refused",
                    "a request through this host is for this host; run writ request on \(LogText.escape(host, limit: 64)) itself"
                )
            }
            let filing = Components.Schemas.RequestFiling(
                user: who.name,
                groups: groups,
                capability: r.capability ?? "",
                flow: r.flow,
                runas: r.runas,
                commands: r.commands,
                duration: r.duration,
                reason: try Engine.note(r.reason, "reason", limit: Policy.reasonLimit),
                fields: fields.isEmpty
                    ? nil : fields.sorted { $0.key < $1.key }.map { .init(name: $0.key, value: $0.value) }
            )
            let request = try await ask(change: true) { (c) throws(AgentError) in try await c.fileRequest(filing) }
            logger.info(
                "request \(request.id) by \(who.name) for \(request.capability) through the server: \(request.state)"
            )
            resp.request = Self.view(request)
        case .approve, .deny:
            let decision = Components.Schemas.RequestDecision(
                user: who.name,
                groups: groups,
                approve: r.op == .approve,
                comment: try Engine.note(r.comment),
                reason: try Engine.note(r.reason, "reason", limit: Policy.reasonLimit)
            )
            let id = try Self.id(r.id, "request")
            resp.request = Self.view(
                try await ask(change: true) { (c) throws(AgentError) in try await c.decide(id, decision) }
            )
        case .cancel:
            let id = try Self.id(r.id, "request")
            resp.request = Self.view(
                try await ask(change: true) { (c) throws(AgentError) in try await c.cancel(id, user: who.name) }
            )
        case .revoke:
            let id = try Self.id(r.id, "grant")
            let reason = try Engine.note(r.reason, "reason", limit: Policy.reasonLimit)
            let grant = try await ask(change: true) { (c) throws(AgentError) in
                try await c.revokeGrant(id, user: who.name, reason: reason)
            }
            resp.message = "grant \(grant.id) revoked on the server; this host applies it within a second"
        case .extend:
            let id = try Self.id(r.id, "grant")
            guard let duration = r.duration, duration > 0 else {
                throw WireError("bad_request", "usage: writ extend GRANT-ID --for DURATION --reason TEXT")
            }
            try await engine.requireFilingBudget(who, at: Int64(time(nil)))
            let asked = Components.Schemas.Extension(
                user: who.name,
                groups: groups,
                duration: duration,
                reason: try Engine.note(r.reason, "reason", limit: Policy.reasonLimit)
            )
            resp.request = Self.view(
                try await ask(change: true) { (c) throws(AgentError) in try await c.extendGrant(id, asked) }
            )
        case .status:
            // The grants are this host's own (grants.db); the requests are the server's.
            resp = await engine.handle(r, from: caller)
            do {
                let listed = try await ask { (c) throws(AgentError) in
                    try await c.listRequests(user: who.name, groups: groups)
                }
                resp.requests = listed.filter { $0.requester == who.name }.map(Self.view)
            } catch {
                resp.message = "requests: \(error.message)"
            }
        case .requests, .get:
            let listed = try await ask { (c) throws(AgentError) in
                try await c.listRequests(user: who.name, groups: groups)
            }
            if r.op == .get {
                guard let found = listed.first(where: { $0.id == r.id }) else {
                    throw WireError(
                        "not_found",
                        "no request \(LogText.escape(r.id ?? "", limit: 40)) that you can see — list yours with: writ status"
                    )
                }
                resp.request = Self.view(found)
            } else {
                let pendingOnly = r.pendingOnly != false
                resp.requests = listed.filter { $0.requester != who.name && (!pendingOnly || $0.state == "pending") }
                    .map(Self.view)
            }
        default:
            throw WireError("internal", "\(r.op.rawValue) is not relayed to the server")
        }
        return resp
    }

    /// `call`, its failure as what the user reads. `change`: it records something (tried once).
    func ask<T: Sendable>(
        change: Bool = false,
        _ body: (FleetClient) async throws(AgentError) -> T
    ) async throws(WireError) -> T {
        do { return try await call(retry: !change, body) } catch {
            var e = Self.wireError(error)
            if change, case .unavailable = error {
                e.message += " — it may have been recorded before the connection was lost: look with writ status"
            }
            throw e
        }
    }

    /// `WireRequest.detail` of an audit call asking for the server's head of this host's chain.
    static let serverHeadQuery = "server_head"

    /// The last record of this host's chain the server holds: `audit` is its seq and hash.
    func serverHead() async -> WireResponse {
        do throws(WireError) {
            let head = try await ask { (c) throws(AgentError) in try await c.auditHead() }
            var resp = WireResponse(ok: true)
            resp.audit = [String(head.seq)] + (head.hash.map { [$0] } ?? [])
            return resp
        } catch {
            return .failure(error)
        }
    }

    static func id(_ id: String?, _ what: String) throws(WireError) -> String {
        guard let id, let checked = try? RequestLimits.id(id) else {
            throw WireError("bad_request", "give a \(what) id as writ status shows it, such as r_0123456789ab")
        }
        return checked
    }

    /// The server's request as writ shows it.
    static func view(_ r: Components.Schemas.Request) -> RequestView {
        RequestView(
            id: r.id,
            kind: r.kind,
            extendsGrant: r.extendsGrant,
            requester: r.requester,
            capability: r.capability,
            flow: r.flow,
            host: r.host,
            runas: r.runas,
            commands: r.commands,
            duration: r.duration,
            reason: r.reason,
            state: r.state,
            createdAt: r.createdAt,
            pendingUntil: r.pendingUntil,
            requiredApprovals: r.requiredApprovals,
            approvals: r.approvals.map { ApprovalView(by: $0.by, at: $0.at, comment: $0.comment) },
            approvers: r.approvers,
            decidedAt: r.decidedAt,
            decidedBy: r.decidedBy,
            decisionNote: r.decisionNote,
            grantId: r.grantId,
            autoRule: r.autoRule,
            policyVersion: r.policyVersion,
            steps: r.steps.map {
                StepView(
                    name: $0.name,
                    approvers: $0.approvers,
                    required: $0.required,
                    approvals: $0.approvals,
                    escalatesAt: $0.escalatesAt,
                    escalated: $0.escalated
                )
            },
            currentStep: r.currentStep,
            fields: r.fields?.map { RequestField(name: $0.name, value: $0.value) },
            decidedVia: r.decidedVia,
            policyCommit: r.policyCommit
        )
    }
}
