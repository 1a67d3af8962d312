import WritCore
import WritExpr
import Yams

/// `writ policy test`: test cases kept next to a policy (docs/policy-tests.md). Each case is a
/// request with everything the decision depends on — the requester's Unix groups, who is in the
/// approvers' Unix groups, the time, integration context, the on_request hook's answer — and the
/// outcome expected.
public struct PolicyCases: Sendable {
    public var file: String
    public var cases: [Case]
    /// Unix group → members, as the cases assume them (the host's groups are not consulted, so a
    /// case means the same in CI as on a host).
    public var unixGroups: [String: [String]]

    public struct Case: Sendable {
        public var name: String
        /// `file:line` of the case, for failure lines.
        public var place: String
        public var input: RequestInput
        /// The on_request hook's answer; nil runs the hook for real.
        public var hookAnswer: HookVerdict?
        public var expect: Expectation
    }

    /// What the case expects; nil fields are not checked.
    public struct Expectation: Sendable, Equatable {
        /// approved | denied | refused | pending
        public var outcome: String
        /// "auto_approve rule x", "auto_deny rule y", "hook on_request": what decided without people.
        public var by: String?
        public var flow: String?
        public var duration: Int64?
        /// Text the refusal or denial message must contain.
        public var message: String?
        /// pending: the route, step by step.
        public var steps: [StepExpectation]?
    }

    public struct StepExpectation: Sendable, Equatable {
        public var name: String?
        public var approvers: [String]?
        public var approvals: Int?
    }

    /// The outcome a policy gives a case.
    public struct Result: Sendable, Equatable {
        public var outcome: String
        public var by: String?
        public var flow: String?
        public var duration: Int64?
        public var message: String?
        public var steps: [(name: String, approvers: [String], approvals: Int)]
        /// Conditions that failed to evaluate (each treated as not deciding).
        public var conditionErrors: [String]
        /// How the hook's answer was obtained: "given by the case", "ran /path: …".
        public var hookNote: String?

        public static func == (a: Result, b: Result) -> Bool {
            a.outcome == b.outcome && a.by == b.by && a.flow == b.flow && a.duration == b.duration
                && a.message == b.message && a.steps.elementsEqual(b.steps, by: { $0 == $1 })
        }

        /// One line: "approved by auto_approve rule x for 30m (flow ops-sudo)".
        public var summary: String {
            var text = outcome
            if let by { text += " by \(by)" }
            if let duration, outcome == "approved" { text += " for \(DurationText.format(duration))" }
            if let flow { text += " (flow \(flow))" }
            if outcome == "pending" {
                text +=
                    " — "
                    + steps.map { "\($0.name): \($0.approvers.joined(separator: ",")) (\($0.approvals))" }
                    .joined(separator: "; ")
            }
            if let message, outcome != "approved" { text += ": \(message)" }
            return text
        }
    }

    /// The file next to a policy where its cases live: `policy.yaml` → `policy.tests.yaml`.
    public static func defaultPath(forPolicy path: String) -> String {
        for ext in [".yaml", ".yml"] where path.hasSuffix(ext) {
            return String(path.dropLast(ext.count)) + ".tests.yaml"
        }
        return path + ".tests.yaml"
    }

