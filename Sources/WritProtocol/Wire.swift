import FoundationEssentials

/// The messages between `writ` (and the PAM module and sudo plugin) and writd.
///
/// On the socket every message is one frame: a 4-byte big-endian length, then that many bytes of
/// JSON. A request carries `v` (the protocol version) and `op`; the reply carries `ok` and either
/// the result or an error. The daemon refuses frames over `Wire.maxRequestBytes`, unknown versions,
/// and clients that do not finish a frame within a few seconds; it then closes that connection
/// only. The caller is always the socket peer's uid (SO_PEERCRED), never a name in a message.
public enum Wire {
    public static let version = 1
    public static let defaultSocketPath = "/run/writ/writd.sock"
    /// Largest request writd reads (a request with commands and a reason is well under 8 KiB).
    public static let maxRequestBytes = 64 * 1024
    /// Largest reply a client reads (an audit listing may be long).
    public static let maxResponseBytes = 32 * 1024 * 1024

    public static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.outputFormatting = [.sortedKeys]
        return e
    }

    public static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        return d
    }

    /// The 4-byte big-endian length prefix of a frame.
    public static func header(length: Int) -> [UInt8] {
        let n = UInt32(length)
        return [UInt8(n >> 24), UInt8((n >> 16) & 0xff), UInt8((n >> 8) & 0xff), UInt8(n & 0xff)]
    }

    public static func length(header b: some Collection<UInt8>) -> Int {
        b.reduce(0) { $0 << 8 | Int($1) }
    }

    /// The request in one frame's body, as writd reads it; nil when it is not a writ protocol
    /// message.
    public static func request(from body: [UInt8]) -> WireRequest? {
        try? decoder().decode(WireRequest.self, from: Data(body))
    }
}

/// The operations writd serves.
public enum Operation: String, Codable, Sendable, CaseIterable {
    case ping
    case request, get, status, requests, approve, deny, cancel, revoke, extend
    case audit
    case grantAdd = "grant_add"
    case grantRevoke = "grant_revoke"
    case grantList = "grant_list"
    /// Reports from the PAM module and the sudo plugin (root peers only).
    case report
    case reload
    /// The flows the caller may request on this host (`writ flows`).
    case flows
}

/// One request to writd. A flat set of optional arguments: each operation reads the ones it needs
/// and refuses a request that lacks one.
public struct WireRequest: Codable, Sendable, Equatable {
    public var v: Int = Wire.version
    public var op: Operation
    public var id: String?
    public var capability: String?
    public var flow: String?
    public var host: String?
    public var runas: String?
    public var commands: [String]?
    public var duration: Int64?
    public var reason: String?
    /// `writ request --field name=value` (request only). Pairs, not a dictionary: the snake-case
    /// key strategy would rewrite dictionary keys.
    public var fields: [RequestField]?
    public var comment: String?
    public var pendingOnly: Bool?
    public var includeEnded: Bool?
    public var since: Int64?
    public var user: String?
    /// For `grant_add`: the grant's start delay in seconds.
    public var startsIn: Int64?
    /// For `report`: what happened (`session_open`, `session_close`, `sudo_accept`, `sudo_reject`,
    /// `sudo_exit`, `sudo_error`) and its details.
    public var event: String?
    public var service: String?
    public var tty: String?
    public var grant: String?
    public var detail: String?
    /// For `report`, from the reporting process itself (a root process: sudo, sshd, login): its
    /// kernel audit session and login uid (`/proc/self/sessionid`, `loginuid`) and its start time
    /// (clock ticks since boot), so writd knows them even when the process is gone before the
    /// report is read (`sudo -b`).
    public var auditSession: UInt32?
    public var loginUid: UInt32?
    public var startTime: UInt64?

    public init(op: Operation) { self.op = op }
}

public struct WireError: Codable, Sendable, Equatable, Error {
    /// Stable, for scripts: bad_request, too_large, timeout, unsupported_version, forbidden,
    /// not_found, refused, policy, internal, unavailable.
    public var code: String
    /// One line: what happened and what to do.
    public var message: String
    public init(_ code: String, _ message: String) {
        self.code = code
        self.message = message
    }
}

public struct WireResponse: Codable, Sendable {
    public var v: Int = Wire.version
    public var ok: Bool
    public var error: WireError?
    public var message: String?
    public var request: RequestView?
    public var requests: [RequestView]?
    public var grant: GrantView?
    public var grants: [GrantView]?
    public var daemon: DaemonView?
    public var audit: [String]?
    public var flows: [FlowView]?

    public init(ok: Bool) { self.ok = ok }
    public static func failure(_ e: WireError) -> WireResponse {
        var r = WireResponse(ok: false)
        r.error = e
        return r
    }
}

public struct ApprovalView: Codable, Sendable, Equatable {
    public var by: String
    public var at: Int64
    public var comment: String
    public init(by: String, at: Int64, comment: String) {
        self.by = by
        self.at = at
        self.comment = comment
    }
}

