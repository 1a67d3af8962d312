import WritCore
import WritExpr
import Yams

/// `when:` conditions, `auto_deny:` rules, approval `steps:` with escalation, and `hooks:`.
extension PolicyParser {
    static let denyRuleKeys = ["name", "when", "message"]
    static let stepKeys = ["name", "approvers", "approvals", "when", "escalate"]
    static let escalationKeys = ["after", "to"]
    static let hookKeys = ["path", "timeout", "env"]

    /// `when:` in `fields`: compiled now, so a mistake is a load-time error at its place.
    mutating func condition(_ fields: Fields, in place: String) -> Located<Condition>? {
        guard let node = fields["when"] else { return nil }
        guard case .scalar(let scalar) = node, !Self.isNull(node), !Self.trimmed(scalar.string).isEmpty else {
            report(
                "'when' \(place) must be a condition, e.g. when: 'request.duration <= duration(\"1h\")'\(Self.found(node))",
                at: fields.position(of: "when")
            )
            return nil
        }
        do throws(ExprError) {
            let expression = try Expression.compile(scalar.string, declarations: Conditions.declarations)
            return Located(
                value: Condition(source: scalar.string, expression: expression),
                position: Position(node)
            )
        } catch {
            report("'when' \(place): \(error.message)", at: position(ofOffset: error.offset, in: scalar, node: node))
            return nil
        }
    }

    /// Where the `offset`th character of a scalar's value is in the file: exact for plain and
    /// quoted scalars on one line (quoted ones without escapes before the place) and for literal
    /// blocks (`|`), the first line of the value otherwise.
    func position(ofOffset offset: Int, in scalar: Node.Scalar, node: Node) -> Position {
        let start = Position(node)
        let value = Array(scalar.string.unicodeScalars)
        let before = value.prefix(max(0, min(offset, value.count)))
        let newlines = before.filter { $0 == "\n" }.count
        let sinceNewline = before.count - ((before.lastIndex(of: "\n")).map { $0 + 1 } ?? 0)
        switch scalar.style {
        case .literal, .folded:
            // The value starts on the line after the indicator, at the block's indentation.
            let line = start.line + 1 + (scalar.style == .literal ? newlines : 0)
            let indent = sourceLine(start.line + 1).prefix { $0 == " " }.count
            return Position(line: line, column: indent + 1 + (scalar.style == .literal ? sinceNewline : 0))
        case .singleQuoted, .doubleQuoted:
            return newlines == 0 ? Position(line: start.line, column: start.column + 1 + offset) : start
        default:
            return newlines == 0 ? Position(line: start.line, column: start.column + offset) : start
        }
    }

    /// One item of `auto_deny:`.
    mutating func denyRule(_ node: Node, flowPlace: String) -> (name: Located<String>?, rule: DenyRule?) {
        guard case .mapping = node else {
            report(
                "an auto_deny rule \(flowPlace) must be a mapping starting with 'name:'\(Self.found(node))",
                at: node
            )
            return (nil, nil)
        }
        let place =
            Self.scalar("name", in: node).map {
                "in auto_deny rule \(LogText.escape($0, limit: 60)) of \(flowPlace.dropFirst(3))"
            } ?? "in an auto_deny rule \(flowPlace.dropFirst(3))"
        guard
            let fields = fields(
                node,
                named: "auto_deny rule",
                in: place,
                at: Position(node),
                known: Self.denyRuleKeys,
                example: "{name: no-prod-fridays, when: 'time.weekday == \"fri\"', message: \"…\"}"
            )
        else { return (nil, nil) }
        let name = text(fields, "name", in: place)
        if name == nil && fields["name"] == nil {
            reportMissing("name", in: fields, "an auto_deny rule \(flowPlace) has no 'name'")
        }
        let condition = condition(fields, in: place)
        if condition == nil && fields["when"] == nil {
            reportMissing(
                "when",
                in: fields,
                "'when' is missing \(place): say which requests it denies, e.g. when: 'request.duration > duration(\"4h\")'"
            )
        }
        let message = text(fields, "message", in: place)
        if message == nil && fields["message"] == nil {
            reportMissing(
                "message",
                in: fields,
                "'message' is missing \(place): tell the requester why, and what to do instead"
            )
        }
        guard let name, let condition, let message else { return (name, nil) }
        return (name, DenyRule(name: name.value, condition: condition.value, message: message.value))
    }