    /// Decides `c` under `policy`. `runHook` answers for the on_request hook when the case gives
    /// no answer.
    public func run(
        _ c: Case,
        policy: Policy,
        runHook: (HookSpec, RequestInput, Evaluation) -> (HookVerdict, String)
    ) -> Result {
        let members = unixGroups
        let membersOf: (String) -> [String] = { members[$0] ?? [] }
        switch policy.evaluate(c.input) {
        case .failure(let refusal):
            return Result(outcome: "refused", message: refusal.description, steps: [], conditionErrors: [])
        case .success(let e):
            var result = Result(
                outcome: "pending",
                flow: e.flow.name,
                duration: e.duration,
                steps: e.steps.map {
                    ($0.name, policy.users($0.approvers, membersOf: membersOf).sorted(), $0.approvals)
                },
                conditionErrors: e.conditionErrors
            )
            switch e.outcome {
            case .autoApproved(let rule, let duration):
                result.outcome = "approved"
                result.by = "auto_approve rule \(rule)"
                result.duration = duration
            case .autoDenied(let rule, let message):
                result.outcome = "denied"
                result.by = "auto_deny rule \(rule)"
                result.message = message
            case .hook(let hook):
                let verdict: HookVerdict
                if let given = c.hookAnswer {
                    verdict = given
                    result.hookNote = "hook answer given by the case"
                } else {
                    let (v, note) = runHook(hook, c.input, e)
                    verdict = v
                    result.hookNote = note
                }
                switch e.resolve(verdict) {
                case .approved(let duration, let reason):
                    result.outcome = "approved"
                    result.by = "hook on_request"
                    result.duration = duration
                    result.message = reason
                case .denied(let reason):
                    result.outcome = "denied"
                    result.by = "hook on_request"
                    result.message = reason
                case .people(let add):
                    if !add.isEmpty, !result.steps.isEmpty {
                        let names = Set(result.steps[0].approvers).union(add.filter { $0 != c.input.user })
                        result.steps[0].approvers = names.sorted()
                    }
                }
            case .people:
                break
            }
            return result
        }
    }

    /// Why `result` does not meet `c`'s expectation, one line per mismatch; empty when it does.
    public static func mismatches(_ c: Case, _ result: Result) -> [String] {
        let want = c.expect
        var out: [String] = []
        if want.outcome != result.outcome {
            out.append("expected \(want.outcome), got \(result.summary)")
            return out
        }
        if let by = want.by, by != result.by { out.append("expected by \(by), got by \(result.by ?? "people")") }
        if let flow = want.flow, flow != result.flow {
            out.append("expected flow \(flow), got \(result.flow ?? "none")")
        }
        if let d = want.duration, d != result.duration {
            out.append(
                "expected duration \(DurationText.format(d)), got \(result.duration.map(DurationText.format) ?? "none")"
            )
        }
        if let m = want.message, !(result.message ?? "").contains(m) {
            out.append("expected a message containing \"\(m)\", got \"\(result.message ?? "")\"")
        }
        if let steps = want.steps {
            if steps.count != result.steps.count {
                out.append(
                    "expected \(steps.count) approval step(s), got \(result.steps.count): "
                        + result.steps.map(\.name).joined(separator: ", ")
                )
            } else {
                for (i, (w, g)) in zip(steps, result.steps).enumerated() {
                    if let n = w.name, n != g.name { out.append("step \(i + 1): expected name \(n), got \(g.name)") }
                    if let a = w.approvers, a.sorted() != g.approvers {
                        out.append(
                            "step \(g.name): expected approvers \(a.sorted().joined(separator: ",")), got \(g.approvers.joined(separator: ","))"
                        )
                    }
                    if let n = w.approvals, n != g.approvals {
                        out.append("step \(g.name): expected \(n) approval(s), got \(g.approvals)")
                    }
                }
            }
        }
        return out
    }
}

// MARK: - Reading the cases file

extension PolicyCases {
    /// Reads a cases file; every problem is reported as `file:line:column`.
    public static func parse(_ text: String, file: String) throws(PolicyErrors) -> PolicyCases {
        var parser = PolicyParser(file: file)
        let cases = parser.cases(from: text)
        guard !parser.hasIssues, let cases else {
            if !parser.hasIssues { parser.report("the test cases could not be read", at: .start) }
            throw PolicyErrors(issues: parser.issues)
        }
        return cases
    }

    public static func load(path: String) throws(PolicyErrors) -> PolicyCases {
        let bytes = try Policy.contents(of: path)
        return try parse(String(decoding: bytes, as: UTF8.self), file: path)
    }
}

extension PolicyParser {
    static let caseFileKeys = ["version", "unix_groups", "defaults", "cases"]
    static let caseKeys = ["name", "request", "groups", "time", "context", "hooks", "expect"]
    static let caseDefaultKeys = ["request", "groups", "time", "context"]
    static let caseRequestKeys = [
        "user", "capability", "flow", "host", "runas", "commands", "duration", "reason", "fields", "kind",
    ]
    static let expectKeys = ["outcome", "by", "rule", "flow", "duration", "message", "approvers", "approvals", "steps"]
    static let outcomes = ["approved", "denied", "refused", "pending"]

