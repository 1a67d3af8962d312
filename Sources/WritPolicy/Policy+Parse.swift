import WritCore
import WritExpr
import Yams

extension Policy {
    /// Parses and checks a policy.
    ///
    /// - Parameters:
    ///   - text: the YAML text.
    ///   - file: the name issues carry (the path, for `file:line:column` messages).
    /// - Throws: every problem found, sorted by position. A YAML syntax error stops parsing, so
    ///   it comes alone; all other problems are collected.
    public static func parse(_ text: String, file: String) throws(PolicyErrors) -> Policy {
        var parser = PolicyParser(file: file)
        let policy = parser.policy(from: text)
        guard !parser.hasIssues, let policy else {
            if !parser.hasIssues {
                // The parser reports every reason it returns nil; this keeps that promise checked.
                parser.report("the policy could not be read", at: .start)
            }
            throw PolicyErrors(issues: parser.issues)
        }
        return policy
    }
}

/// The flow keys `defaults:` may set too. A flow's own value wins, key by key (and inside
/// `duration` and `reason`, field by field).
struct FlowSettings {
    var hosts: Located<[String]>?
    var runas: Located<String>?
    var approvals: Located<Int>?
    var selfApproval: Located<Bool>?
    var defaultDuration: Located<Int64>?
    var maxDuration: Located<Int64>?
    var reasonRequired: Located<Bool>?
    var reasonPattern: Located<String>?
    var reasonExample: Located<String>?
    var pendingTimeout: Located<Int64>?
    var warnBefore: Located<Int64>?

    static let keys = [
        "hosts", "runas", "approvals", "self_approval", "duration", "reason", "pending_timeout", "warn_before",
    ]

    /// These settings with `own`'s wherever it has one.
    func overridden(by own: FlowSettings) -> FlowSettings {
        FlowSettings(
            hosts: own.hosts ?? hosts,
            runas: own.runas ?? runas,
            approvals: own.approvals ?? approvals,
            selfApproval: own.selfApproval ?? selfApproval,
            defaultDuration: own.defaultDuration ?? defaultDuration,
            maxDuration: own.maxDuration ?? maxDuration,
            reasonRequired: own.reasonRequired ?? reasonRequired,
            reasonPattern: own.reasonPattern ?? reasonPattern,
            reasonExample: own.reasonExample ?? reasonExample,
            pendingTimeout: own.pendingTimeout ?? pendingTimeout,
            warnBefore: own.warnBefore ?? warnBefore
        )
    }

    /// The same settings, remembered as coming from `defaults:`.
    func markedAsDefaults() -> FlowSettings {
        func mark<T>(_ v: Located<T>?) -> Located<T>? {
            v.map { Located(value: $0.value, position: $0.position, fromDefaults: true) }
        }
        return FlowSettings(
            hosts: mark(hosts),
            runas: mark(runas),
            approvals: mark(approvals),
            selfApproval: mark(selfApproval),
            defaultDuration: mark(defaultDuration),
            maxDuration: mark(maxDuration),
            reasonRequired: mark(reasonRequired),
            reasonPattern: mark(reasonPattern),
            reasonExample: mark(reasonExample),
            pendingTimeout: mark(pendingTimeout),
            warnBefore: mark(warnBefore)
        )
    }
}

extension PolicyParser {
    static let topLevelKeys = ["version", "groups", "defaults", "timezone", "hook_user", "flows"]

