import CWritSystem
import Crypto
import Glibc
import Logging
import WritAudit
import WritCore
import WritExpr
import WritPolicy
import WritProcesses
import WritProtocol
import WritStore

/// Who is on the other end of the socket, from SO_PEERCRED: the kernel's word, not the client's.
public struct Peer: Sendable, Equatable {
    public var uid: UInt32
    public var gid: UInt32
    public var pid: Int32
    /// The peer process's start time, read when the connection was accepted (nil: gone already).
    public var startTime: UInt64?
    /// For a root peer (a module's report): its real uid and its audit session, read at accept
    /// too — `sudo -b`'s front end has exited by the time the report is handled.
    public var realUID: UInt32?
    public var auditSession: UInt32?
    public var loginUID: UInt32?
    public init(
        uid: UInt32,
        gid: UInt32,
        pid: Int32,
        startTime: UInt64? = nil,
        realUID: UInt32? = nil,
        auditSession: UInt32? = nil,
        loginUID: UInt32? = nil
    ) {
        self.uid = uid
        self.gid = gid
        self.pid = pid
        self.startTime = startTime
        self.realUID = realUID
        self.auditSession = auditSession
        self.loginUID = loginUID
    }
}

/// Who sent writd one operation, and how writd knows. Given with every call; nothing about a
/// call is kept on the engine between calls (every call may suspend once the store is async).
public enum Caller: Sendable, Equatable {
    /// A process on writd's socket, named by the kernel (SO_PEERCRED): the CLI, or a module's report.
    case socket(Peer)
    /// A Slack member whom the identities setting maps to the local account `uid`. Slack has no
    /// process on this host: nothing it sends may report sessions or reload the policy.
    case slack(member: String, uid: UInt32)

    /// The local account the caller acts as.
    public var uid: UInt32 {
        switch self {
        case .socket(let peer): peer.uid
        case .slack(_, let uid): uid
        }
    }

    /// The process on the socket; nil for a caller that has none.
    public var peer: Peer? {
        if case .socket(let peer) = self { return peer }
        return nil
    }

    /// What the audit records beside the actor when it was not the CLI on this host: `slack:U…`.
    public var via: String? {
        if case .slack(let member, _) = self { return "slack:\(member)" }
        return nil
    }

    /// What Slack may ask for: filing, extending and deciding, as the mapped user (an allow-list:
    /// a new operation is the CLI's alone until it is added here).
    static let slackOperations: Set<Operation> = [.request, .extend, .approve, .deny]

    /// Why this caller may not ask for `op`, or nil.
    func refusal(of op: Operation) -> WireError? {
        guard case .slack = self, !Self.slackOperations.contains(op) else { return nil }
        return WireError("forbidden", "\(op.rawValue) is not available from Slack: run writ \(op.rawValue) on the host")
    }
}