    mutating func cases(from text: String) -> PolicyCases? {
        lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard let root = compose(text) else { return nil }
        guard
            let top = fields(
                root,
                named: "test cases",
                in: "at the top level",
                at: Position(root),
                known: Self.caseFileKeys,
                example: "{version: 1, cases: [...]}"
            )
        else { return nil }
        if let v = top["version"], v.scalar?.string != "1" {
            report("'version' must be 1\(Self.found(v))", at: top.position(of: "version"))
        }
        var unixGroups: [String: [String]] = [:]
        if let node = top["unix_groups"] {
            if case .mapping(let m) = node {
                for (k, v) in m {
                    guard let name = word(k, label: "a group name in 'unix_groups'") else { continue }
                    let members = items(
                        v,
                        position: Position(v),
                        name: name.value,
                        in: "in unix_groups",
                        example: "[alice, bob]",
                        allowEmpty: true
                    ) { p, item, label in p.word(item, label: label) }
                    unixGroups[name.value] = members?.map(\.value) ?? []
                }
            } else {
                report("'unix_groups' must be a mapping of group to members\(Self.found(node))", at: node)
            }
        }
        var defaults: Fields? = nil
        if let node = top["defaults"] {
            defaults = fields(
                node,
                named: "defaults",
                in: "at the top level",
                at: top.position(of: "defaults"),
                keysIn: "in defaults",
                known: Self.caseDefaultKeys,
                example: "{request: {host: web-01}, time: \"2026-11-25T10:00:00Z\"}"
            )
        }
        guard case .sequence(let list)? = top["cases"], !list.isEmpty else {
            report(
                "'cases' must be a non-empty list of cases, each starting with '- name:'",
                at: top.position(of: "cases")
            )
            return nil
        }
        var out: [PolicyCases.Case] = []
        for (i, node) in list.enumerated() {
            if let c = testCase(node, number: i + 1, defaults: defaults, unixGroups: unixGroups) { out.append(c) }
        }
        return hasIssues ? nil : PolicyCases(file: file, cases: out, unixGroups: unixGroups)
    }

