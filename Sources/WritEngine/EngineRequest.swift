import FoundationEssentials
import WritCore

/// A request as the approval engine keeps it, in every store: the pure state machine
/// (`AccessRequest`) plus what the policy decided when it was filed. The one model of a request;
/// the wire's `RequestView`, Slack's cards and the hooks' input are views derived from it at the
/// edges.
public struct EngineRequest: Sendable, Equatable {
    public var core: AccessRequest
    /// `grant`, or `extend` (more time on `extendsGrant`).
    public var kind: String
    public var extendsGrant: String?
    /// The requester's uid on the host that filed it (writd); 0 where no host vouched.
    public var requesterUID: UInt32
    public var flow: String
    /// The host (or host pattern) the grant is for.
    public var host: String
    public var runas: String
    public var commands: [String]?
    public var grantID: String?
    public var autoRule: String?
    public var warnBefore: Int64
    public var policyVersion: String
    /// `writ request --field name=value`.
    public var fields: [String: String]
    /// Integration facts the policy saw (JSON object text), for the audit log and replay.
    public var context: String
    /// The requester's Unix groups when the request was filed.
    public var groups: [String]
    /// What decided without people: "auto_approve rule x", "auto_deny rule y", "hook on_request".
    public var decidedVia: String?
    /// The git commit of the policy's checkout, when it is one.
    public var policyCommit: String?
    /// The flow the requester named (`--flow`), if any.
    public var askedFlow: String?

    public init(
        core: AccessRequest,
        kind: String,
        extendsGrant: String?,
        requesterUID: UInt32,
        flow: String,
        host: String,
        runas: String,
        commands: [String]?,
        grantID: String?,
        autoRule: String?,
        warnBefore: Int64,
        policyVersion: String,
        fields: [String: String] = [:],
        context: String = "{}",
        groups: [String] = [],
        decidedVia: String? = nil,
        policyCommit: String? = nil,
        askedFlow: String? = nil
    ) {
        self.core = core
        self.kind = kind
        self.extendsGrant = extendsGrant
        self.requesterUID = requesterUID
        self.flow = flow
        self.host = host
        self.runas = runas
        self.commands = commands
        self.grantID = grantID
        self.autoRule = autoRule
        self.warnBefore = warnBefore
        self.policyVersion = policyVersion
        self.fields = fields
        self.context = context
        self.groups = groups
        self.decidedVia = decidedVia
        self.policyCommit = policyCommit
        self.askedFlow = askedFlow
    }

    public static func generateID() -> String { RandomID.make("r_", hexDigits: 12) }
}

// MARK: JSON forms

extension EngineRequest {
    struct ApprovalJSON: Codable {
        var by: String
        var at: Int64
        var comment: String
        /// Absent in rows written before approval steps (they had one step).
        var step: Int?
    }

    struct StepJSON: Codable {
        var name: String
        var approvers: [String]
        var required: Int
        var escalateAfter: Int64?
        var escalateTo: [String]
        var startedAt: Int64?
        var escalated: Bool
        var added: [String]?
    }

    public static func encodeJSON<T: Encodable>(_ value: T) -> String {
        guard let data = try? JSONEncoder().encode(value) else { return "null" }
        return String(decoding: data, as: UTF8.self)
    }

    public static func decodeJSON<T: Decodable>(_ type: T.Type, _ text: String) -> T? {
        try? JSONDecoder().decode(type, from: Data(text.utf8))
    }

    var approvalRecords: [ApprovalJSON] {
        core.approvals.map { ApprovalJSON(by: $0.by, at: $0.at, comment: $0.comment, step: $0.step) }
    }

    /// The approvals as stored (a JSON array).
    public var approvalsJSON: String { Self.encodeJSON(approvalRecords) }

    static func approvals(from records: [ApprovalJSON]) -> [AccessRequest.Approval] {
        records.map { AccessRequest.Approval(by: $0.by, at: $0.at, comment: $0.comment, step: $0.step ?? 0) }
    }

    public static func approvals(fromJSON text: String) -> [AccessRequest.Approval]? {
        decodeJSON([ApprovalJSON].self, text).map(approvals(from:))
    }

    var stepRecords: [StepJSON] {
        core.steps.map {
            StepJSON(
                name: $0.name,
                approvers: $0.approvers.sorted(),
                required: $0.required,
                escalateAfter: $0.escalateAfter,
                escalateTo: $0.escalateTo.sorted(),
                startedAt: $0.startedAt,
                escalated: $0.escalated,
                added: $0.addedApprovers.isEmpty ? nil : $0.addedApprovers.sorted()
            )
        }
    }

