import WritCore

extension Policy {
    /// Who could get a grant of `capability` on `host` under this policy, each with the flows that
    /// could give it: what `writ doctor` and the installer use to say who a gate would lock out.
    ///
    /// An estimate from the file that errs towards "cannot", because a wrong "can" is a lockout
    /// nobody was warned of. A user counts for a flow that covers the host when they may request
    /// it and either an auto_approve rule without a time window or condition applies to them, or
    /// people other than themselves (themselves too with `self_approval`) can give every step its
    /// approvals, no person counted in two steps (the engine wants distinct people). break_glass
    /// and hooks are not counted: they approve only when something outside the file says so.
    /// With `scopedGrantsPass` false (sudo's PAM line without the plugin), flows that grant a
    /// command list or another run-as user than root do not count: their grants are refused there.
    public func reach(
        capability: Capability,
        host: String,
        scopedGrantsPass: Bool = true,
        membersOf: (String) -> [String]
    ) -> [String: [String]] {
        var result: [String: [String]] = [:]
        for flow in flows where flow.capability == capability && flow.covers(host: host) {
            if !scopedGrantsPass && capability == .sudo && (flow.commands != nil || flow.runas != "root") { continue }
            let stepApprovers = flow.steps.map { step -> (people: Set<String>, needed: Int) in
                var people = users(step.approvers, membersOf: membersOf)
                if let e = step.escalation { people.formUnion(users(e.to, membersOf: membersOf)) }
                return (people, step.approvals)
            }
            for user in users(flow.requesters, membersOf: membersOf) {
                let byRule = flow.autoApprove.contains { rule in
                    rule.window == nil && rule.condition == nil
                        && (rule.requesterIn.map { users($0, membersOf: membersOf).contains(user) } ?? true)
                }
                let byPeople = Self.distinctApprovals(
                    stepApprovers.map { (flow.selfApproval ? $0.people : $0.people.subtracting([user]), $0.needed) }
                )
                if byRule || byPeople { result[user, default: []].append(flow.name) }
            }
        }
        return result
    }

    /// Whether every step can get its approvals from people no other step uses: steps with the
    /// fewest candidates pick first (exact for the one- and two-step flows policies have; for more
    /// it may say no where a cleverer choice says yes, which errs the safe way here).
    static func distinctApprovals(_ steps: [(Set<String>, Int)]) -> Bool {
        var used: Set<String> = []
        for (people, needed) in steps.sorted(by: { $0.0.count < $1.0.count }) {
            let free = people.subtracting(used).sorted()
            guard free.count >= needed else { return false }
            used.formUnion(free.prefix(needed))
        }
        return true
    }
}