    /// One case; `defaults` fills in request fields, groups, time and context it leaves out.
    mutating func testCase(
        _ node: Node,
        number: Int,
        defaults: Fields?,
        unixGroups: [String: [String]]
    ) -> PolicyCases.Case? {
        let place =
            Self.scalar("name", in: node).map { "in case \(LogText.escape($0, limit: 60))" } ?? "in case \(number)"
        guard
            let f = fields(
                node,
                named: "case",
                in: place,
                at: Position(node),
                known: Self.caseKeys,
                example: "{name: …, request: {user: alice, capability: sudo, …}, expect: {outcome: approved}}"
            )
        else { return nil }
        let name = text(f, "name", in: place)
        if name == nil && f["name"] == nil { reportMissing("name", in: f, "case \(number) has no 'name'") }

        // The request: the case's keys over the defaults' keys.
        var request: [String: Node] = [:]
        var requestPositions: [String: Position] = [:]
        for source in [defaults?["request"], f["request"]] {
            guard let source else { continue }
            guard
                let r = fields(
                    source,
                    named: "request",
                    in: place,
                    at: Position(source),
                    known: Self.caseRequestKeys,
                    example: "{user: alice, capability: sudo, duration: 30m, reason: \"INC-1\"}"
                )
            else { continue }
            for key in Self.caseRequestKeys where r[key] != nil {
                request[key] = r[key]
                requestPositions[key] = r.position(of: key)
            }
        }
        var rf = Fields(position: f.position(of: "request"))
        for (k, v) in request { rf.setForCases(k, value: v) }
        let rplace = "in the request of case \(name.map { LogText.escape($0.value, limit: 60) } ?? String(number))"
        let user = text(rf, "user", in: rplace)
        if user == nil && request["user"] == nil { report("'user' is missing \(rplace)", at: rf.position) }
        var capability: Capability? = nil
        if let c = text(rf, "capability", in: rplace) {
            capability = Capability(rawValue: c.value)
            if capability == nil { report("'capability' \(rplace) must be sudo or login", at: c.position) }
        } else if request["capability"] == nil {
            report("'capability' is missing \(rplace): sudo or login", at: rf.position)
        }
        let flow = text(rf, "flow", in: rplace)
        let host = text(rf, "host", in: rplace)?.value ?? "localhost"
        let runas = text(rf, "runas", in: rplace)?.value
        var commands: [String]? = nil
        if let node = request["commands"] {
            commands = items(
                node,
                position: Position(node),
                name: "commands",
                in: rplace,
                example: "[\"/usr/bin/id\"]",
                allowEmpty: true
            ) { p, item, label -> String? in
                guard case .scalar(let s) = item else {
                    p.report("\(label) must be a command line", at: item)
                    return nil
                }
                return s.string
            }
        }
        let duration = request["duration"] != nil ? self.duration(rf, "duration", in: rplace)?.value : nil
        let reason: String
        if case .scalar(let s)? = request["reason"] { reason = s.string } else { reason = "" }
        var requestFields: [String: String] = [:]
        if let node = request["fields"] {
            if case .mapping(let m) = node {
                for (k, v) in m { if let ks = k.scalar?.string, let vs = v.scalar?.string { requestFields[ks] = vs } }
            } else {
                report("'fields' \(rplace) must be a mapping of name: value", at: node)
            }
        }
        let kind = text(rf, "kind", in: rplace)?.value ?? "grant"

        // Groups, time, context: the case's, else the defaults'.
        func pick(_ key: String) -> Node? { f[key] ?? defaults?[key] }
        var groups: Set<String>
        if let g = pick("groups") {
            let list = items(
                g,
                position: Position(g),
                name: "groups",
                in: place,
                example: "[sre, ops]",
                allowEmpty: true
            ) {
                p,
                item,
                label in p.word(item, label: label)
            }
            groups = Set(list?.map(\.value) ?? [])
        } else {
            // The requester's groups from unix_groups.
            groups = Set(unixGroups.filter { $0.value.contains(user?.value ?? "") }.map(\.key))
        }
        var now: Int64 = 1_764_072_000  // 2025-11-25T12:00:00Z: a fixed default keeps cases repeatable
        if let t = pick("time") {
            if case .scalar(let s) = t, let epoch = Calendar.timestamp(s.string) {
                now = epoch
            } else {
                report(
                    "'time' \(place) must be an RFC 3339 time such as \"2026-11-25T22:30:00Z\" or \"2026-11-25T22:30:00+02:00\"\(Self.found(t))",
                    at: t
                )
            }
        }
        var context: [String: Value] = [:]
        if let c = pick("context") {
            if case .map(let m) = Self.value(c) {
                context = m
            } else {
                report("'context' \(place) must be a mapping", at: c)
            }
        }

        var hookAnswer: HookVerdict? = nil
        if let h = f["hooks"] {
            hookAnswer = caseHook(h, in: place)
        }
        let expect = expectation(f, in: place)
        guard let name, let user, let capability, let expect else { return nil }
        let input = RequestInput(
            user: user.value,
            unixGroups: groups,
            capability: capability,
            flow: flow?.value,
            host: host,
            runas: runas,
            commands: commands,
            duration: duration,
            reason: reason,
            now: now,
            fields: requestFields,
            kind: kind,
            context: context
        )
        return PolicyCases.Case(
            name: name.value,
            place: "\(file):\(name.position.line)",
            input: input,
            hookAnswer: hookAnswer,
            expect: expect
        )
    }

