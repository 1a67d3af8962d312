import Glibc
import WritCore
import WritEngine
import WritFleetAPI
import WritPolicy
import WritProcesses

/// Requests and decisions a host relays for its users (`writ request`, `writ approve`, … on an
/// enrolled host). The host vouches for the account name, which its kernel reported; the server
/// records "USER on HOST" and never lets one host's word reach further than the policy allows:
/// a request through a host is for that host, a user sees and cancels only what they filed
/// through it, and an approval through it counts only for requests for it or for flows whose
/// `approve_from_hosts` names it.
extension FleetAPI {
    /// Pending requests one account may have at once through one host (as writd standalone):
    /// counted per host, so a host cannot use up a user's requests on another.
    static let pendingPerUser = 20
    /// Pending requests through one host, at most, whoever filed them.
    static let pendingPerHost = 200
    /// Requests listed, at most: a user's own, and those they may decide.
    static let listLimit = 200
    /// Pending requests read to find those a user may decide, at most (a page at a time).
    static let pendingScanLimit = 20_000

    func requirePolicy() throws(Refusal) -> ServerPolicy.Loaded {
        guard let loaded = policy.current else {
            throw .forbidden(
                "writ-server has no valid policy, so it cannot take requests — an admin must fix \(policy.path) (writ policy validate)"
            )
        }
        return loaded
    }