    /// `steps:`: approval steps in order. `defaultApprovals` is the approvals `defaults:` set.
    mutating func steps(
        _ node: Node,
        position: Position,
        flowPlace: String,
        groups: Groups,
        defaultApprovals: Int
    ) -> [(step: ApprovalStep, approvers: Located<Principals>, approvals: Located<Int>?)]? {
        var names: [String: Position] = [:]
        let parsed = items(
            node,
            position: position,
            name: "steps",
            in: flowPlace,
            example: "[{name: team, approvers: {groups: [sre]}}, {name: security, approvers: {groups: [sec]}}]",
            allowEmpty: false
        ) { parser, item, label -> (step: ApprovalStep, approvers: Located<Principals>, approvals: Located<Int>?)? in
            guard case .mapping = item else {
                parser.report("\(label) must be a mapping starting with 'name:'\(Self.found(item))", at: item)
                return nil
            }
            let place =
                Self.scalar("name", in: item).map {
                    "in step \(LogText.escape($0, limit: 60)) of \(flowPlace.dropFirst(3))"
                } ?? "in a step \(flowPlace.dropFirst(3))"
            guard
                let fields = parser.fields(
                    item,
                    named: "step",
                    in: place,
                    at: Position(item),
                    known: Self.stepKeys,
                    example: "{name: team, approvers: {groups: [sre]}, approvals: 1}"
                )
            else { return nil }
            var valid = true
            let name = parser.text(fields, "name", in: place)
            if let name {
                if let first = names[name.value] {
                    parser.report(
                        "step name '\(LogText.escape(name.value, limit: 60))' is already used \(flowPlace) at line \(first.line): step names must be unique within a flow",
                        at: name.position
                    )
                    valid = false
                }
                names[name.value] = name.position
            } else {
                if fields["name"] == nil { parser.reportMissing("name", in: fields, "\(label) has no 'name'") }
                valid = false
            }
            let approvers = parser.principals(fields, "approvers", in: place, groups: groups)
            if let approvers, approvers.value.isEmpty {
                parser.report(
                    "'approvers' \(place) names nobody: list users, unix_groups or groups",
                    at: approvers.position
                )
                valid = false
            } else if approvers == nil {
                if fields["approvers"] == nil {
                    parser.reportMissing(
                        "approvers",
                        in: fields,
                        "'approvers' is missing \(place): say who approves this step, e.g. approvers: {groups: [security]}"
                    )
                }
                valid = false
            }
            var approvals: Located<Int>? = nil
            if fields["approvals"] != nil {
                approvals = parser.integer(fields, "approvals", in: place)
                if let a = approvals, a.value < 1 {
                    parser.report("'approvals' \(place) must be at least 1", at: a.position)
                    valid = false
                }
                if approvals == nil { valid = false }
            }
            let condition = parser.condition(fields, in: place)
            if fields["when"] != nil && condition == nil { valid = false }
            var escalation: Escalation? = nil
            if let node = fields["escalate"] {
                escalation = parser.escalation(
                    node,
                    position: fields.position(of: "escalate"),
                    in: place,
                    groups: groups
                )
                if escalation == nil { valid = false }
            }
            guard valid, let name, let approvers else { return nil }
            let step = ApprovalStep(
                name: name.value,
                approvers: approvers.value,
                approvals: approvals?.value ?? defaultApprovals,
                condition: condition?.value,
                escalation: escalation
            )
            return (step, approvers, approvals)
        }
        return parsed
    }

