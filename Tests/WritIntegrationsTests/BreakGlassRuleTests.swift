import Testing

@testable import WritIntegrations

@Suite("BreakGlassRule.qualifying")
struct BreakGlassRuleTests {
    let now: Int64 = 1_795_600_800

    func entry(
        policy: String = "PEP1",
        schedule: String? = "PSCHED1",
        level: Int = 1,
        start: Int64? = nil,
        end: Int64? = nil
    ) -> OnCall {
        OnCall(
            userID: "PALICE1",
            escalationPolicyID: policy,
            escalationPolicyName: "Infra",
            scheduleID: schedule,
            scheduleName: schedule.map { "Schedule \($0)" },
            level: level,
            start: start,
            end: end
        )
    }

    @Test func timeWindow() {
        let rule = BreakGlassRule(escalationPolicies: ["PEP1"])
        #expect(rule.qualifying([entry(start: now - 60, end: now + 60)], now: now) != nil)
        #expect(rule.qualifying([entry(start: now, end: now + 60)], now: now) != nil, "start is inclusive")
        #expect(rule.qualifying([entry(start: now - 60, end: now)], now: now) == nil, "end is exclusive")
        #expect(rule.qualifying([entry(start: now + 1, end: now + 60)], now: now) == nil, "starts in the future")
        #expect(rule.qualifying([entry(start: now - 120, end: now - 60)], now: now) == nil, "ended")
        #expect(rule.qualifying([entry()], now: now) != nil, "nil start and end: always on call")
        #expect(rule.qualifying([entry(start: nil, end: now + 1)], now: now) != nil)
        #expect(rule.qualifying([entry(start: now - 1, end: nil)], now: now) != nil)
        #expect(rule.qualifying([entry(start: nil, end: now)], now: now) == nil)
        #expect(rule.qualifying([entry(start: now + 1, end: nil)], now: now) == nil)
    }

    @Test func level() {
        #expect(BreakGlassRule(escalationPolicies: ["PEP1"]).qualifying([entry(level: 2)], now: now) == nil)
        #expect(
            BreakGlassRule(escalationPolicies: ["PEP1"], maxLevel: 2).qualifying([entry(level: 2)], now: now) != nil
        )
        #expect(BreakGlassRule(escalationPolicies: ["PEP1"]).qualifying([entry(level: 0)], now: now) == nil)
        #expect(BreakGlassRule(escalationPolicies: ["PEP1"]).qualifying([entry(level: -1)], now: now) == nil)
        #expect(BreakGlassRule(escalationPolicies: ["PEP1"], maxLevel: 0).qualifying([entry()], now: now) == nil)
    }

    @Test func policiesAndSchedules() {
        let onSchedule = entry(policy: "PEP9", schedule: "PSCHED1")
        let direct = entry(policy: "PEP1", schedule: nil)
        #expect(BreakGlassRule(schedules: ["PSCHED1"]).qualifying([onSchedule], now: now) == onSchedule)
        #expect(BreakGlassRule(schedules: ["PSCHED2"]).qualifying([onSchedule], now: now) == nil, "wrong schedule")
        #expect(BreakGlassRule(schedules: ["PSCHED1"]).qualifying([direct], now: now) == nil, "no schedule")
        #expect(BreakGlassRule(escalationPolicies: ["PEP1"]).qualifying([direct], now: now) == direct)
        #expect(BreakGlassRule(escalationPolicies: ["PEP1"]).qualifying([onSchedule], now: now) == nil)
        // Either list qualifies an entry.
        let both = BreakGlassRule(escalationPolicies: ["PEP1"], schedules: ["PSCHED1"])
        #expect(both.qualifying([onSchedule], now: now) == onSchedule)
        #expect(both.qualifying([direct], now: now) == direct)
        // An empty rule never qualifies anything.
        #expect(BreakGlassRule().qualifying([onSchedule, direct], now: now) == nil)
        #expect(BreakGlassRule(escalationPolicies: ["PEP1"]).qualifying([], now: now) == nil)
    }

    @Test func choosesLowestLevelThenEarliestEnd() {
        let rule = BreakGlassRule(escalationPolicies: ["PEP1", "PEP2"], maxLevel: 3)
        let levelTwo = entry(policy: "PEP1", level: 2, end: now + 10)
        let openEnded = entry(policy: "PEP2", level: 1)
        let late = entry(policy: "PEP1", level: 1, end: now + 3600)
        let soon = entry(policy: "PEP2", level: 1, end: now + 600)
        #expect(rule.qualifying([levelTwo, openEnded, late, soon], now: now) == soon)
        #expect(rule.qualifying([soon, late, openEnded, levelTwo], now: now) == soon)
        #expect(rule.qualifying([levelTwo, openEnded], now: now) == openEnded)
        #expect(rule.qualifying([levelTwo], now: now) == levelTwo)
        // Ties are broken by IDs, not by PagerDuty's order.
        let a = entry(policy: "PEP1", schedule: "PS2", end: now + 60)
        let b = entry(policy: "PEP1", schedule: "PS1", end: now + 60)
        let c = entry(policy: "PEP2", schedule: "PS0", end: now + 60)
        #expect(rule.qualifying([a, b, c], now: now) == b)
        #expect(rule.qualifying([c, b, a], now: now) == b)
    }
}