    /// A Unix account name as a host's kernel reported it: 1 to 32 printable ASCII bytes, none of
    /// them `:` or `/`, not starting with `-`.
    static func account(_ user: String) throws(Refusal) -> String {
        let bytes = user.utf8
        guard (1...32).contains(bytes.count), bytes.first != UInt8(ascii: "-"),
            bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ":") && $0 != UInt8(ascii: "/") })
        else {
            throw .badRequest("\(LogText.escape(user, limit: 40)) is not a Unix account name")
        }
        return user
    }

    /// The user's groups as the host sent them: names are not account names (a directory's
    /// "domain users"), but printable, without control characters, at most 256 bytes each, and at
    /// most 1,024 of them.
    static func groups(_ names: [String]?) throws(Refusal) -> Set<String> {
        let names = names ?? []
        guard names.count <= 1024 else { throw .badRequest("at most 1024 groups") }
        for name in names {
            guard (1...256).contains(name.utf8.count),
                !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F })
            else {
                throw .badRequest("group \(LogText.escape(name, limit: 40)) is not a group name this server takes")
            }
        }
        return Set(names)
    }

    /// A request's or grant's id as Writ makes them (`RequestLimits.id`).
    static func id(_ text: String) throws(Refusal) -> String {
        try checked { () throws(EngineError) in try RequestLimits.id(text) }
    }

    /// What a host sent, within `RequestLimits`: its refusal is the sender's mistake.
    static func checked<T>(_ body: () throws(EngineError) -> T) throws(Refusal) -> T {
        do { return try body() } catch { throw .badRequest(error.description) }
    }

    static func unixNow() -> Int64 { Int64(time(nil)) }

    func fileRequest(_ input: Operations.FileRequest.Input) async throws -> Operations.FileRequest.Output {
        await answer("request") { (host) throws(Refusal) in
            guard case .json(let body) = input.body else { throw .badRequest("send JSON") }
            let peer = try await agent()
            host = peer.host
            let loaded = try requirePolicy()
            let user = try Self.account(body.user)
            guard user != "root" else { throw .forbidden("root is never restricted by Writ: no request is needed") }
            guard let capability = Capability(rawValue: body.capability) else {
                throw .badRequest("unknown capability \(LogText.escape(body.capability, limit: 16)): use sudo or login")
            }
            let groups = try Self.groups(body.groups)
            let reason = try Self.checked { () throws(EngineError) in
                try RequestLimits.note(body.reason, "reason", limit: Policy.reasonLimit)
            }
            let fields = try Self.checked { () throws(EngineError) in
                try RequestLimits.fields((body.fields ?? []).map { ($0.name, $0.value) })
            }
            try Self.checked { () throws(EngineError) in try RequestLimits.commands(body.commands) }
            let now = Self.unixNow()
            let (mine, hosts): (Int, Int)
            do {
                (mine, hosts) = try await engine.store.transaction { (tx) throws(EngineError) in
                    (
                        try await tx.pendingCount(requester: user, host: peer.host),
                        try await tx.pendingCount(requester: nil, host: peer.host)
                    )
                }
            } catch {
                throw Refusal(error)
            }
            guard mine < Self.pendingPerUser else {
                throw .forbidden(
                    "you have \(Self.pendingPerUser) pending requests through \(peer.host) — cancel some first (writ status, writ cancel ID)"
                )
            }
            guard hosts < Self.pendingPerHost else {
                logger.warning("\(peer.host) has \(hosts) pending requests: refusing more until some are decided")
                throw .forbidden(
                    "\(peer.host) has \(Self.pendingPerHost) requests pending on the server — ask an approver to decide some, then try again"
                )
            }
            let input = RequestInput(
                user: user,
                unixGroups: groups,
                capability: capability,
                flow: body.flow,
                host: peer.host,
                runas: body.runas,
                commands: body.commands,
                duration: body.duration,
                reason: reason,
                now: now,
                fields: fields,
                kind: "grant",
                context: await integrations.context(for: user, now: now)
            )
            let r = try await file(input, policy: loaded, by: user, through: peer.host)
            return .ok(.init(body: .json(.init(request: Self.wire(r), serverTimeMs: Self.now()))))
        }
    }

    /// A request (or an extension of `extending`'s grant, keeping its scope) the policy decides
    /// as writd standalone would, filed as `user` through `host`.
    func file(
        _ input: RequestInput,
        policy loaded: ServerPolicy.Loaded,
        by user: String,
        through host: String,
        extending: (grant: EngineGrant, commands: [String]?)? = nil
    ) async throws(Refusal) -> EngineRequest {
        let evaluation: Evaluation
        switch loaded.policy.evaluate(input) {
        case .failure(let refusal): throw .forbidden(refusal.description)
        case .success(let e): evaluation = e
        }
        // A command list the hosts could not parse would be approved and never enforced.
        // (Whether its programs are root's is each host's to check, on its own files.)
        for line in evaluation.commands ?? [] {
            do throws(CommandPatternError) { _ = try CommandPattern(parsing: line) } catch {
                throw .forbidden(error.description)
            }
        }
        let request = EngineRequest.new(
            policy: loaded.policy,
            evaluation: evaluation,
            input: input,
            reason: input.reason,
            requesterUID: 0,
            runas: extending?.grant.runas,
            commands: extending.map { (e) -> [String]?? in .some(e.commands) } ?? nil,
            extending: extending.map { ($0.grant.id, $0.grant.expiresAt) },
            policyVersion: loaded.version,
            policyCommit: loaded.commit,
            membersOf: UserDirectory.members(ofGroup:),
            at: input.now
        )
        let outcome: ApprovalEngine.Outcome
        do {
            outcome = try await engine.file(request, Filing(evaluation, asked: input), by: .host(user, on: host))
        } catch {
            throw Refusal(error)
        }
        let r = outcome.request
        logger.info(
            "\(r.kind == "extend" ? "extension" : "request") \(r.core.id) by \(user) on \(host) for \(r.core.capability.rawValue) (flow \(r.flow)): \(r.core.state.rawValue)"
        )
        return r
    }

    func listRequests(_ input: Operations.ListRequests.Input) async throws -> Operations.ListRequests.Output {
        await answer("list requests") { (host) throws(Refusal) in
            let peer = try await agent()
            host = peer.host
            let user = try Self.account(input.query.user)
            let now = Self.unixNow()
            let policy = policy.current?.policy
            let host = peer.host
            var listed: [EngineRequest]
            do {
                listed = try await engine.store.transaction { (tx) throws(EngineError) in
                    try await tx.requests(requester: user, host: host, since: now - 86400, limit: Self.listLimit)
                }
                // The pending requests this user may decide through this host: every pending
                // request is read, a page at a time, up to the scan limit.
                var after: (Int64, String) = (Int64.min, "")
                var scanned = 0
                var toDecide: [EngineRequest] = []
                while scanned < Self.pendingScanLimit, toDecide.count < Self.listLimit {
                    let from = after
                    let page = try await engine.store.transaction { (tx) throws(EngineError) in
                        try await tx.pendingRequests(after: from.0, id: from.1, limit: 500)
                    }
                    scanned += page.count
                    toDecide += page.filter { r in
                        r.core.requester != user && r.core.approvers.contains(user)
                            && policy?.flow(named: r.flow)?.acceptsApproval(through: host, forRequestOn: r.host) == true
                    }
                    guard let last = page.last, page.count == 500 else { break }
                    after = (last.core.createdAt, last.core.id)
                }
                listed += toDecide.prefix(Self.listLimit)
            } catch {
                throw Refusal(error)
            }
            listed.sort { $0.core.createdAt < $1.core.createdAt }
            return .ok(.init(body: .json(.init(requests: listed.map(Self.wire), serverTimeMs: Self.now()))))
        }
    }

    func decideRequest(_ input: Operations.DecideRequest.Input) async throws -> Operations.DecideRequest.Output {
        await answer("decision") { (host) throws(Refusal) in
            guard case .json(let body) = input.body else { throw .badRequest("send JSON") }
            let peer = try await agent()
            host = peer.host
            let loaded = try requirePolicy()
            let user = try Self.account(body.user)
            let id = try Self.id(input.path.id)
            let hidden = "no request \(id) that you can see — list yours with: writ status"
            let decision: ApprovalEngine.Decision
            if body.approve {
                decision = .approve(
                    comment: try Self.checked { () throws(EngineError) in try RequestLimits.note(body.comment) }
                )
            } else {
                let reason = try Self.checked { () throws(EngineError) in
                    try RequestLimits.note(body.reason, "reason", limit: Policy.reasonLimit)
                }
                guard !reason.isEmpty else { throw .badRequest("say why you deny it: writ deny \(id) --reason \"…\"") }
                decision = .deny(reason: reason)
            }
            let approverHost = peer.host
            // The flow's approvers under the policy in force, resolved before the request is
            // locked: the server's account database (LDAP, SSSD) may be slow.
            let current: [String: Set<String>] = Dictionary(
                uniqueKeysWithValues: loaded.policy.flows.map {
                    ($0.name, loaded.policy.approverUsers(of: $0, membersOf: UserDirectory.members(ofGroup:)))
                }
            )
            let outcome: ApprovalEngine.Outcome
            do {
                outcome = try await engine.decide(id, decision, by: .host(user, on: approverHost)) {
                    (r) throws(EngineError) in
                    // Someone who may not see a request learns nothing, not even that it exists.
                    guard r.core.approvers.contains(user) || (r.core.requester == user && r.host == approverHost)
                    else {
                        throw .notFound(hidden)
                    }
                    guard let flow = loaded.policy.flow(named: r.flow) else {
                        throw .refused("flow \(r.flow) is no longer in the policy: nobody can decide \(id) now")
                    }
                    guard flow.acceptsApproval(through: approverHost, forRequestOn: r.host) else {
                        throw .refused(
                            "flow \(r.flow) does not take decisions through \(approverHost): decide on \(r.host), or on a host its approve_from_hosts names"
                        )
                    }
                    // Approvers are fixed at filing and must still be approvers under the policy
                    // in force; approvers a hook added stay.
                    let added = r.core.steps[r.core.currentStep].addedApprovers.contains(user)
                    if r.core.approvers.contains(user), !added, current[flow.name]?.contains(user) != true {
                        throw .refused("\(user) is no longer an approver of flow \(r.flow) under the current policy")
                    }
                }
            } catch {
                if case .notFound = error as? EngineError { throw .forbidden(hidden) }
                throw Refusal(error)
            }
            let r = outcome.request
            logger.info(
                "request \(id): \(body.approve ? "approval" : "denial") by \(user) on \(approverHost), now \(r.core.state.rawValue)"
            )
            return .ok(.init(body: .json(.init(request: Self.wire(r), serverTimeMs: Self.now()))))
        }
    }

    func cancelRequest(_ input: Operations.CancelRequest.Input) async throws -> Operations.CancelRequest.Output {
        await answer("cancel") { (host) throws(Refusal) in
            guard case .json(let body) = input.body else { throw .badRequest("send JSON") }
            let peer = try await agent()
            host = peer.host
            let user = try Self.account(body.user)
            let id = try Self.id(input.path.id)
            let hidden = "no request \(id) of yours filed on this host — list yours with: writ status"
            let request: EngineRequest
            do {
                request = try await engine.cancel(id, by: .host(user, on: peer.host)) { (r) throws(EngineError) in
                    guard r.core.requester == user, r.host == peer.host else { throw .notFound(hidden) }
                }
            } catch {
                if case .notFound = error as? EngineError { throw .forbidden(hidden) }
                throw Refusal(error)
            }
            return .ok(.init(body: .json(.init(request: Self.wire(request), serverTimeMs: Self.now()))))
        }
    }

    func extendGrant(_ input: Operations.ExtendGrant.Input) async throws -> Operations.ExtendGrant.Output {
        await answer("extend") { (host) throws(Refusal) in
            guard case .json(let body) = input.body else { throw .badRequest("send JSON") }
            let peer = try await agent()
            host = peer.host
            let loaded = try requirePolicy()
            let user = try Self.account(body.user)
            let groups = try Self.groups(body.groups)
            let id = try Self.id(input.path.id)
            let reason = try Self.checked { () throws(EngineError) in
                try RequestLimits.note(body.reason, "reason", limit: Policy.reasonLimit)
            }
            let now = Self.unixNow()
            let hidden = "you have no grant \(id) on this host — see yours with: writ status"
            let (grant, original, pending): (EngineGrant?, EngineRequest?, [EngineRequest])
            do {
                (grant, original, pending) = try await engine.store.transaction { (tx) throws(EngineError) in
                    let g = try await tx.grant(id, forUpdate: false)
                    var o: EngineRequest?
                    if let rid = g?.requestID { o = try await tx.request(rid, forUpdate: false) }
                    let p = try await tx.requests(requester: user, host: peer.host, since: now, limit: Self.listLimit)
                    return (g, o, p)
                }
            } catch {
                throw Refusal(error)
            }
            // A host speaks for itself: only a grant scoped to exactly this host, its user's.
            guard let grant, grant.user == user, grant.host.lowercased() == peer.host.lowercased() else {
                throw .forbidden(hidden)
            }
            guard grant.endedAt == nil, grant.notBefore <= now, grant.expiresAt > now else {
                throw .forbidden("grant \(id) is not active: only an active grant can be extended — file a new request")
            }
            if let other = pending.first(where: { $0.core.state == .pending && $0.extendsGrant == id }) {
                throw .forbidden(
                    "an extension of \(id) is already pending (\(other.core.id)) — wait for it, or cancel it: writ cancel \(other.core.id)"
                )
            }
            guard let original else {
                throw .forbidden(
                    "grant \(id) was written by an admin, not through a flow — ask an admin of the fleet to add time (writ-server grant add)"
                )
            }
            guard let capability = Capability(rawValue: grant.capability) else {
                throw .failed("grant \(id) has capability \(grant.capability), which this server does not know")
            }
            let input = RequestInput(
                user: user,
                unixGroups: groups,
                capability: capability,
                flow: original.flow,
                host: peer.host,
                runas: capability == .sudo ? grant.runas : nil,
                commands: original.commands,
                duration: body.duration,
                reason: reason,
                now: now,
                fields: original.fields,
                kind: "extend",
                context: await integrations.context(for: user, now: now)
            )
            let request = try await file(
                input,
                policy: loaded,
                by: user,
                through: peer.host,
                extending: (grant, original.commands)
            )
            return .ok(.init(body: .json(.init(request: Self.wire(request), serverTimeMs: Self.now()))))
        }
    }

    func revokeOwnGrant(_ input: Operations.RevokeOwnGrant.Input) async throws -> Operations.RevokeOwnGrant.Output {
        await answer("revoke") { (host) throws(Refusal) in
            guard case .json(let body) = input.body else { throw .badRequest("send JSON") }
            let peer = try await agent()
            host = peer.host
            let user = try Self.account(body.user)
            let reason = try Self.checked { () throws(EngineError) in
                try RequestLimits.note(body.reason, "reason", limit: Policy.reasonLimit)
            }
            let id = try Self.id(input.path.id)
            let host = peer.host
            let hidden = "no grant \(id) of yours on this host — see writ status"
            let grant: EngineGrant
            do {
                grant = try await engine.revoke(grant: id, by: .host(user, on: host), reason: reason) {
                    (g) throws(EngineError) in
                    guard g.user == user, HostIdentity(nodename: host).matches(g.host) else { throw .notFound(hidden) }
                    // A host speaks for itself only: a grant that covers other hosts too is
                    // not its to end for all of them.
                    guard g.host.lowercased() == host.lowercased() else {
                        throw .refused(
                            "grant \(id) covers \(g.host), more hosts than \(host): ask an admin of the fleet (writ-server grant revoke \(id))"
                        )
                    }
                }
            } catch {
                if case .notFound = error as? EngineError { throw .forbidden(hidden) }
                throw Refusal(error)
            }
            logger.info("grant \(id) of \(user) revoked by them on \(peer.host)")
            return .ok(.init(body: .json(.init(grant: Self.wire(grant), serverTimeMs: Self.now()))))
        }
    }

    /// A request as the API shows it.
    static func wire(_ r: EngineRequest) -> Components.Schemas.Request {
        .init(
            id: r.core.id,
            kind: r.kind,
            extendsGrant: r.extendsGrant,
            requester: r.core.requester,
            capability: r.core.capability.rawValue,
            flow: r.flow,
            host: r.host,
            runas: r.runas,
            commands: r.commands,
            duration: r.core.duration,
            reason: r.core.reason,
            state: r.core.state.rawValue,
            createdAt: r.core.createdAt,
            pendingUntil: r.core.pendingUntil,
            requiredApprovals: r.core.requiredApprovals,
            approvals: r.core.approvals.map { .init(by: $0.by, at: $0.at, comment: $0.comment) },
            approvers: r.core.approvers.sorted(),
            decidedAt: r.core.decidedAt,
            decidedBy: r.core.decidedBy,
            decisionNote: r.core.decisionNote,
            grantId: r.grantID,
            autoRule: r.autoRule,
            policyVersion: r.policyVersion,
            steps: r.core.steps.enumerated().map { i, step in
                .init(
                    name: step.name,
                    approvers: step.approvers.sorted(),
                    required: step.required,
                    approvals: r.core.approvals.filter { $0.step == i }.map(\.by),
                    escalatesAt: step.escalatesAt,
                    escalated: step.escalated
                )
            },
            currentStep: r.core.state == .pending ? r.core.currentStep : nil,
            fields: r.fields.isEmpty
                ? nil : r.fields.sorted { $0.key < $1.key }.map { .init(name: $0.key, value: $0.value) },
            decidedVia: r.decidedVia,
            policyCommit: r.policyCommit
        )
    }
}

