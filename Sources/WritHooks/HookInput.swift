import Glibc
import WritExpr

/// The JSON document a hook reads on stdin (protocol version 1, docs/hooks.md). Keys are
/// snake_case; optional values are written as `null`, never left out, so a hook can rely on every
/// key being there.
public struct HookInput: Codable, Sendable, Equatable {
    /// The protocol version writd speaks.
    public static let protocolVersion = 1

    /// Always `protocolVersion` when writd writes it.
    public var version: Int
    /// `on_request`, `on_approve`, `on_deny` or `on_expire`.
    public var event: String
    /// The access request the event is about.
    public var request: Request
    /// Facts from integrations (`on_call`, …): any JSON, passed to the hook as is.
    public var context: [String: JSONValue]
    /// When writd ran the hook.
    public var time: Time
    /// The policy that applied.
    public var policy: PolicyInfo
    /// How the request was decided; nil (`null`) for `on_request`.
    public var decision: Decision?

    /// A document for `event`; `version` is the current protocol version.
    public init(
        event: String,
        request: Request,
        context: [String: JSONValue] = [:],
        time: Time,
        policy: PolicyInfo,
        decision: Decision? = nil
    ) {
        self.version = Self.protocolVersion
        self.event = event
        self.request = request
        self.context = context
        self.time = time
        self.policy = policy
        self.decision = decision
    }

    enum CodingKeys: String, CodingKey {
        case version, event, request, context, time, policy, decision
    }

    /// Writes every key, `null` included.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(version, forKey: .version)
        try c.encode(event, forKey: .event)
        try c.encode(request, forKey: .request)
        try c.encode(context, forKey: .context)
        try c.encode(time, forKey: .time)
        try c.encode(policy, forKey: .policy)
        try c.encode(decision, forKey: .decision)
    }

    /// One access request as a hook sees it.
    public struct Request: Codable, Sendable, Equatable {
        /// The request's id (`r-…`).
        public var id: String
        /// `grant` (a new grant) or `extend` (more time on an existing one).
        public var kind: String
        /// The requester's account name.
        public var user: String
        /// The requester's uid.
        public var uid: UInt32
        /// The requester's groups, by name.
        public var groups: [String]
        /// `sudo` or `login`.
        public var capability: String
        /// The policy flow the request fell under.
        public var flow: String
        /// The host the request is for.
        public var host: String
        /// The account sudo would run commands as (`root`).
        public var runas: String
        /// The commands asked for; nil (`null`) when the request is not limited to commands.
        public var commands: [String]?
        /// Seconds asked for.
        public var duration: Int64
        /// The requester's reason.
        public var reason: String
        /// The flow's extra request fields (`ticket`, …).
        public var fields: [String: String]
        /// When the request was made (UTC seconds).
        public var createdAt: Int64

        /// A request; see the properties.
        public init(
            id: String,
            kind: String,
            user: String,
            uid: UInt32,
            groups: [String],
            capability: String,
            flow: String,
            host: String,
            runas: String,
            commands: [String]?,
            duration: Int64,
            reason: String,
            fields: [String: String] = [:],
            createdAt: Int64
        ) {
            self.id = id
            self.kind = kind
            self.user = user
            self.uid = uid
            self.groups = groups
            self.capability = capability
            self.flow = flow
            self.host = host
            self.runas = runas
            self.commands = commands
            self.duration = duration
            self.reason = reason
            self.fields = fields
            self.createdAt = createdAt
        }

        enum CodingKeys: String, CodingKey {
            case id, kind, user, uid, groups, capability, flow, host, runas, commands, duration, reason, fields
            case createdAt = "created_at"
        }

        /// Writes every key, `null` included.
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(id, forKey: .id)
            try c.encode(kind, forKey: .kind)
            try c.encode(user, forKey: .user)
            try c.encode(uid, forKey: .uid)
            try c.encode(groups, forKey: .groups)
            try c.encode(capability, forKey: .capability)
            try c.encode(flow, forKey: .flow)
            try c.encode(host, forKey: .host)
            try c.encode(runas, forKey: .runas)
            try c.encode(commands, forKey: .commands)
            try c.encode(duration, forKey: .duration)
            try c.encode(reason, forKey: .reason)
            try c.encode(fields, forKey: .fields)
            try c.encode(createdAt, forKey: .createdAt)
        }
    }

    /// The time a hook runs at, as UTC seconds and as ISO 8601 text.
    public struct Time: Codable, Sendable, Equatable {
        /// UTC seconds.
        public var now: Int64
        /// `now` as `2026-11-25T16:00:00Z`.
        public var iso: String

        /// The time `now`, with `iso` computed from it.
        public init(now: Int64) {
            self.now = now
            self.iso = Self.iso8601(now)
        }

        /// Both given as they are (for decoding, or to replay a recorded input).
        public init(now: Int64, iso: String) {
            self.now = now
            self.iso = iso
        }

        /// `seconds` since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (UTC).
        static func iso8601(_ seconds: Int64) -> String { Calendar.rfc3339(seconds) }
    }

    /// Which policy applied.
    public struct PolicyInfo: Codable, Sendable, Equatable {
        /// The policy file's digest (`sha256:…`).
        public var version: String
        /// The git commit the policy came from, when writd knows it; nil (`null`) otherwise.
        public var gitCommit: String?
        /// The flow that applied.
        public var flow: String

        /// Policy facts; see the properties.
        public init(version: String, gitCommit: String?, flow: String) {
            self.version = version
            self.gitCommit = gitCommit
            self.flow = flow
        }

        enum CodingKeys: String, CodingKey {
            case version, flow
            case gitCommit = "git_commit"
        }

        /// Writes every key, `null` included.
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(version, forKey: .version)
            try c.encode(gitCommit, forKey: .gitCommit)
            try c.encode(flow, forKey: .flow)
        }
    }

    /// How a request was decided, for the notification events.
    public struct Decision: Codable, Sendable, Equatable {
        /// `approved`, `denied` or `expired`.
        public var state: String
        /// Who decided (an approver, a denier, or the rule or hook that did); nil when no one did
        /// (a request that expired).
        public var by: String?
        /// The approver's or denier's note.
        public var note: String?
        /// The grant issued (`g-…`), for an approval.
        public var grantId: String?
        /// When that grant ends (UTC seconds).
        public var expiresAt: Int64?

        /// A decision; see the properties.
        public init(
            state: String,
            by: String? = nil,
            note: String? = nil,
            grantId: String? = nil,
            expiresAt: Int64? = nil
        ) {
            self.state = state
            self.by = by
            self.note = note
            self.grantId = grantId
            self.expiresAt = expiresAt
        }

        enum CodingKeys: String, CodingKey {
            case state, by, note
            case grantId = "grant_id"
            case expiresAt = "expires_at"
        }

        /// Writes every key, `null` included.
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(state, forKey: .state)
            try c.encode(by, forKey: .by)
            try c.encode(note, forKey: .note)
            try c.encode(grantId, forKey: .grantId)
            try c.encode(expiresAt, forKey: .expiresAt)
        }
    }
}
