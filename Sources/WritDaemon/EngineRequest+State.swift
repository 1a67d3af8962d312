import WritCore
import WritEngine
import WritProtocol
import WritStore

// writd's table of requests (`d.requests` in writd.db) and the wire's view of a request: the
// engine's model at writd's edges.
extension EngineRequest {
    var view: RequestView {
        RequestView(
            id: core.id,
            kind: kind,
            extendsGrant: extendsGrant,
            requester: core.requester,
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
            requiredApprovals: core.requiredApprovals,
            approvals: core.approvals.map { ApprovalView(by: $0.by, at: $0.at, comment: $0.comment) },
            approvers: core.approvers.sorted(),
            decidedAt: core.decidedAt,
            decidedBy: core.decidedBy,
            decisionNote: core.decisionNote,
            grantId: grantID,
            autoRule: autoRule,
            policyVersion: policyVersion,
            steps: core.steps.enumerated().map { i, step in
                StepView(
                    name: step.name,
                    approvers: step.approvers.sorted(),
                    required: step.required,
                    approvals: core.approvals.filter { $0.step == i }.map(\.by),
                    escalatesAt: step.escalatesAt,
                    escalated: step.escalated
                )
            },
            currentStep: core.state == .pending ? core.currentStep : nil,
            fields: fields.isEmpty
                ? nil : fields.sorted { $0.key < $1.key }.map { RequestField(name: $0.key, value: $0.value) },
            decidedVia: decidedVia,
            policyCommit: policyCommit
        )
    }

    static let columns = """
        id, kind, extends_grant, requester, requester_uid, capability, flow, host, runas, commands, duration, \
        reason, state, created_at, pending_until, required_approvals, approvers, self_approval, approvals, \
        decided_at, decided_by, decision_note, grant_id, auto_rule, warn_before, policy_version, \
        steps, fields, context, groups, next_at, decided_via, policy_commit, asked_flow
        """

    /// INSERT OR REPLACE: the whole row is rewritten on every change (requests are small).
    func save(_ db: SQLiteDatabase) throws(StoreError) {
        let s = try db.prepare(
            """
            INSERT OR REPLACE INTO d.requests (\(Self.columns))
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20,
                    ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33, ?34)
            """
        )
        try s.bind(1, core.id)
        try s.bind(2, kind)
        try s.bind(3, extendsGrant)
        try s.bind(4, core.requester)
        try s.bind(5, Int64(requesterUID))
        try s.bind(6, core.capability.rawValue)
        try s.bind(7, flow)
        try s.bind(8, host)
        try s.bind(9, runas)
        try s.bind(10, commands.map { Self.encodeJSON($0) })
        try s.bind(11, core.duration)
        try s.bind(12, core.reason)
        try s.bind(13, core.state.rawValue)
        try s.bind(14, core.createdAt)
        try s.bind(15, core.pendingUntil)
        try s.bind(16, Int64(core.requiredApprovals))
        try s.bind(17, Self.encodeJSON(core.approvers.sorted()))
        try s.bind(18, core.selfApprovalAllowed ? 1 : 0)
        try s.bind(19, approvalsJSON)
        try s.bind(20, core.decidedAt)
        try s.bind(21, core.decidedBy)
        try s.bind(22, core.decisionNote)
        try s.bind(23, grantID)
        try s.bind(24, autoRule)
        try s.bind(25, warnBefore)
        try s.bind(26, policyVersion)
        try s.bind(27, stepsJSON)
        try s.bind(28, Self.encodeJSON(fields))
        try s.bind(29, context)
        try s.bind(30, Self.encodeJSON(groups))
        try s.bind(31, core.nextDeadline)
        try s.bind(32, decidedVia)
        try s.bind(33, policyCommit)
        try s.bind(34, askedFlow)
        _ = try s.step()
    }

    static func row(_ s: SQLiteStatement) throws(StoreError) -> EngineRequest {
        guard let capability = Capability(rawValue: s.string(5)),
            let state = AccessRequest.State(rawValue: s.string(12)),
            let approvers = decodeJSON([String].self, s.string(16)),
            let approvals = Self.approvals(fromJSON: s.string(18))
        else { throw .corrupt(path: s.database.path, detail: "request \(s.string(0)) is malformed") }
        // Rows from before approval steps had one step: its approvers and count are the columns.
        // A steps column that is there but unreadable (or empty) is corruption, never one step:
        // that would let the first step's approvers approve the later ones.
        let stepsText = s.optionalString(26)
        let stored = stepsText.flatMap { Self.steps(fromJSON: $0) }
        if stepsText != nil && stored == nil {
            throw .corrupt(path: s.database.path, detail: "request \(s.string(0)) has malformed approval steps")
        }
        let steps =
            stored
            ?? [
                AccessRequest.Step(
                    name: "approve",
                    approvers: Set(approvers),
                    required: Int(s.int64(15)),
                    startedAt: s.int64(13)
                )
            ]
        let core = AccessRequest(
            restoring: s.string(0),
            requester: s.string(3),
            capability: capability,
            duration: s.int64(10),
            reason: s.string(11),
            createdAt: s.int64(13),
            pendingUntil: s.int64(14),
            steps: steps,
            selfApprovalAllowed: s.int64(17) != 0,
            state: state,
            approvals: approvals,
            decidedAt: s.optionalInt64(19),
            decidedBy: s.optionalString(20),
            decisionNote: s.optionalString(21)
        )
        return EngineRequest(
            core: core,
            kind: s.string(1),
            extendsGrant: s.optionalString(2),
            requesterUID: UInt32(truncatingIfNeeded: s.int64(4)),
            flow: s.string(6),
            host: s.string(7),
            runas: s.string(8),
            commands: s.optionalString(9).flatMap { decodeJSON([String].self, $0) },
            grantID: s.optionalString(22),
            autoRule: s.optionalString(23),
            warnBefore: s.int64(24),
            policyVersion: s.string(25),
            fields: s.optionalString(27).flatMap { decodeJSON([String: String].self, $0) } ?? [:],
            context: s.optionalString(28) ?? "{}",
            groups: s.optionalString(29).flatMap { decodeJSON([String].self, $0) } ?? [],
            decidedVia: s.optionalString(31),
            policyCommit: s.optionalString(32),
            askedFlow: s.optionalString(33)
        )
    }

    static func load(_ db: SQLiteDatabase, id: String) throws(StoreError) -> EngineRequest? {
        let s = try db.prepare("SELECT \(columns) FROM d.requests WHERE id = ?1")
        try s.bind(1, id)
        guard try s.step() else { return nil }
        return try row(s)
    }

    static func query(
        _ db: SQLiteDatabase,
        _ whereClause: String,
        _ binds: [String] = []
    ) throws(StoreError)
        -> [EngineRequest]
    {
        let s = try db.prepare("SELECT \(columns) FROM d.requests \(whereClause)")
        for (i, b) in binds.enumerated() { try s.bind(Int32(i + 1), b) }
        var out: [EngineRequest] = []
        while try s.step() { out.append(try row(s)) }
        return out
    }

}

extension Grant {
    func view(at now: Int64) -> GrantView {
        GrantView(
            id: id,
            user: user,
            capability: capability.rawValue,
            host: host,
            runas: runas,
            commands: commands?.map(\.description),
            notBefore: notBefore,
            expiresAt: expiresAt,
            revokedAt: revokedAt,
            revokedBy: revokedBy,
            reason: reason,
            approvedBy: approvedBy,
            requestId: requestID,
            state: state(at: now).rawValue
        )
    }
}