    /// The whole policy, or nil when something is wrong (and then reported).
    mutating func policy(from text: String) -> Policy? {
        lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard let root = compose(text) else { return nil }
        let place = "at the top level"
        guard case .mapping = root else {
            report(
                "the policy must be a mapping of version, groups, defaults and flows, not \(Self.kind(root)): "
                    + "start with 'version: 1'",
                at: root
            )
            return nil
        }
        guard
            let top = fields(
                root,
                named: "policy",
                in: place,
                at: Position(root),
                known: Self.topLevelKeys,
                example: "version: 1"
            )
        else { return nil }

        if let version = top["version"] {
            // 1 is the only version so far; a newer file must not be half-understood.
            if version.scalar?.string != "1" {
                report(
                    "'version' must be 1\(Self.found(version)): this Writ reads version 1 policies",
                    at: top.position(of: "version")
                )
            }
        } else {
            reportMissing("version", in: top, "'version: 1' is missing at the top level: add it as the first line")
        }

        let groups = top["groups"].flatMap { policyGroups($0, position: top.position(of: "groups")) } ?? [:]

        var defaults = FlowSettings()
        if let node = top["defaults"],
            let fields = fields(
                node,
                named: "defaults",
                in: place,
                at: top.position(of: "defaults"),
                keysIn: "in defaults",
                known: FlowSettings.keys,
                example: "{pending_timeout: 1h}"
            )
        {
            defaults = settings(fields, in: "in defaults").markedAsDefaults()
        }

        var utcOffset = 0
        if top["timezone"] != nil, let tz = self.text(top, "timezone", in: place) {
            if let seconds = Self.utcOffset(tz.value) {
                utcOffset = seconds
            } else {
                report(
                    "'timezone' is '\(LogText.escape(tz.value, limit: 60))': only UTC or a fixed offset such as +02:00 "
                        + "or -05:30 is supported (named zones and daylight saving time are not)",
                    at: tz.position
                )
            }
        }
        var hookUser = Policy.builtInHookUser
        if top["hook_user"] != nil, let user = word(top["hook_user"]!, label: "'hook_user'") {
            if user.value == "root" {
                report(
                    "'hook_user' must not be root: hooks read what requesters typed — name an unprivileged account of their own, such as writ-hook",
                    at: user.position
                )
            }
            hookUser = user.value
        }

        guard let flowsNode = top["flows"] else {
            reportMissing("flows", in: top, "'flows' is missing at the top level: a policy needs at least one flow")
            return nil
        }
        guard case .sequence(let flowNodes) = flowsNode else {
            report(
                "'flows' at the top level must be a list of flows (each item starting with '- name:')\(Self.found(flowsNode))",
                at: top.position(of: "flows")
            )
            return nil
        }
        if flowNodes.isEmpty {
            report("'flows' is an empty list: with no flows nobody can request anything — add a flow", at: flowsNode)
            return nil
        }

        var flows: [Flow] = []
        var firstByName: [String: Position] = [:]
        var allValid = true
        for (i, node) in flowNodes.enumerated() {
            let parsed = flow(node, number: i + 1, groups: groups, defaults: defaults)
            if let name = parsed.name {
                if let first = firstByName[name.value] {
                    report(
                        "flow name '\(LogText.escape(name.value, limit: 60))' is already used by the flow at line \(first.line): flow names must be unique",
                        at: name.position
                    )
                    allValid = false
                } else {
                    firstByName[name.value] = name.position
                }
            }
            if let f = parsed.flow { flows.append(f) } else { allValid = false }
        }
        // Anyone running as the hook user can read a running hook's input and environment and
        // answer in its place: nobody who requests or approves may be that user.
        if let node = top["hook_user"],
            flows.contains(where: { flow in
                flow.requesters.users.contains(hookUser)
                    || flow.steps.contains { $0.approvers.users.contains(hookUser) }
            })
        {
            report(
                "'hook_user' \(LogText.escape(hookUser, limit: 60)) requests or approves in a flow: hooks must run as an account "
                    + "nobody uses — create one (useradd --system writ-hook)",
                at: node
            )
        }
        guard allValid, !hasIssues else { return nil }
        return Policy(
            groups: groups.mapValues { $0.map(\.value) },
            flows: flows,
            timeZoneOffset: utcOffset,
            hookUser: hookUser
        )
    }

    /// The root node, or nil after reporting a YAML error at the position libyaml gives.
    mutating func compose(_ text: String) -> Node? {
        let root: Node?
        do {
            // The basic resolver leaves every scalar untyped: this parser reads each value as the
            // type its key needs, and typing them all up front would cost a regex per scalar.
            root = try Yams.compose(yaml: text, .basic)
        } catch let error as YamlError {
            reportYAML(error, text: text)
            return nil
        } catch {
            report("the YAML could not be read: \(error)", at: .start)
            return nil
        }
        guard let root, !Self.isNull(root) else {
            report("the policy is empty: start with 'version: 1' and a 'flows:' list", at: .start)
            return nil
        }
        return root
    }