    /// The approval steps as stored (a JSON array).
    public var stepsJSON: String { Self.encodeJSON(stepRecords) }

    /// The steps of a stored request; nil when the text is unreadable or holds no step (never
    /// read as one step: that would let the first step's approvers approve the later ones).
    public static func steps(fromJSON text: String) -> [AccessRequest.Step]? {
        decodeJSON([StepJSON].self, text).flatMap(steps(from:))
    }

    static func steps(from records: [StepJSON]) -> [AccessRequest.Step]? {
        guard !records.isEmpty else { return nil }
        return records.map {
            AccessRequest.Step(
                name: $0.name,
                approvers: Set($0.approvers),
                required: $0.required,
                escalateAfter: $0.escalateAfter,
                escalateTo: Set($0.escalateTo),
                startedAt: $0.startedAt,
                escalated: $0.escalated,
                addedApprovers: Set($0.added ?? [])
            )
        }
    }
}

// MARK: the whole request as one document (the engine's stores)

extension EngineRequest {
    /// Every field, for stores that keep a request as one JSON document beside the columns they
    /// query (state, requester, next deadline).
    struct Document: Codable {
        var id: String
        var kind: String
        var extendsGrant: String?
        var requester: String
        var requesterUID: UInt32
        var capability: String
        var flow: String
        var host: String
        var runas: String
        var commands: [String]?
        var duration: Int64
        var reason: String
        var state: String
        var createdAt: Int64
        var pendingUntil: Int64
        var selfApproval: Bool
        var steps: [StepJSON]
        var approvals: [ApprovalJSON]
        var decidedAt: Int64?
        var decidedBy: String?
        var decisionNote: String?
        var grantID: String?
        var autoRule: String?
        var warnBefore: Int64
        var policyVersion: String
        var fields: [String: String]
        var context: String
        var groups: [String]
        var decidedVia: String?
        var policyCommit: String?
        var askedFlow: String?
    }

    /// The request as one JSON object (`init(document:)` reads it back).
    public var document: String {
        Self.encodeJSON(
            Document(
                id: core.id,
                kind: kind,
                extendsGrant: extendsGrant,
                requester: core.requester,
                requesterUID: requesterUID,
                capability: core.capability.rawValue,
                flow: flow,
                host: host,
                runas: runas,
                commands: commands,
                duration: core.duration,
                reason: core.reason,
                state: core.state.rawValue,
                createdAt: core.createdAt,
                pendingUntil: core.pendingUntil,
                selfApproval: core.selfApprovalAllowed,
                steps: stepRecords,
                approvals: approvalRecords,
                decidedAt: core.decidedAt,
                decidedBy: core.decidedBy,
                decisionNote: core.decisionNote,
                grantID: grantID,
                autoRule: autoRule,
                warnBefore: warnBefore,
                policyVersion: policyVersion,
                fields: fields,
                context: context,
                groups: groups,
                decidedVia: decidedVia,
                policyCommit: policyCommit,
                askedFlow: askedFlow
            )
        )
    }

    /// Reads `document`; a document that does not decode, or names an unknown capability or
    /// state, or has no step, is corruption.
    public init(document text: String) throws(EngineError) {
        guard let d = Self.decodeJSON(Document.self, text) else {
            throw .corrupt("a stored request does not decode")
        }
        guard let capability = Capability(rawValue: d.capability), let state = AccessRequest.State(rawValue: d.state),
            let steps = Self.steps(from: d.steps)
        else { throw .corrupt("request \(LogText.escape(d.id, limit: 64)) is malformed") }
        self.init(
            core: AccessRequest(
                restoring: d.id,
                requester: d.requester,
                capability: capability,
                duration: d.duration,
                reason: d.reason,
                createdAt: d.createdAt,
                pendingUntil: d.pendingUntil,
                steps: steps,
                selfApprovalAllowed: d.selfApproval,
                state: state,
                approvals: Self.approvals(from: d.approvals),
                decidedAt: d.decidedAt,
                decidedBy: d.decidedBy,
                decisionNote: d.decisionNote
            ),
            kind: d.kind,
            extendsGrant: d.extendsGrant,
            requesterUID: d.requesterUID,
            flow: d.flow,
            host: d.host,
            runas: d.runas,
            commands: d.commands,
            grantID: d.grantID,
            autoRule: d.autoRule,
            warnBefore: d.warnBefore,
            policyVersion: d.policyVersion,
            fields: d.fields,
            context: d.context,
            groups: d.groups,
            decidedVia: d.decidedVia,
            policyCommit: d.policyCommit,
            askedFlow: d.askedFlow
        )
    }
}
