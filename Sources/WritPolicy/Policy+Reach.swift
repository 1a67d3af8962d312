import WritCore

extension Policy {
    /// Who could get a grant of `capability` on `host` under this policy, each with the flows that
    /// could give it. A user counts when they may request a flow that covers the host and the flow
    /// can approve them: a rule, break-glass or a hook that decides without people, or enough
    /// approvers other than themselves in every step (themselves too with `self_approval`).
    ///
    /// This is what `writ doctor` and the installer use to say who a gate would lock out: an
    /// estimate from the file (conditions are not evaluated), never an access decision.
    public func reach(capability: Capability, host: String, membersOf: (String) -> [String]) -> [String: [String]] {
        var result: [String: [String]] = [:]
        for flow in flows where flow.capability == capability && flow.covers(host: host) {
            let withoutPeople = !flow.autoApprove.isEmpty || flow.breakGlass != nil || flow.hooks.onRequest != nil
            let stepApprovers = flow.steps.map { step -> (Set<String>, Int) in
                var people = users(step.approvers, membersOf: membersOf)
                if let e = step.escalation { people.formUnion(users(e.to, membersOf: membersOf)) }
                return (people, step.approvals)
            }
            for user in users(flow.requesters, membersOf: membersOf) {
                let byPeople = stepApprovers.allSatisfy { people, needed in
                    (flow.selfApproval ? people : people.subtracting([user])).count >= needed
                }
                if withoutPeople || byPeople { result[user, default: []].append(flow.name) }
            }
        }
        return result
    }
}
