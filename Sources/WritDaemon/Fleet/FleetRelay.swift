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
    static let operations: Set<Operation> = [.request, .approve, .deny, .cancel, .revoke, .status, .requests, .get]

    let servers: [String]
    let directory: String
    /// This host's name, as writd's grants name it.
    let hostName: String
    let logger: Logger
    private let state = NIOLockedValueBox<(client: FleetClient?, index: Int)>((nil, 0))

    init(servers: [String], directory: String, hostName: String, logger: Logger) {
        self.servers = servers
        self.directory = directory
        self.hostName = hostName
        self.logger = logger
    }

    /// The client for the current server, made from the credentials on disk when there is none.
    private func client() throws(AgentError) -> FleetClient {
        if let client = state.withLockedValue({ $0.client }) { return client }
        let credentials: AgentCredentials?
        do { credentials = try AgentCredentials.load(directory: directory) } catch {
            throw .local("cannot read the agent's credentials in \(directory): \(error)")
        }
        guard let credentials else { throw .local("this host is not enrolled: an admin must run writd enroll") }
        let index = state.withLockedValue { $0.index }
        let made = try FleetClient(server: servers[index], caPEM: credentials.caPEM, credentials: credentials)
        return state.withLockedValue { s in
            if let existing = s.client { return existing }
            s.client = made
            return made
        }
    }

    /// Runs `call` on the current server; one that cannot be reached is left for the next URL,
    /// each tried once.
    func call<T: Sendable>(_ call: (FleetClient) async throws(AgentError) -> T) async throws(AgentError) -> T {
        var last: AgentError = .local("no server")
        for _ in servers.indices {
            let client = try client()
            do {
                return try await call(client)
            } catch {
                last = error
                guard case .unavailable = error else { throw error }
                state.withLockedValue { s in
                    if s.client === client {
                        s.client = nil
                        s.index = (s.index + 1) % servers.count
                    }
                }
                await client.shutdown()
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
            let request = try await ask { (c) throws(AgentError) in try await c.fileRequest(filing) }
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
            resp.request = Self.view(try await ask { (c) throws(AgentError) in try await c.decide(id, decision) })
        case .cancel:
            let id = try Self.id(r.id, "request")
            resp.request = Self.view(try await ask { (c) throws(AgentError) in try await c.cancel(id, user: who.name) })
        case .revoke:
            let id = try Self.id(r.id, "grant")
            let reason = try Engine.note(r.reason, "reason", limit: Policy.reasonLimit)
            let grant = try await ask { (c) throws(AgentError) in
                try await c.revokeGrant(id, user: who.name, reason: reason)
            }
            resp.message = "grant \(grant.id) revoked on the server; this host applies it within a second"
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

    /// `call`, its failure as what the user reads.
    func ask<T: Sendable>(_ body: (FleetClient) async throws(AgentError) -> T) async throws(WireError) -> T {
        do { return try await call(body) } catch { throw Self.wireError(error) }
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
        guard let id, !id.isEmpty, id.utf8.count <= 64 else {
            throw WireError("bad_request", "give a \(what) id (see: writ status)")
        }
        return id
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