    private mutating func reportYAML(_ error: YamlError, text: String) {
        func context(_ c: YamlError.Context?) -> String {
            guard let c else { return "" }
            return " (\(c.text) at line \(c.mark.line), column \(c.mark.column))"
        }
        switch error {
        case .scanner(let c, let problem, let mark, _), .parser(let c, let problem, let mark, _),
            .composer(let c, let problem, let mark, _):
            var message = "YAML syntax error: \(problem)\(context(c))"
            if Self.character(atLine: mark.line, column: mark.column, in: text) == "\t" {
                message += " — YAML does not allow tabs for indentation: use spaces"
            }
            report(message, at: Position(line: mark.line, column: mark.column))
        case .reader(let problem, let offset, _, _):
            report("YAML cannot read the text: \(problem)", at: Self.position(ofCharacter: offset ?? 0, in: text))
        case .duplicatedKeysInMapping(let duplicates, let c):
            let keys = duplicates.map { "'\(LogText.escape($0, limit: 60))'" }.joined(separator: ", ")
            report(
                "key \(keys) appears more than once in the same mapping: YAML would keep only one — remove or rename the others",
                at: Position(line: c.mark.line, column: c.mark.column)
            )
        default:
            report("the YAML could not be read: \(error)", at: .start)
        }
    }

    /// The Unicode scalar at a 1-based line and column, if there is one.
    static func character(atLine line: Int, column: Int, in text: String) -> Unicode.Scalar? {
        var l = 1
        var c = 1
        for scalar in text.unicodeScalars {
            if l == line && c == column { return scalar }
            if scalar == "\n" {
                if l == line { return nil }
                l += 1
                c = 1
            } else {
                c += 1
            }
        }
        return nil
    }

    /// The line and column of the `offset`th character (how Yams counts reader errors).
    static func position(ofCharacter offset: Int, in text: String) -> Position {
        var line = 1
        var column = 1
        for (i, c) in text.enumerated() {
            if i >= offset { break }
            if c == "\n" || c == "\r\n" {
                line += 1
                column = 1
            } else {
                column += c.unicodeScalars.count
            }
        }
        return Position(line: line, column: column)
    }

    /// `groups:`: group name → users, each user with its position.
    mutating func policyGroups(_ node: Node, position: Position) -> [String: [Located<String>]]? {
        guard case .mapping(let mapping) = node else {
            report(
                "'groups' at the top level must be a mapping of group name to users, e.g. {sre: [alice, bob]}\(Self.found(node))",
                at: position
            )
            return nil
        }
        var groups: [String: [Located<String>]] = [:]
        for (key, value) in mapping {
            guard let name = word(key, label: "a group name in 'groups'") else { continue }
            let members = items(
                value,
                position: Self.isNull(value) ? Position(key) : Position(value),
                name: name.value,
                in: "in groups",
                example: "[alice, bob]",
                allowEmpty: true
            ) { parser, item, label in parser.word(item, label: label) }
            // A group with a bad member is still defined: flows that name it should not also get
            // "undefined group" errors for a mistake reported once already.
            groups[name.value] = members ?? []
        }
        return groups
    }

    /// One host glob of a list (`hosts:`, `approve_from_hosts:`).
    static func hostGlob(_ parser: inout PolicyParser, _ item: Node, _ label: String) -> Located<String>? {
        guard let host = parser.word(item, label: label) else { return nil }
        // The CLI and the modules compare host globs as ASCII bytes.
        guard host.value.utf8.allSatisfy({ $0 < 0x80 }) else {
            parser.report(
                "\(label) is '\(LogText.escape(host.value, limit: 60))': host patterns must be ASCII",
                at: item
            )
            return nil
        }
        return host
    }