/// The operations whose refusals are the four shared answers (openapi.yaml's responses).
protocol StandardRefusals: RefusalAnswer {
    static func badRequest(_: Components.Responses.BadRequest) -> Self
    static func unauthorized(_: Components.Responses.Unauthorized) -> Self
    static func forbidden(_: Components.Responses.Forbidden) -> Self
    static func serviceUnavailable(_: Components.Responses.Unavailable) -> Self
}

extension StandardRefusals {
    static func refused(_ refusal: FleetAPI.Refusal, _ problem: Components.Schemas.Problem) -> Self {
        switch refusal {
        case .badRequest: .badRequest(.init(body: .json(problem)))
        case .unauthorized: .unauthorized(.init(body: .json(problem)))
        case .unavailable, .failed: .serviceUnavailable(.init(body: .json(problem)))
        case .forbidden, .gone, .conflict: .forbidden(.init(body: .json(problem)))
        }
    }
}

extension Operations.FileRequest.Output: StandardRefusals {}
extension Operations.ListRequests.Output: StandardRefusals {}
extension Operations.DecideRequest.Output: StandardRefusals {}
extension Operations.CancelRequest.Output: StandardRefusals {}
extension Operations.RevokeOwnGrant.Output: StandardRefusals {}
extension Operations.ExtendGrant.Output: StandardRefusals {}