    /// `escalate: {after: 30m, to: {groups: [leads]}}`.
    mutating func escalation(_ node: Node, position: Position, in stepPlace: String, groups: Groups) -> Escalation? {
        let place = "in the escalation of \(stepPlace.dropFirst(3))"
        guard
            let fields = fields(
                node,
                named: "escalate",
                in: stepPlace,
                at: position,
                keysIn: place,
                known: Self.escalationKeys,
                example: "{after: 30m, to: {groups: [leads]}}"
            )
        else { return nil }
        let after = duration(fields, "after", in: place)
        if after == nil && fields["after"] == nil {
            reportMissing(
                "after",
                in: fields,
                "'after' is missing \(place): say how long the step waits, e.g. after: 30m"
            )
        }
        let to = principals(fields, "to", in: place, groups: groups)
        if let to, to.value.isEmpty {
            report("'to' \(place) names nobody: list users, unix_groups or groups", at: to.position)
            return nil
        }
        if to == nil && fields["to"] == nil {
            reportMissing(
                "to",
                in: fields,
                "'to' is missing \(place): say who may approve then, e.g. to: {groups: [leads]}"
            )
        }
        guard let after, let to else { return nil }
        return Escalation(after: after.value, to: to.value)
    }

    /// `break_glass: {pagerduty: {escalation_policies: [P…], schedules: [S…], max_level: 1}, max_duration: 1h}`.
    mutating func breakGlass(_ node: Node, position: Position, in flowPlace: String, flowMax: Int64) -> BreakGlass? {
        let place = "in the break_glass of \(flowPlace.dropFirst(3))"
        guard
            let fields = fields(
                node,
                named: "break_glass",
                in: flowPlace,
                at: position,
                keysIn: place,
                known: ["pagerduty", "max_duration"],
                example: "{pagerduty: {escalation_policies: [PABC123], max_level: 1}, max_duration: 1h}"
            )
        else { return nil }
        guard let pdNode = fields["pagerduty"] else {
            reportMissing(
                "pagerduty",
                in: fields,
                "'pagerduty' is missing \(place): name the escalation policies or schedules whose on-call engineers get access"
            )
            return nil
        }
        let pdPlace = "in the pagerduty of \(place.dropFirst(3))"
        guard
            let pd = self.fields(
                pdNode,
                named: "pagerduty",
                in: place,
                at: fields.position(of: "pagerduty"),
                keysIn: pdPlace,
                known: ["escalation_policies", "schedules", "max_level"],
                example: "{escalation_policies: [PABC123], schedules: [PXYZ789], max_level: 1}"
            )
        else { return nil }
        let policies = words(pd, "escalation_policies", in: pdPlace, example: "[PABC123]")
        let schedules = words(pd, "schedules", in: pdPlace, example: "[PXYZ789]")
        if (pd["escalation_policies"] != nil && policies == nil) || (pd["schedules"] != nil && schedules == nil) {
            return nil
        }
        if (policies ?? []).isEmpty && (schedules ?? []).isEmpty {
            report(
                "\(pdPlace.dropFirst(3)) names no escalation_policies or schedules: list the PagerDuty ids whose on-call engineers get access",
                at: pd.position
            )
            return nil
        }
        var maxLevel = 1
        if pd["max_level"] != nil {
            guard let level = integer(pd, "max_level", in: pdPlace) else { return nil }
            guard level.value >= 1 else {
                report("'max_level' \(pdPlace) must be 1 or more (1: the first responders)", at: level.position)
                return nil
            }
            maxLevel = level.value
        }
        var maxDuration = flowMax
        if fields["max_duration"] != nil {
            guard let d = duration(fields, "max_duration", in: place) else { return nil }
            guard d.value <= flowMax else {
                report(
                    "'max_duration' \(place) is \(DurationText.format(d.value)), over the flow's max \(DurationText.format(flowMax)): break-glass cannot grant longer than its flow",
                    at: d.position
                )
                return nil
            }
            maxDuration = d.value
        }
        return BreakGlass(
            escalationPolicies: policies?.map(\.value) ?? [],
            schedules: schedules?.map(\.value) ?? [],
            maxLevel: maxLevel,
            maxDuration: maxDuration
        )
    }