/// writd's engine: the only writer of the grant store. Every operation runs on this actor, one
/// at a time, so two approvals of one request are applied one after the other and the second
/// finds the request decided: exactly one grant.
public actor Engine {
    public static let version = WritVersion.current

    let config: DaemonConfiguration
    let state: StateStore
    var audit: AuditSink
    let logger: Logger
    let timer: WallClockTimer?
    let startedAt: Int64
    /// PagerDuty (and later Slack): used off the actor, so it locks its own state.
    public nonisolated let integrations: IntegrationHub
    /// `writ audit` reads, off the actor.
    nonisolated let auditReader: AuditReader
    /// NSS, cached, with the caller's lookup done off the actor (`DirectoryCache`).
    nonisolated let directory: DirectoryCache
    /// On a fleet's agent: what writ asks of the server goes there (`FleetRelay`).
    nonisolated let fleetRelay: FleetRelay?

    var policy: Policy?
    var policyVersion = ""
    /// The git commit of the policy's checkout, when it is one (provenance, next to the hash).
    var policyCommit: String?
    var policyLoadedAt: Int64?
    var policyError: String?
    /// Session terminations in flight (graceful shutdown waits for them).
    var terminations: [Int: Task<Void, Never>] = [:]
    var nextTermination = 0
    /// Grants whose sessions are being ended now.
    var ending: Set<String> = []
    /// Hooks running now (`Engine.maxRunningHooks`).
    var runningHooks = 0
    /// What one account's refused requests may add to the audit log.
    var refusals = AuditBudget(burst: 20, refillSeconds: 30)
    /// How fast one account may file requests and extensions (each is audited, and a cancel
    /// after it): 30 at once, then one every 20 s.
    var filings = AuditBudget(burst: 30, refillSeconds: 20)
    /// What one account's refused sudo runs (the modules' reports) may add to the audit log.
    var sudoRefusals = AuditBudget(burst: 60, refillSeconds: 5)
    /// In a fleet: this host's clock against the server's (`ClockSkew`), from every answer.
    var skew = ClockSkew()

    public init(config: DaemonConfiguration, logger: Logger, timer: WallClockTimer?) throws(StoreError) {
        self.config = config
        self.logger = logger
        self.timer = timer
        state = try StateStore(storePath: config.storePath, statePath: config.statePath)
        audit = AuditSink(
            log: AuditLog(path: config.auditPath, rotateBytes: config.auditRotateBytes, keep: config.auditKeep)
        )
        startedAt = config.clock()
        integrations = IntegrationHub(path: config.integrationsPath, logger: logger)
        auditReader = AuditReader(path: config.auditPath)
        directory = DirectoryCache(clock: config.clock)
        fleetRelay =
            config.fleetServers.isEmpty
            ? nil
            : FleetRelay(
                servers: config.fleetServers,
                directory: config.fleetDirectory,
                hostName: config.hostName,
                logger: logger
            )
        audit.follower = { [integrations] db, event throws(StoreError) in
            guard integrations.slackEnabled else { return }
            try SlackOutbox.follow(db, event)
        }
    }

    var db: SQLiteDatabase { state.db }

    /// The wall clock (UTC seconds); tests substitute their own through the configuration.
    func now() -> Int64 { config.clock() }

    /// Start-up: finish what a crash interrupted, load the policy, apply what fell due while
    /// writd was down.
    public func start() {
        Syslog.open()
        do {
            let n = try audit.flush(db)
            if n > 0 { logger.notice("appended \(n) audit record(s) queued before the last stop") }
        } catch {
            logger.error("audit log: \(error.description)")
        }
        loadPolicy(initial: true)
        closeSessionsOfEarlierBoots()
        do {
            let added = try syncWatch(now: now())
            if added > 0 { logger.info("now watching \(added) grant(s) written while writd was not running") }
        } catch {
            logger.error("cannot read the grant store: \(error.description)")
        }
        tick(reconcile: true)
        // Start-up reads every grant once; give the memory back to the system.
        writ_malloc_trim()
    }

    // MARK: policy

    /// Loads the policy file. On errors the previous policy stays in force, and the errors are
    /// logged and shown by `writ doctor`.
    @discardableResult
    public func loadPolicy(initial: Bool = false) -> Bool {
        integrations.load()
        // The policy decides who becomes root: a file someone else can change is no policy.
        var st = stat()
        if stat(config.policyPath, &st) == 0 && (st.st_uid != 0 || st.st_mode & 0o022 != 0) {
            return policyFailed(
                "\(config.policyPath): owned by uid \(st.st_uid) with mode \(String(st.st_mode & 0o777, radix: 8)); it must be root's and not writable by others (chown root: and chmod go-w)",
                initial: initial
            )
        }
        do {
            let text = try Policy.contents(of: config.policyPath)
            let p = try Policy.parse(bytes: text, file: config.policyPath)
            let version = Hex.lowercase(SHA256.hash(data: text))
            // Audited when it differs from the last policy recorded, across restarts too.
            let recorded = try? state.meta("policy_version")
            let changed = version != recorded
            policy = p
            policyVersion = version
            policyCommit = PolicyProvenance.gitCommit(forFileAt: config.policyPath)
            policyLoadedAt = now()
            policyError = nil
            logger.notice(
                "policy \(String(version.prefix(12))) loaded from \(config.policyPath): \(p.flows.count) flow(s)"
            )
            if changed {
                let event = AuditEvent(
                    time: now(),
                    event: "policy.load",
                    actor: "writd",
                    fields: [
                        .init("policy_version", version), .init("path", config.policyPath),
                        .init("flows", String(p.flows.count)),
                    ] + (policyCommit.map { [.init("policy_commit", $0)] } ?? [])
                )
                do {
                    try state.transaction { () throws(StoreError) in
                        try state.setMeta("policy_version", version)
                        try audit.queue(db, event)
                    }
                } catch {
                    logger.error("audit: cannot record the policy load: \(error.description)")
                }
                flushAudit()
            }
            return true
        } catch {
            return policyFailed(error.description, initial: initial)
        }
    }

    private func policyFailed(_ message: String, initial: Bool) -> Bool {
        policyError = message
        let kept =
            policy == nil
            ? "no policy is in force: requests are refused" : "keeping policy \(String(policyVersion.prefix(12)))"
        logger.error("policy not loaded (\(kept)):\n\(message)")
        Syslog.log(LOG_ERR, "policy not loaded from \(config.policyPath) (\(kept))")
        return false
    }

    // MARK: audit

    /// A module's report changes nothing in the stores, so it skips the outbox and is appended
    /// at once (one fsync instead of three transactions): every sudo sends two or three. If writd
    /// dies before the append, the report is lost here but still in syslog, where the module
    /// wrote it first.
    func recordReport(_ event: AuditEvent) {
        flushAudit()  // keep the log in order behind anything still queued
        do {
            var e = event
            e.fields.insert(.init("id", AuditEvent.newID()), at: 0)
            let (seq, hash) = try audit.log.append(e)
            Syslog.log(LOG_INFO, "audit seq=\(seq) hash=\(hash) event=\(event.event)")
        } catch {
            logger.error("audit: cannot append \(event.event): \(error.description)")
        }
    }

    func flushAudit() {
        integrations.wakeSlack()
        do { try audit.flush(db) } catch {
            logger.error("audit log: \(error.description); records stay queued in \(config.statePath)")
            Syslog.log(LOG_ERR, "audit log unwritable, records queued: \(error.description)")
        }
    }

    // MARK: dispatch

    /// Serves one operation. Requests and extensions first learn what the integrations know
    /// about the requester (PagerDuty on-call), off the actor: a slow PagerDuty delays that
    /// request only.
    public nonisolated func serve(_ request: WireRequest, from caller: Caller) async -> WireResponse {
        if let refusal = caller.refusal(of: request.op) { return .failure(refusal) }
        // The caller's account and groups, looked up off the engine with a deadline (NSS can hang).
        if request.op != .ping && request.op != .report, let why = await directory.prepare(uid: caller.uid) {
            return .failure(WireError("directory", why))
        }
        // `writ audit verify`: the server's copy of this host's chain head (root only).
        if request.op == .audit, request.detail == FleetRelay.serverHeadQuery, request.v == Wire.version {
            guard caller.peer?.uid == 0 else {
                return .failure(WireError("forbidden", "only root compares the audit log with the server"))
            }
            guard let fleetRelay else {
                return .failure(WireError("not_enrolled", "this host is not a fleet's agent: there is no server head"))
            }
            return await fleetRelay.serverHead()
        }
        // Audit reads never touch the engine (AuditReader).
        if request.op == .audit, request.v == Wire.version {
            return await auditReader.serve(request, uid: caller.uid, who: directory.user(uid: caller.uid))
        }
        // On a fleet's agent, requests and decisions are the server's.
        if let fleetRelay, FleetRelay.operations.contains(request.op), request.v == Wire.version,
            case .socket = caller
        {
            guard let who = directory.user(uid: caller.uid) else {
                return .failure(WireError("directory", "uid \(caller.uid) has no account on this host"))
            }
            return await fleetRelay.serve(
                request,
                who: who,
                groups: directory.groupNames(of: who),
                engine: self,
                caller: caller
            )
        }
        var context: [String: Value] = [:]
        if request.op == .request || request.op == .extend, request.v == Wire.version,
            let who = directory.user(uid: caller.uid), who.uid != 0
        {
            context = await integrations.context(for: who.name, now: config.clock())
        }
        return await handle(request, from: caller, context: context)
    }

    /// Serves one operation, with the integrations' facts about the requester.
    public func handle(_ request: WireRequest, from caller: Caller, context: [String: Value] = [:]) -> WireResponse {
        if let refusal = caller.refusal(of: request.op) { return .failure(refusal) }
        do throws(WireError) {
            guard request.v == Wire.version else {
                throw WireError(
                    "unsupported_version",
                    "this writd speaks protocol \(Wire.version), the client \(request.v) — install matching writ and writd"
                )
            }
            let response = try dispatch(request, from: caller, context: context)
            return response
        } catch {
            return .failure(error)
        }
    }

    /// Module reports and ping need no account; everything else names the caller from NSS.
    private func dispatch(
        _ r: WireRequest,
        from caller: Caller,
        context: [String: Value]
    ) throws(WireError)
        -> WireResponse
    {
        let via = caller.via
        // In a fleet the server decides: nothing is filed or decided here, and a fleet grant is
        // revoked on the server (root's own local grants stay root's to revoke here).
        // writ's own calls were relayed before they got here (`serve`); what is left (extend,
        // Slack on an agent) is not the server's yet.
        if !config.fleetServers.isEmpty, [.request, .approve, .deny, .cancel, .extend, .revoke].contains(r.op) {
            throw WireError(
                "fleet",
                "this host is enrolled in a Writ fleet (\(config.fleetServers[0])): its Slack app cannot file or decide requests — use writ request or writ approve on a host of the fleet"
            )
        }
        switch r.op {
        case .ping: return ping(for: caller.uid)
        case .report:
            guard let peer = caller.peer else { throw WireError("forbidden", "only the modules on this host report") }
            return try report(r, peer: peer)
        case .request: return try fileRequest(r, who: account(caller), via: via, context: context)
        case .get: return try getRequest(r, who: account(caller))
        case .status: return try status(who: account(caller))
        case .requests: return try listRequests(r, who: account(caller))
        case .approve: return try decide(r, who: account(caller), from: caller, approve: true)
        case .deny: return try decide(r, who: account(caller), from: caller, approve: false)
        case .cancel: return try cancel(r, who: account(caller), via: via)
        case .revoke, .grantRevoke: return try revoke(r, who: account(caller))
        case .extend: return try extend(r, who: account(caller), via: via, context: context)
        case .audit:
            // Served by `serve` off the actor; never here, where it would hold up everyone.
            throw WireError("internal", "audit reads are served off the engine; call serve, not handle")
        case .grantAdd: return try grantAdd(r, who: account(caller))
        case .grantList: return try grantList(r, who: account(caller))
        case .flows: return try listFlows(who: account(caller))
        case .reload:
            guard caller.peer?.uid == 0 else { throw WireError("forbidden", "only root can reload writd's policy") }
            let ok = loadPolicy()
            var resp = pingResponse()
            resp.ok = ok
            if !ok { resp.error = WireError("policy", policyError ?? "policy not loaded") }
            return resp
        }
    }

    /// The policy's path and its errors are root's business.
    private func ping(for uid: UInt32) -> WireResponse {
        var resp = pingResponse()
        if uid != 0 {
            let failed = resp.daemon?.policyError != nil
            resp.daemon?.policyError = failed ? "the last policy reload failed (root sees why)" : nil
            resp.daemon?.policyPath = ""
            resp.daemon?.storePath = nil
            resp.daemon?.integrations = nil
        }
        return resp
    }

    func account(_ caller: Caller) throws(WireError) -> UserDirectory.Account {
        guard let a = directory.user(uid: caller.uid) else {
            throw WireError("forbidden", "uid \(caller.uid) has no account on this host")
        }
        return a
    }

    func pingResponse() -> WireResponse {
        var r = WireResponse(ok: true)
        r.daemon = daemonView()
        return r
    }

    func daemonView() -> DaemonView {
        let now = self.now()
        var view = DaemonView(
            version: Self.version,
            pid: getpid(),
            host: config.hostName,
            startedAt: startedAt,
            now: now,
            policyPath: config.policyPath,
            policyVersion: policyVersion,
            policyLoadedAt: policyLoadedAt,
            policyError: policyError,
            activeGrants: (try? count("SELECT count(*) FROM d.watch WHERE ended_at IS NULL")) ?? -1,
            pendingRequests: (try? count("SELECT count(*) FROM d.requests WHERE state = 'pending'")) ?? -1,
            trackedSessions: (try? count("SELECT count(*) FROM d.sessions WHERE closed_at IS NULL")) ?? -1,
            nextDeadline: try? nextDeadline()
        )
        view.storePath = config.storePath
        view.integrations = integrations.status + (slackBacklog().map { [$0] } ?? [])
        return view
    }

    func count(_ sql: String) throws(StoreError) -> Int {
        let s = try db.prepare(sql)
        guard try s.step() else { return 0 }
        return Int(s.int64(0))
    }

    /// Maps a store failure to the client's error line; the details go to the log.
    func internalError(_ what: String, _ error: StoreError) -> WireError {
        logger.error("\(what): \(error.description)")
        return WireError("internal", "writd could not \(what): \(error.description)")
    }

    /// Waits for session terminations in flight (graceful shutdown).
    public func drain() async {
        for (_, t) in terminations { await t.value }
    }
}

/// Reads a whole small file (the policy) without Foundation.
enum FileBytes {
    struct Failure: Error {
        var message: String
    }

    static func read(_ path: String, limit: Int) throws(Failure) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(message: String(cString: strerror(errno))) }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw Failure(message: String(cString: strerror(errno))) }
            if n == 0 { break }
            out += chunk[0..<n]
            guard out.count <= limit else { throw Failure(message: "larger than \(limit) bytes") }
        }
        return out
    }
}
