import WritCore
import Yams

extension PolicyParser {
    /// In the order the reference example writes them, which is the order "expected one of" lists.
    static let flowKeys = [
        "name", "description", "capability", "hosts", "runas", "commands", "requesters", "approvers", "approvals",
        "steps", "self_approval", "duration", "reason", "pending_timeout", "warn_before", "auto_deny", "break_glass",
        "auto_approve", "hooks", "slack_channel", "slack_approve", "approve_from_hosts",
    ]
    static let principalKeys = ["users", "unix_groups", "groups"]
    static let ruleKeys = ["name", "requester_in", "window", "when", "max_duration"]
    static let windowKeys = ["days", "from", "to", "tz"]
    static let dayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
    static let fullDayNames = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]

    typealias Groups = [String: [Located<String>]]

    /// One item of `flows:`. Returns its name (for the duplicate check) even when the flow is
    /// invalid, and the flow only when it is valid.
    mutating func flow(
        _ node: Node,
        number: Int,
        groups: Groups,
        defaults: FlowSettings
    ) -> (name: Located<String>?, flow: Flow?) {
        // The name is read before anything else so that every other message can say which flow.
        guard case .mapping = node else {
            report("flow \(number) in 'flows' must be a mapping starting with 'name:'\(Self.found(node))", at: node)
            return (nil, nil)
        }
        let place =
            Self.scalar("name", in: node).map { "in flow \(LogText.escape($0, limit: 60))" } ?? "in flow \(number)"
        guard
            let fields = fields(
                node,
                named: "flow",
                in: place,
                at: Position(node),
                known: Self.flowKeys,
                example: "{name: ops-sudo, capability: sudo, requesters: …, approvers: …}"
            )
        else { return (nil, nil) }
        var valid = true

        let name = text(fields, "name", in: place)
        if let name {
            if !name.value.unicodeScalars.allSatisfy(Self.isNameCharacter) {
                report(
                    "flow name '\(LogText.escape(name.value, limit: 60))' may use only letters, digits, '.', '_' and '-' "
                        + "(people type it after --flow)",
                    at: name.position
                )
                valid = false
            }
        } else {
            if fields["name"] == nil { reportMissing("name", in: fields, "flow \(number) has no 'name'") }
            valid = false
        }

        let description = text(fields, "description", in: place)
        if fields["description"] != nil && description == nil { valid = false }

        var capability: Capability? = nil
        if let text = text(fields, "capability", in: place) {
            capability = Capability(rawValue: text.value)
            if capability == nil {
                report(
                    Self.unknown("capability", text.value, place: place, known: Capability.allCases.map(\.rawValue)),
                    at: text.position
                )
            }
        } else if fields["capability"] == nil {
            reportMissing(
                "capability",
                in: fields,
                "'capability' is missing \(place): add capability: sudo or capability: login"
            )
        }
        if capability == nil { valid = false }

        let commands = fields["commands"].flatMap {
            commandLines($0, position: fields.position(of: "commands"), in: place)
        }
        if fields["commands"] != nil && commands == nil { valid = false }

        let requesters = principals(fields, "requesters", in: place, groups: groups)
        if let requesters, requesters.value.isEmpty {
            report(
                "'requesters' \(place) names nobody: list users, unix_groups or groups",
                at: requesters.position
            )
            valid = false
        } else if requesters == nil {
            if fields["requesters"] == nil {
                reportMissing(
                    "requesters",
                    in: fields,
                    "'requesters' is missing \(place): say who may ask, e.g. requesters: {unix_groups: [ops]}"
                )
            }
            valid = false
        }

        let own = settings(fields, in: place)
        let merged = defaults.overridden(by: own)
        if !Self.allPresent(fields, own) { valid = false }
        let durations = effectiveDurations(merged, place: place)
        if !durations.consistent { valid = false }

        var rules: [AutoRule] = []
        var ruleNames: [String: Position] = [:]
        if let node = fields["auto_approve"] {
            let parsed = items(
                node,
                position: fields.position(of: "auto_approve"),
                name: "auto_approve",
                in: place,
                example: "[{name: nights, requester_in: {groups: [sre]}}]",
                allowEmpty: true
            ) { parser, item, _ -> AutoRule? in
                let rule = parser.autoRule(item, flowPlace: place, groups: groups, flowMax: durations.max)
                if let ruleName = rule.name {
                    if let first = ruleNames[ruleName.value] {
                        parser.report(
                            "auto_approve rule name '\(LogText.escape(ruleName.value, limit: 60))' is already used \(place) at line \(first.line): "
                                + "rule names must be unique within a flow",
                            at: ruleName.position
                        )
                        return nil
                    }
                    ruleNames[ruleName.value] = ruleName.position
                }
                return rule.rule
            }
            if let parsed { rules = parsed } else { valid = false }
        }

        var denyRules: [DenyRule] = []
        if let node = fields["auto_deny"] {
            var denyNames: [String: Position] = [:]
            let parsed = items(
                node,
                position: fields.position(of: "auto_deny"),
                name: "auto_deny",
                in: place,
                example: "[{name: too-long, when: 'request.duration > duration(\"4h\")', message: \"…\"}]",
                allowEmpty: true
            ) { parser, item, _ -> DenyRule? in
                let rule = parser.denyRule(item, flowPlace: place)
                if let ruleName = rule.name {
                    if let first = denyNames[ruleName.value] {
                        parser.report(
                            "auto_deny rule name '\(LogText.escape(ruleName.value, limit: 60))' is already used \(place) at line \(first.line): "
                                + "rule names must be unique within a flow",
                            at: ruleName.position
                        )
                        return nil
                    }
                    denyNames[ruleName.value] = ruleName.position
                }
                return rule.rule
            }
            if let parsed { denyRules = parsed } else { valid = false }
        }

        var breakGlass: BreakGlass? = nil
        if let node = fields["break_glass"] {
            breakGlass = self.breakGlass(
                node,
                position: fields.position(of: "break_glass"),
                in: place,
                flowMax: durations.max
            )
            if breakGlass == nil { valid = false }
        }

        let slackChannel = text(fields, "slack_channel", in: place)
        var slackApprove = SlackApproval.allowed
        if let a = text(fields, "slack_approve", in: place) {
            if let known = SlackApproval(rawValue: a.value) {
                slackApprove = known
            } else {
                report(
                    "'slack_approve' \(place) must be allowed (a click, with a confirmation), confirm (a click, then a typed comment) or cli (only writ approve on a host)",
                    at: a.position
                )
                valid = false
            }
        }

        var approveFromHosts: [String] = []
        if let node = fields["approve_from_hosts"] {
            let hosts = items(
                node,
                position: fields.position(of: "approve_from_hosts"),
                name: "approve_from_hosts",
                in: place,
                example: "[\"bastion-*\"]",
                allowEmpty: true,
                item: Self.hostGlob
            )
            if let hosts { approveFromHosts = hosts.map(\.value) } else { valid = false }
        }

        var hooks = FlowHooks()
        if let node = fields["hooks"] {
            if let parsed = self.hooks(node, position: fields.position(of: "hooks"), in: place) {
                hooks = parsed
            } else {
                valid = false
            }
        }

        let approvers = principals(fields, "approvers", in: place, groups: groups)
        if fields["approvers"] != nil && approvers == nil { valid = false }
        var steps: [ApprovalStep]? = nil
        if let node = fields["steps"] {
            for key in ["approvers", "approvals"] where fields[key] != nil {
                report(
                    "'\(key)' \(place) cannot be used with 'steps': each step names its own approvers and approvals",
                    at: Position(fields.key(key) ?? node)
                )
                valid = false
            }
            let parsed = self.steps(
                node,
                position: fields.position(of: "steps"),
                flowPlace: place,
                groups: groups,
                defaultApprovals: merged.approvals?.value ?? 1
            )
            if let parsed, let requesters {
                steps = parsed.map(\.step)
                for item in parsed {
                    var stepSettings = merged
                    if let own = item.approvals { stepSettings.approvals = own }
                    let stepPlace = "in step \(LogText.escape(item.step.name, limit: 60)) of \(place.dropFirst(3))"
                    if !checkApprovals(
                        stepSettings,
                        requesters: requesters,
                        approvers: item.approvers,
                        place: stepPlace,
                        groups: groups
                    ) {
                        valid = false
                    }
                }
            } else {
                valid = false
            }
        }
        // Without auto-approve rules or an on_request hook (which may add approvers), someone
        // must be able to approve. Rules that failed to parse still count: their author meant the
        // flow to have them, and one error is enough.
        var hasRules = fields["break_glass"] != nil
        if case .mapping(let m)? = fields["hooks"], m.contains(where: { $0.key.scalar?.string == "on_request" }) {
            hasRules = true
        }
        if case .sequence(let list)? = fields["auto_approve"], !list.isEmpty { hasRules = true }
        if !hasRules && fields["steps"] == nil {
            if let approvers, approvers.value.isEmpty {
                report(
                    "'approvers' \(place) names nobody: list users, unix_groups or groups (or add auto_approve rules)",
                    at: approvers.position
                )
                valid = false
            } else if fields["approvers"] == nil {
                reportMissing(
                    "approvers",
                    in: fields,
                    "'approvers' is missing \(place): say who may approve, e.g. approvers: {groups: [leads]} (or steps:)"
                )
                valid = false
            }
        }

        if capability == .login {
            for key in ["runas", "commands"] where fields[key] != nil {
                report(
                    "'\(key)' \(place) applies to sudo flows only: this flow grants login",
                    at: Position(fields.key(key) ?? node)
                )
                valid = false
            }
        }
        checkExample(merged, place: place, mixedOnly: true)
        // A flow without approvers (it has auto-approve rules) still must not allow self-approval
        // alone; one whose approvers were malformed has been reported already.
        if let requesters, fields["steps"] == nil, fields["approvers"] == nil || approvers != nil {
            let approvers = approvers ?? Located(value: Principals(), position: fields.position)
            if !checkApprovals(merged, requesters: requesters, approvers: approvers, place: place, groups: groups) {
                valid = false
            }
        }

        // `hasIssues` also covers mistakes inside nested mappings (duration, reason) that leave no
        // trace in `valid`; a policy with any issue is never returned anyway.
        guard valid, !hasIssues, let name, let capability, let requesters else { return (name, nil) }
        let isSudo = capability == .sudo
        let flow = Flow(
            name: name.value,
            description: description?.value ?? "",
            capability: capability,
            hosts: merged.hosts?.value ?? ["*"],
            runas: isSudo ? merged.runas?.value ?? "root" : "root",
            commands: isSudo ? commands : nil,
            requesters: requesters.value,
            approvers: approvers?.value ?? Principals(),
            approvals: merged.approvals?.value ?? 1,
            steps: steps,
            selfApproval: merged.selfApproval?.value ?? false,
            defaultDuration: durations.default,
            maxDuration: durations.max,
            reasonRequired: merged.reasonRequired?.value ?? true,
            reasonPattern: merged.reasonPattern?.value,
            reasonExample: merged.reasonExample?.value,
            pendingTimeout: merged.pendingTimeout?.value ?? Policy.builtInPendingTimeout,
            warnBefore: merged.warnBefore?.value ?? Policy.builtInWarnBefore,
            autoDeny: denyRules,
            breakGlass: breakGlass,
            autoApprove: rules,
            hooks: hooks,
            slackChannel: slackChannel?.value,
            slackApprove: slackApprove,
            approveFromHosts: approveFromHosts
        )
        return (name, flow)
    }

    /// Letters, digits, `.`, `_`, `-`: a flow name is typed on command lines and shown in logs.
    static func isNameCharacter(_ c: Unicode.Scalar) -> Bool {
        switch c {
        case "a"..."z", "A"..."Z", "0"..."9", ".", "_", "-": true
        default: false
        }
    }

    /// Whether every settings key the flow wrote was read successfully (a bad value leaves its
    /// setting nil, which must not silently fall back to a default).
    static func allPresent(_ fields: Fields, _ s: FlowSettings) -> Bool {
        let read: [String: Bool] = [
            "hosts": s.hosts != nil, "runas": s.runas != nil, "approvals": s.approvals != nil,
            "self_approval": s.selfApproval != nil, "pending_timeout": s.pendingTimeout != nil,
            "warn_before": s.warnBefore != nil,
        ]
        for (key, ok) in read where fields[key] != nil && !ok { return false }
        // duration and reason: a bad field inside them has been reported; `hasIssues` catches it.
        return true
    }

    /// The flow's default and maximum duration, filling in what the file leaves out: no max means
    /// the default is also the max (a longer grant must be allowed on purpose); no default means
    /// the built-in hour, or the max if that is shorter. Reports a default over the max when one
    /// comes from `defaults:` and the other from the flow (`settings` reported the other cases).
    mutating func effectiveDurations(_ s: FlowSettings, place: String) -> (default: Int64, max: Int64, consistent: Bool)
    {
        switch (s.defaultDuration, s.maxDuration) {
        case (let d?, let m?):
            if d.value > m.value && d.fromDefaults != m.fromDefaults {
                report(
                    Self.defaultOverMax(d.value, m.value, place: place),
                    at: d.fromDefaults ? m.position : d.position
                )
            }
            return (d.value, m.value, d.value <= m.value)
        case (let d?, nil): return (d.value, d.value, true)
        case (nil, let m?): return (min(Policy.builtInDefaultDuration, m.value), m.value, true)
        case (nil, nil): return (Policy.builtInDefaultDuration, Policy.builtInDefaultDuration, true)
        }
    }

    /// The text of the scalar under `key` in a mapping node, read before the mapping is checked
    /// so that messages can name the flow or rule.
    static func scalar(_ key: String, in node: Node) -> String? {
        guard case .mapping(let mapping) = node else { return nil }
        for (k, v) in mapping {
            guard case .scalar(let ks) = k, ks.string == key else { continue }
            guard case .scalar(let vs) = v, !isNull(v), !vs.string.isEmpty else { return nil }
            return vs.string
        }
        return nil
    }

    /// Approval counts that can never be met, and self-approval that makes approval a formality.
    /// Only what is known from the file counts: members of Unix groups are unknown until a request.
    mutating func checkApprovals(
        _ s: FlowSettings,
        requesters: Located<Principals>,
        approvers: Located<Principals>,
        place: String,
        groups: Groups
    ) -> Bool {
        let approvals = s.approvals?.value ?? 1
        let selfApproval = s.selfApproval?.value ?? false
        let approvalsPosition = s.approvals.flatMap { $0.fromDefaults ? nil : $0.position } ?? approvers.position
        // AccessRequest lets the requester approve whenever self-approval is on, approver or not:
        // with one approval required, every request could be granted by its own requester.
        if selfApproval && approvals < 2 {
            let position = s.selfApproval.flatMap { $0.fromDefaults ? nil : $0.position } ?? approvalsPosition
            report(
                "self_approval: true with approvals: 1 \(place) lets every requester approve their own request "
                    + "alone — set approvals: 2 or more, or self_approval: false",
                at: position
            )
            return false
        }
        guard !approvers.value.isEmpty, approvers.value.unixGroups.isEmpty else { return true }
        let plainGroups = groups.mapValues { $0.map(\.value) }
        let approverUsers = approvers.value.staticUsers(policyGroups: plainGroups)
        let requesterUsers = requesters.value.staticUsers(policyGroups: plainGroups)
        let own = selfApproval ? 1 : 0
        if approvals > approverUsers.count + own {
            report(
                "approvals: \(approvals) \(place) can never be met: only \(approverUsers.count) approver"
                    + "\(approverUsers.count == 1 ? " is" : "s are") listed (\(Self.list(approverUsers)))"
                    + "\(selfApproval ? ", plus the requester's own approval" : "") — lower approvals or add approvers",
                at: approvalsPosition
            )
            return false
        }
        // A requester who is also an approver counts once: without self-approval not at all.
        let stuck = requesterUsers.intersection(approverUsers)
        let possible = approverUsers.count - 1 + own
        if !stuck.isEmpty && possible < approvals {
            report(
                "approvals: \(approvals) \(place) can never be met for requests by \(Self.list(stuck)): only "
                    + "\(possible) approval\(possible == 1 ? " is" : "s are") possible for them (the other approvers "
                    + "listed\(selfApproval ? " and their own" : "; self_approval is false"))",
                at: approvalsPosition
            )
            return false
        }
        return true
    }

    static func list(_ names: Set<String>) -> String {
        let sorted = names.sorted()
        let shown = sorted.prefix(5).map { LogText.escape($0, limit: 60) }.joined(separator: ", ")
        return sorted.count > 5 ? shown + ", …" : shown
    }

    /// `commands:`: command lines, each checked the way `writ grant add --command` checks them.
    mutating func commandLines(_ node: Node, position: Position, in place: String) -> [String]? {
        items(
            node,
            position: position,
            name: "commands",
            in: place,
            example: "[\"/usr/bin/systemctl restart nginx\"]",
            allowEmpty: false
        ) { parser, item, label -> String? in
            guard case .scalar(let scalar) = item, !Self.isNull(item) else {
                parser.report("\(label) must be a command line\(Self.found(item))", at: item)
                return nil
            }
            let line = Self.trimmed(scalar.string)
            do throws(CommandPatternError) {
                _ = try CommandPattern(parsing: line)
            } catch .empty {
                parser.report(
                    "\(label) is empty: give an absolute path and its arguments, e.g. \"/usr/bin/systemctl restart nginx\"",
                    at: item
                )
                return nil
            } catch {
                parser.report("\(label): \(error.description)", at: item)
                return nil
            }
            return line
        }
    }

    /// Spaces, tabs and line breaks around a value.
    static func trimmed(_ s: String) -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" }
        guard let first = s.firstIndex(where: { !isSpace($0) }), let last = s.lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(s[first...last])
    }

    /// `requesters:`, `approvers:` or `requester_in:`. Every policy group named must be defined.
    /// Empty is returned as such; the caller decides whether that is allowed.
    mutating func principals(
        _ fields: Fields,
        _ name: String,
        in place: String,
        groups: Groups
    ) -> Located<Principals>? {
        guard let node = fields[name] else { return nil }
        let innerPlace = "in the \(name) of \(place.dropFirst(3))"
        guard
            let inner = self.fields(
                node,
                named: name,
                in: place,
                at: fields.position(of: name),
                keysIn: innerPlace,
                known: Self.principalKeys,
                example: "{users: [alice], unix_groups: [ops], groups: [sre]}"
            )
        else { return nil }
        let users = words(inner, "users", in: innerPlace, example: "[alice, bob]")
        let unixGroups = words(inner, "unix_groups", in: innerPlace, example: "[ops]")
        let policyGroups = words(inner, "groups", in: innerPlace, example: "[sre]")
        var valid =
            (users != nil || inner["users"] == nil)
            && (unixGroups != nil || inner["unix_groups"] == nil)
            && (policyGroups != nil || inner["groups"] == nil)
        for group in policyGroups ?? [] where groups[group.value] == nil {
            var message =
                "policy group '\(LogText.escape(group.value, limit: 60))' \(innerPlace) is not defined under 'groups'"
            if let near = EditDistance.closest(to: group.value, in: groups.keys.sorted()) {
                message += " — did you mean '\(near)'?"
            } else {
                message += ": define it there, or use unix_groups for a Unix group"
            }
            report(message, at: group.position)
            valid = false
        }
        guard valid else { return nil }
        // `{user: [alice]}`: the misspelt key was reported; "names nobody" would be the same mistake again.
        if inner.hasUnknownKeys && users == nil && unixGroups == nil && policyGroups == nil { return nil }
        let principals = Principals(
            users: users?.map(\.value) ?? [],
            unixGroups: unixGroups?.map(\.value) ?? [],
            groups: policyGroups?.map(\.value) ?? []
        )
        return Located(value: principals, position: inner.position)
    }

    /// One item of `auto_approve:`.
    mutating func autoRule(
        _ node: Node,
        flowPlace: String,
        groups: Groups,
        flowMax: Int64
    ) -> (name: Located<String>?, rule: AutoRule?) {
        guard case .mapping = node else {
            report(
                "an auto_approve rule \(flowPlace) must be a mapping starting with 'name:'\(Self.found(node))",
                at: node
            )
            return (nil, nil)
        }
        let place =
            Self.scalar("name", in: node).map {
                "in auto_approve rule \(LogText.escape($0, limit: 60)) of \(flowPlace.dropFirst(3))"
            } ?? "in an auto_approve rule \(flowPlace.dropFirst(3))"
        guard
            let fields = fields(
                node,
                named: "auto_approve rule",
                in: place,
                at: Position(node),
                known: Self.ruleKeys,
                example: "{name: nights, requester_in: {groups: [sre]}, max_duration: 1h}"
            )
        else { return (nil, nil) }
        var valid = true
        let name = text(fields, "name", in: place)
        if name == nil {
            if fields["name"] == nil {
                reportMissing("name", in: fields, "an auto_approve rule \(flowPlace) has no 'name'")
            }
            valid = false
        }
        let requesterIn = principals(fields, "requester_in", in: place, groups: groups)
        if let requesterIn, requesterIn.value.isEmpty {
            report("'requester_in' \(place) names nobody: list users, unix_groups or groups", at: requesterIn.position)
            valid = false
        } else if requesterIn == nil && fields["requester_in"] != nil {
            valid = false
        }
        let condition = condition(fields, in: place)
        if fields["when"] != nil && condition == nil { valid = false }
        // A rule with no test at all would approve every request of the flow: say so on purpose.
        if fields["requester_in"] == nil && fields["window"] == nil && fields["when"] == nil
            && !fields.misspelt.contains("requester_in") && !fields.misspelt.contains("when")
        {
            report(
                "\(place.dropFirst(3)) needs requester_in, window or when — say whose requests it approves, "
                    + "e.g. requester_in: {groups: [sre]} (write when: 'true' to approve every request)",
                at: fields.position
            )
            valid = false
        }
        var window: TimeWindow? = nil
        if let node = fields["window"] {
            window = timeWindow(node, position: fields.position(of: "window"), in: place)
            if window == nil { valid = false }
        }
        var maxDuration = flowMax
        if fields["max_duration"] != nil {
            if let max = duration(fields, "max_duration", in: place) {
                if max.value > flowMax {
                    report(
                        "'max_duration' \(place) is \(DurationText.format(max.value)), over the flow's max "
                            + "\(DurationText.format(flowMax)): a rule cannot grant longer than its flow",
                        at: max.position
                    )
                    valid = false
                }
                maxDuration = max.value
            } else {
                valid = false
            }
        }
        guard valid, let name else { return (name, nil) }
        return (
            name,
            AutoRule(
                name: name.value,
                requesterIn: requesterIn?.value,
                window: window,
                condition: condition?.value,
                maxDuration: maxDuration
            )
        )
    }

    /// `window: {days: [mon, fri], from: "22:00", to: "06:00", tz: "+02:00"}`.
    mutating func timeWindow(_ node: Node, position: Position, in rulePlace: String) -> TimeWindow? {
        let place = "in the window of \(rulePlace.dropFirst(3))"
        guard
            let fields = fields(
                node,
                named: "window",
                in: rulePlace,
                at: position,
                keysIn: place,
                known: Self.windowKeys,
                example: "{days: [mon, tue], from: \"08:00\", to: \"18:00\", tz: UTC}"
            )
        else { return nil }
        var valid = true

        var days = Set(0..<7)
        if let node = fields["days"] {
            let parsed = items(
                node,
                position: fields.position(of: "days"),
                name: "days",
                in: place,
                example: "[mon, tue, wed, thu, fri]",
                allowEmpty: false
            ) { parser, item, label -> Int? in
                guard let word = parser.word(item, label: label) else { return nil }
                let lower = word.value.lowercased()
                if let day = Self.dayNames.firstIndex(of: lower) ?? Self.fullDayNames.firstIndex(of: lower) {
                    return day
                }
                var message = "\(label): '\(LogText.escape(word.value, limit: 60))' is not a day"
                if let near = EditDistance.closest(to: lower, in: Self.dayNames + Self.fullDayNames) {
                    message += " — did you mean '\(near)'?"
                } else {
                    message += ": use sun, mon, tue, wed, thu, fri, sat"
                }
                parser.report(message, at: item)
                return nil
            }
            if let parsed { days = Set(parsed) } else { valid = false }
        }

        let from = clockTime(fields, "from", in: place, allowEndOfDay: false)
        let to = clockTime(fields, "to", in: place, allowEndOfDay: true)
        if from == nil || to == nil { valid = false }
        if let from, let to, from.value == to.value {
            report(
                "'from' and 'to' \(place) are the same time, so the window is empty: "
                    + "use from: \"00:00\" and to: \"24:00\" for the whole day",
                at: to.position
            )
            valid = false
        }

        var offset = 0
        if fields["tz"] != nil {
            if let tz = text(fields, "tz", in: place) {
                if let seconds = Self.utcOffset(tz.value) {
                    offset = seconds
                } else {
                    report(
                        "'tz' \(place) is '\(LogText.escape(tz.value, limit: 60))': only UTC or a fixed offset such as "
                            + "+02:00 or -05:30 is supported (named zones and daylight saving time are not)",
                        at: tz.position
                    )
                    valid = false
                }
            } else {
                valid = false
            }
        }
        guard valid, let from, let to else { return nil }
        return TimeWindow(days: days, fromMinute: from.value, toMinute: to.value, utcOffsetSeconds: offset)
    }

    /// `HH:MM` (24-hour) as minutes after midnight; `24:00` (1440) only where a window ends.
    mutating func clockTime(_ fields: Fields, _ name: String, in place: String, allowEndOfDay: Bool) -> Located<Int>? {
        guard fields[name] != nil else {
            reportMissing(name, in: fields, "'\(name)' is missing \(place): give a time such as \"08:00\"")
            return nil
        }
        guard let text = text(fields, name, in: place) else { return nil }
        if let minutes = Self.minutes(text.value), minutes < 1440 || (allowEndOfDay && minutes == 1440) {
            return Located(value: minutes, position: text.position)
        }
        report(
            "'\(name)' \(place) is '\(LogText.escape(text.value, limit: 60))', not a time: use 24-hour HH:MM, "
                + "e.g. \"08:00\" or \"17:30\"\(allowEndOfDay ? " (\"24:00\" for midnight at the end)" : "")",
            at: text.position
        )
        return nil
    }

    /// `H:MM` or `HH:MM`, hours up to 24 and only 24:00 past 23:59.
    static func minutes(_ text: String) -> Int? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, (1...2).contains(parts[0].count), parts[1].count == 2,
            parts.allSatisfy({ $0.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } }),
            let h = Int(parts[0]), let m = Int(parts[1]), m < 60, h < 24 || (h == 24 && m == 0)
        else { return nil }
        return h * 60 + m
    }

    /// `UTC`, `Z`, `+HH:MM` or `-HH:MM` as seconds east of UTC.
    static func utcOffset(_ text: String) -> Int? {
        if text == "UTC" || text == "Z" { return 0 }
        guard let sign = text.first, sign == "+" || sign == "-", let minutes = minutes(String(text.dropFirst())),
            text.count == 6, minutes <= 14 * 60
        else { return nil }
        return (sign == "-" ? -1 : 1) * minutes * 60
    }
}