/// A request as its requester and its approvers see it.
public struct RequestView: Codable, Sendable, Equatable {
    public var id: String
    /// `grant` (a new grant) or `extend` (more time on `extendsGrant`).
    public var kind: String
    public var extendsGrant: String?
    public var requester: String
    public var capability: String
    public var flow: String
    public var host: String
    public var runas: String
    public var commands: [String]?
    public var duration: Int64
    public var reason: String
    public var state: String
    public var createdAt: Int64
    public var pendingUntil: Int64
    public var requiredApprovals: Int
    public var approvals: [ApprovalView]
    public var approvers: [String]
    public var decidedAt: Int64?
    public var decidedBy: String?
    public var decisionNote: String?
    /// The grant issued (or extended) when the request was approved.
    public var grantId: String?
    /// The auto-approval rule that decided, if any.
    public var autoRule: String?
    public var policyVersion: String
    /// The approval steps in order, with who has approved each.
    public var steps: [StepView]?
    /// The index in `steps` of the step approvals count toward now (pending requests only).
    public var currentStep: Int?
    /// `writ request --field name=value`, sorted by name.
    public var fields: [RequestField]?
    /// What decided without people: "auto_approve rule x", "auto_deny rule y", "hook on_request".
    public var decidedVia: String?
    /// The git commit of the policy's checkout, when it is one.
    public var policyCommit: String?

    public init(
        id: String,
        kind: String,
        extendsGrant: String?,
        requester: String,
        capability: String,
        flow: String,
        host: String,
        runas: String,
        commands: [String]?,
        duration: Int64,
        reason: String,
        state: String,
        createdAt: Int64,
        pendingUntil: Int64,
        requiredApprovals: Int,
        approvals: [ApprovalView],
        approvers: [String],
        decidedAt: Int64?,
        decidedBy: String?,
        decisionNote: String?,
        grantId: String?,
        autoRule: String?,
        policyVersion: String,
        steps: [StepView]? = nil,
        currentStep: Int? = nil,
        fields: [RequestField]? = nil,
        decidedVia: String? = nil,
        policyCommit: String? = nil
    ) {
        self.id = id
        self.kind = kind
        self.extendsGrant = extendsGrant
        self.requester = requester
        self.capability = capability
        self.flow = flow
        self.host = host
        self.runas = runas
        self.commands = commands
        self.duration = duration
        self.reason = reason
        self.state = state
        self.createdAt = createdAt
        self.pendingUntil = pendingUntil
        self.requiredApprovals = requiredApprovals
        self.approvals = approvals
        self.approvers = approvers
        self.decidedAt = decidedAt
        self.decidedBy = decidedBy
        self.decisionNote = decisionNote
        self.grantId = grantId
        self.autoRule = autoRule
        self.policyVersion = policyVersion
        self.steps = steps
        self.currentStep = currentStep
        self.fields = fields
        self.decidedVia = decidedVia
        self.policyCommit = policyCommit
    }
}

/// `--field name=value` of a request.
public struct RequestField: Codable, Sendable, Equatable {
    public var name: String
    public var value: String
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// One approval step of a request.
public struct StepView: Codable, Sendable, Equatable {
    public var name: String
    public var approvers: [String]
    public var required: Int
    /// Who approved this step, in order.
    public var approvals: [String]
    /// When the step's escalation approvers join, if that is still to come.
    public var escalatesAt: Int64?
    public var escalated: Bool

    public init(
        name: String,
        approvers: [String],
        required: Int,
        approvals: [String],
        escalatesAt: Int64?,
        escalated: Bool
    ) {
        self.name = name
        self.approvers = approvers
        self.required = required
        self.approvals = approvals
        self.escalatesAt = escalatesAt
        self.escalated = escalated
    }
}

/// A flow as `writ flows` shows it to someone who may request it: what it grants, for how long,
/// and who decides.
public struct FlowView: Codable, Sendable, Equatable {
    public var name: String
    public var description: String
    public var capability: String
    public var runas: String
    /// The commands a grant is limited to; nil: any command.
    public var commands: [String]?
    public var defaultDuration: Int64
    public var maxDuration: Int64
    /// The approvers of the first step, as this host resolves them now.
    public var approvers: [String]
    public var approvals: Int
    /// How many approval steps there are.
    public var steps: Int
    public var reasonRequired: Bool
    public var reasonPattern: String?
    /// Ways a request can be approved without people: auto_approve rules, break_glass, a hook.
    public var automatic: [String]