    /// `hooks: {on_request: {decision: approve, reason: …, duration: 30m, add_approvers: [carol]}}`.
    mutating func caseHook(_ node: Node, in place: String) -> HookVerdict? {
        guard
            let f = fields(
                node,
                named: "hooks",
                in: place,
                at: Position(node),
                known: ["on_request"],
                example: "{on_request: {decision: approve}}"
            ), let r = f["on_request"],
            let a = fields(
                r,
                named: "on_request",
                in: place,
                at: Position(r),
                known: ["decision", "reason", "duration", "add_approvers", "fail"],
                example: "{decision: defer, add_approvers: [carol]}"
            )
        else { return nil }
        if let fail = text(a, "fail", in: place) { return .failed(fail.value) }
        let reason = text(a, "reason", in: place)?.value ?? ""
        switch text(a, "decision", in: place)?.value {
        case "approve": return .approve(reason: reason, duration: duration(a, "duration", in: place)?.value)
        case "deny": return .deny(reason: reason)
        case "defer":
            let add = words(a, "add_approvers", in: place, example: "[carol]")?.map(\.value) ?? []
            return .defer(addApprovers: add)
        default:
            report("'decision' \(place) must be approve, deny or defer (or give fail: \"why\")", at: a.position)
            return nil
        }
    }

    mutating func expectation(_ f: Fields, in place: String) -> PolicyCases.Expectation? {
        guard let node = f["expect"] else {
            reportMissing(
                "expect",
                in: f,
                "'expect' is missing \(place): say what should happen, e.g. expect: {outcome: approved}"
            )
            return nil
        }
        guard
            let e = fields(
                node,
                named: "expect",
                in: place,
                at: f.position(of: "expect"),
                keysIn: "in the expect of \(place.dropFirst(3))",
                known: Self.expectKeys,
                example: "{outcome: pending, approvers: [bob]}"
            )
        else { return nil }
        guard let outcome = text(e, "outcome", in: place) else {
            if e["outcome"] == nil {
                report("'outcome' is missing \(place): one of \(Self.outcomes.joined(separator: ", "))", at: e.position)
            }
            return nil
        }
        guard Self.outcomes.contains(outcome.value) else {
            report(Self.unknown("outcome", outcome.value, place: place, known: Self.outcomes), at: outcome.position)
            return nil
        }
        var by = text(e, "by", in: place)?.value
        if let rule = text(e, "rule", in: place)?.value {
            by = (outcome.value == "denied" ? "auto_deny rule " : "auto_approve rule ") + rule
        }
        var steps: [PolicyCases.StepExpectation]? = nil
        if e["approvers"] != nil || e["approvals"] != nil {
            steps = [
                PolicyCases.StepExpectation(
                    name: nil,
                    approvers: words(e, "approvers", in: place, example: "[bob]")?.map(\.value),
                    approvals: integer(e, "approvals", in: place)?.value
                )
            ]
        }
        if let s = e["steps"] {
            steps = items(
                s,
                position: Position(s),
                name: "steps",
                in: place,
                example: "[{name: team}]",
                allowEmpty: false
            ) {
                p,
                item,
                label in
                guard
                    let sf = p.fields(
                        item,
                        named: "step",
                        in: label,
                        at: Position(item),
                        known: ["name", "approvers", "approvals"],
                        example: "{name: team, approvers: [bob], approvals: 1}"
                    )
                else { return nil }
                return PolicyCases.StepExpectation(
                    name: p.text(sf, "name", in: label)?.value,
                    approvers: p.words(sf, "approvers", in: label, example: "[bob]")?.map(\.value),
                    approvals: p.integer(sf, "approvals", in: label)?.value
                )
            }
        }
        return PolicyCases.Expectation(
            outcome: outcome.value,
            by: by,
            flow: text(e, "flow", in: place)?.value,
            duration: e["duration"] != nil ? duration(e, "duration", in: place)?.value : nil,
            message: text(e, "message", in: place)?.value,
            steps: steps
        )
    }

    /// A YAML value as a condition value: plain true/false, whole numbers, text, lists, mappings.
    static func value(_ node: Node) -> Value {
        switch node {
        case .scalar(let s):
            if s.style == .plain || s.style == .any {
                if isNull(node) { return .null }
                if s.string == "true" { return .bool(true) }
                if s.string == "false" { return .bool(false) }
                if let i = Int64(s.string) { return .int(i) }
            }
            return .string(s.string)
        case .sequence(let seq): return .list(seq.map { value($0) })
        case .mapping(let m):
            var out: [String: Value] = [:]
            for (k, v) in m { if let key = k.scalar?.string { out[key] = value(v) } }
            return .map(out)
        case .alias: return .null
        }
    }
}