    /// The keys flows and `defaults:` share.
    mutating func settings(_ fields: Fields, in place: String) -> FlowSettings {
        var s = FlowSettings()
        if let node = fields["hosts"] {
            let hosts = items(
                node,
                position: fields.position(of: "hosts"),
                name: "hosts",
                in: place,
                example: "[\"web-*\", db-01]",
                allowEmpty: false,
                item: Self.hostGlob
            )
            if let hosts { s.hosts = Located(value: hosts.map(\.value), position: fields.position(of: "hosts")) }
        }
        if let node = fields["runas"],
            let runas = word(node, label: "'runas' \(place)", position: fields.position(of: "runas"))
        {
            s.runas = runas
        }
        if let approvals = integer(fields, "approvals", in: place) {
            if approvals.value < 1 {
                report("'approvals' \(place) must be at least 1, not \(approvals.value)", at: approvals.position)
            } else {
                s.approvals = approvals
            }
        }
        s.selfApproval = bool(fields, "self_approval", in: place)
        let durationPlace = "in the duration of \(place.dropFirst(3))"
        if let node = fields["duration"],
            let duration = self.fields(
                node,
                named: "duration",
                in: place,
                at: fields.position(of: "duration"),
                keysIn: durationPlace,
                known: ["default", "max"],
                example: "{default: 30m, max: 2h}"
            )
        {
            s.defaultDuration = self.duration(duration, "default", in: durationPlace)
            s.maxDuration = self.duration(duration, "max", in: durationPlace)
            if let d = s.defaultDuration, let m = s.maxDuration, d.value > m.value {
                report(Self.defaultOverMax(d.value, m.value, place: place), at: d.position)
            }
        }
        let inner = "in the reason of \(place.dropFirst(3))"
        if let node = fields["reason"],
            let reason = self.fields(
                node,
                named: "reason",
                in: place,
                at: fields.position(of: "reason"),
                keysIn: inner,
                known: ["required", "pattern", "example"],
                example: "{required: true, pattern: \"^INC-[0-9]+\"}"
            )
        {
            s.reasonRequired = bool(reason, "required", in: inner)
            if let pattern = text(reason, "pattern", in: inner) {
                if let problem = Self.regexProblem(pattern.value) {
                    report("'pattern' \(inner) is not a valid regular expression: \(problem)", at: pattern.position)
                } else {
                    s.reasonPattern = pattern
                }
            }
            s.reasonExample = text(reason, "example", in: inner)
            checkExample(s, place: place, mixedOnly: false)
        }
        s.pendingTimeout = duration(fields, "pending_timeout", in: place)
        s.warnBefore = duration(fields, "warn_before", in: place, minimum: 0)
        return s
    }

    static func defaultOverMax(_ d: Int64, _ m: Int64, place: String) -> String {
        "the default duration \(DurationText.format(d)) \(place) is over its max \(DurationText.format(m)): "
            + "lower the default or raise the max"
    }

    /// Reports an example reason that its own pattern refuses. With `mixedOnly`, only when one of
    /// the two comes from `defaults:` and the other from the flow: the other cases were reported
    /// where both were written.
    mutating func checkExample(_ s: FlowSettings, place: String, mixedOnly: Bool) {
        guard let example = s.reasonExample, let pattern = s.reasonPattern else { return }
        if mixedOnly && example.fromDefaults == pattern.fromDefaults { return }
        if !Self.reason(example.value, matches: pattern.value) {
            report(
                "the example reason \(place) does not match the pattern \(pattern.value): fix one of them",
                at: example.fromDefaults ? pattern.position : example.position
            )
        }
    }

    /// Why `pattern` does not compile, or nil when it does. Reason patterns use the linear-time
    /// engine of conditions (WritExpr's `LinearRegex`): a requester's reason can never make
    /// matching slow, whatever the pattern.
    static func regexProblem(_ pattern: String) -> String? {
        do throws(ExprError) {
            _ = try LinearRegex(pattern)
            return nil
        } catch {
            return "\(error.message) (at character \(error.offset + 1) of the pattern)"
        }
    }

    /// Whether `reason` contains a match of `pattern` (anchor with `^` to require a prefix). A
    /// pattern that does not compile matches nothing.
    static func reason(_ reason: String, matches pattern: String) -> Bool {
        (try? LinearRegex(pattern))?.firstMatch(in: reason) ?? false
    }
}