    public init(
        name: String,
        description: String,
        capability: String,
        runas: String,
        commands: [String]?,
        defaultDuration: Int64,
        maxDuration: Int64,
        approvers: [String],
        approvals: Int,
        steps: Int,
        reasonRequired: Bool,
        reasonPattern: String?,
        automatic: [String]
    ) {
        self.name = name
        self.description = description
        self.capability = capability
        self.runas = runas
        self.commands = commands
        self.defaultDuration = defaultDuration
        self.maxDuration = maxDuration
        self.approvers = approvers
        self.approvals = approvals
        self.steps = steps
        self.reasonRequired = reasonRequired
        self.reasonPattern = reasonPattern
        self.automatic = automatic
    }
}

public struct GrantView: Codable, Sendable, Equatable {
    public var id: String
    public var user: String
    public var capability: String
    public var host: String
    public var runas: String
    public var commands: [String]?
    public var notBefore: Int64
    public var expiresAt: Int64
    public var revokedAt: Int64?
    public var revokedBy: String?
    public var reason: String
    public var approvedBy: String
    public var requestId: String?
    /// `pending` (not yet valid), `active`, `expired` or `revoked`, at the time of the reply.
    public var state: String

    public init(
        id: String,
        user: String,
        capability: String,
        host: String,
        runas: String,
        commands: [String]?,
        notBefore: Int64,
        expiresAt: Int64,
        revokedAt: Int64?,
        revokedBy: String?,
        reason: String,
        approvedBy: String,
        requestId: String?,
        state: String
    ) {
        self.id = id
        self.user = user
        self.capability = capability
        self.host = host
        self.runas = runas
        self.commands = commands
        self.notBefore = notBefore
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
        self.revokedBy = revokedBy
        self.reason = reason
        self.approvedBy = approvedBy
        self.requestId = requestId
        self.state = state
    }
}

/// What writd says about itself (`writ doctor`, `ping`).
public struct DaemonView: Codable, Sendable, Equatable {
    public var version: String
    public var pid: Int32
    public var host: String
    public var startedAt: Int64
    public var now: Int64
    public var policyPath: String
    /// The grant store writd writes.
    public var storePath: String?
    /// Content hash of the policy in force; empty when none could ever be loaded.
    public var policyVersion: String
    public var policyLoadedAt: Int64?
    /// The last reload's errors, when writd kept its previous policy.
    public var policyError: String?
    public var activeGrants: Int
    public var pendingRequests: Int
    public var trackedSessions: Int
    public var nextDeadline: Int64?
    /// One line per integration ("pagerduty: configured, reachable"); root only.
    public var integrations: [String]?

    public init(
        version: String,
        pid: Int32,
        host: String,
        startedAt: Int64,
        now: Int64,
        policyPath: String,
        policyVersion: String,
        policyLoadedAt: Int64?,
        policyError: String?,
        activeGrants: Int,
        pendingRequests: Int,
        trackedSessions: Int,
        nextDeadline: Int64?
    ) {
        self.version = version
        self.pid = pid
        self.host = host
        self.startedAt = startedAt
        self.now = now
        self.policyPath = policyPath
        self.policyVersion = policyVersion
        self.policyLoadedAt = policyLoadedAt
        self.policyError = policyError
        self.activeGrants = activeGrants
        self.pendingRequests = pendingRequests
        self.trackedSessions = trackedSessions
        self.nextDeadline = nextDeadline
    }
}

/// Splits a connection's bytes into frames (a 4-byte big-endian length, then that many bytes),
/// holding at most one frame's worth: writd's socket server reads through it, and the fuzzer
/// feeds it every chunking of its input.
public struct FrameReader: Sendable {
    public enum Next: Equatable, Sendable {
        /// A whole frame's body.
        case frame([UInt8])
        /// Not a whole frame yet (nothing, part of a header, or part of a body).
        case needMore
        /// The header announces a body over the limit: close the connection.
        case tooLarge(length: Int)
    }

    public let maxBody: Int
    private var buffered: [UInt8] = []
    private var start = 0

    public init(maxBody: Int = Wire.maxRequestBytes) { self.maxBody = maxBody }

    /// Whether some bytes wait (a frame has started).
    public var isEmpty: Bool { start == buffered.count }

    /// Takes `bytes`; false (and nothing taken) when more than one frame's worth would be held:
    /// a client that pipelines or floods is cut off.
    public mutating func append(_ bytes: some Collection<UInt8>) -> Bool {
        guard buffered.count - start + bytes.count <= 4 + maxBody else { return false }
        if start > 0 {
            buffered.removeFirst(start)
            start = 0
        }
        buffered.append(contentsOf: bytes)
        return true
    }

    /// The next whole frame, if one has arrived.
    public mutating func next() -> Next {
        guard buffered.count - start >= 4 else { return .needMore }
        let length = Wire.length(header: buffered[start..<start + 4])
        guard length <= maxBody else { return .tooLarge(length: length) }
        guard buffered.count - start >= 4 + length else { return .needMore }
        let body = Array(buffered[start + 4..<start + 4 + length])
        start += 4 + length
        return .frame(body)
    }

    /// Forgets what is held (the connection is being closed).
    public mutating func clear() {
        buffered.removeAll()
        start = 0
    }
}