    /// `hooks: {on_request: /etc/writ/hooks/oncall.py, on_approve: {path: …, timeout: 10s, env: {…}}}`.
    mutating func hooks(_ node: Node, position: Position, in flowPlace: String) -> FlowHooks? {
        let place = "in the hooks of \(flowPlace.dropFirst(3))"
        guard
            let fields = fields(
                node,
                named: "hooks",
                in: flowPlace,
                at: position,
                keysIn: place,
                known: FlowHooks.events,
                example: "{on_request: /etc/writ/hooks/oncall.py}"
            )
        else { return nil }
        var hooks = FlowHooks()
        var valid = true
        for event in FlowHooks.events {
            guard let hookNode = fields[event] else { continue }
            guard let hook = hook(hookNode, position: fields.position(of: event), name: event, in: place) else {
                valid = false
                continue
            }
            switch event {
            case "on_request": hooks.onRequest = hook
            case "on_approve": hooks.onApprove = hook
            case "on_deny": hooks.onDeny = hook
            default: hooks.onExpire = hook
            }
        }
        return valid ? hooks : nil
    }

    /// One hook: a path, or `{path, timeout, env}`.
    mutating func hook(_ node: Node, position: Position, name: String, in place: String) -> HookSpec? {
        let hookPlace = "in hook \(name) \(place.dropFirst(3))"
        var path: Located<String>?
        var timeout: Int64 = 5
        var environment: [String: String] = [:]
        if case .scalar(let scalar) = node, !Self.isNull(node) {
            path = Located(value: scalar.string, position: Position(node))
        } else {
            guard
                let fields = fields(
                    node,
                    named: name,
                    in: place,
                    at: position,
                    keysIn: hookPlace,
                    known: Self.hookKeys,
                    example: "{path: /etc/writ/hooks/oncall.py, timeout: 5s}"
                )
            else { return nil }
            path = text(fields, "path", in: hookPlace)
            if path == nil {
                if fields["path"] == nil {
                    reportMissing("path", in: fields, "'path' is missing \(hookPlace): name the executable")
                }
                return nil
            }
            if fields["timeout"] != nil {
                guard let t = duration(fields, "timeout", in: hookPlace) else { return nil }
                if t.value > 60 {
                    report(
                        "'timeout' \(hookPlace) is \(DurationText.format(t.value)): at most 60s — a requester is waiting",
                        at: t.position
                    )
                    return nil
                }
                timeout = t.value
            }
            if let envNode = fields["env"] {
                guard let env = hookEnvironment(envNode, position: fields.position(of: "env"), in: hookPlace) else {
                    return nil
                }
                environment = env
            }
        }
        guard let path else { return nil }
        guard path.value.hasPrefix("/"), !path.value.contains("\0") else {
            report(
                "hook \(name) \(place) is '\(LogText.escape(path.value, limit: 80))': give the executable's absolute path, e.g. /etc/writ/hooks/oncall.py",
                at: path.position
            )
            return nil
        }
        return HookSpec(path: path.value, timeoutMilliseconds: Int(timeout) * 1000, environment: environment)
    }

    /// Names the runner sets itself (or that would change how it starts), which `env:` may not set.
    static var fixedHookVariables: Set<String> { HookSpec.reservedNames }

    /// `env: {WEBHOOK_URL: https://…}`: upper-case names, text values.
    mutating func hookEnvironment(_ node: Node, position: Position, in place: String) -> [String: String]? {
        guard case .mapping(let mapping) = node else {
            report("'env' \(place) must be a mapping of NAME: value\(Self.found(node))", at: position)
            return nil
        }
        var result: [String: String] = [:]
        var valid = true
        for (key, value) in mapping {
            guard case .scalar(let k) = key, Self.isVariableName(k.string) else {
                report(
                    "'env' \(place): variable names are upper-case letters, digits and _, not \(Self.kind(key))",
                    at: key
                )
                valid = false
                continue
            }
            if Self.fixedHookVariables.contains(k.string) {
                report("'env' \(place): \(k.string) is set by writd and cannot be changed here", at: key)
                valid = false
                continue
            }
            guard case .scalar(let v) = value, !v.string.contains("\0") else {
                report("'env' \(place): the value of \(k.string) must be text\(Self.found(value))", at: value)
                valid = false
                continue
            }
            result[k.string] = v.string
        }
        return valid ? result : nil
    }

    static func isVariableName(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, first == "_" || ("A"..."Z").contains(first) else { return false }
        return s.unicodeScalars.allSatisfy { $0 == "_" || ("A"..."Z").contains($0) || ("0"..."9").contains($0) }
    }
}
