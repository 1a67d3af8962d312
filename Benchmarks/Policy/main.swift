// writ-bench-policy: how long the policy takes to decide one request, for a policy with 200
// flows. Prints the time per decision (median, p99, max over many runs) with conditions on every
// flow, and the same policy without conditions measured in the same run as the baseline.
// Target (issue 4): under 1 ms per request without hooks. Run: Benchmarks/policy.sh.
import Glibc
import WritCore
import WritPolicy

func nanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// 200 flows, each for its own hosts; with `conditions`, each has an auto_deny rule, two
/// auto_approve rules with conditions, and two steps, one conditional.
func policyText(flows: Int, conditions: Bool) -> String {
    var lines = [
        "version: 1", "timezone: \"+01:00\"", "groups: {leads: [carol, frank], sec: [sam]}", "flows:",
    ]
    for i in 0..<flows {
        lines += [
            "  - name: flow-\(i)",
            "    capability: sudo",
            "    hosts: [\"app\(i)-*\"]",
            "    requesters: {users: [alice, bob], unix_groups: [ops]}",
            "    duration: {default: 30m, max: 4h}",
            "    reason: {required: true, pattern: \"^(INC|CHG)-[0-9]+\"}",
        ]
        if conditions {
            lines += [
                "    auto_deny:",
                "      - {name: long-nights, when: 'time.hour < 6 && request.duration > duration(\"1h\")', message: 1h at night}",
                "    auto_approve:",
                "      - name: on-call",
                "        when: 'has(context.on_call) && context.on_call == true && \"sre\" in request.groups'",
                "        max_duration: 1h",
                "      - name: ticketed",
                "        when: 'request.reason.matches(\"^CHG-[0-9]+ \") && request.fields.ticket != \"\" && time.weekday != \"sat\"'",
                "        max_duration: 30m",
                "    steps:",
                "      - {name: team, approvers: {groups: [leads]}}",
                "      - name: security",
                "        when: 'request.duration > duration(\"2h\") || request.commands.exists(c, c.startsWith(\"/usr/bin/psql\"))'",
                "        approvers: {groups: [sec]}",
            ]
        } else {
            lines.append("    approvers: {groups: [leads]}")
        }
    }
    return lines.joined(separator: "\n") + "\n"
}

func measure(_ policy: Policy, _ input: RequestInput, runs: Int) -> [Double] {
    var times: [Double] = []
    times.reserveCapacity(runs)
    for _ in 0..<runs {
        let t0 = nanoseconds()
        let result = policy.evaluate(input)
        let t1 = nanoseconds()
        if case .failure(let refusal) = result { fatalError("the benchmark request was refused: \(refusal)") }
        times.append(Double(t1 - t0) / 1000)
    }
    return times.sorted()
}

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
}

let flows = 200
let runs = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 20_000
let withConditions = try Policy.parse(policyText(flows: flows, conditions: true), file: "bench.yaml")
let plain = try Policy.parse(policyText(flows: flows, conditions: false), file: "bench.yaml")

// The last flow: every flow before it is tried and passed over. Nothing auto-approves, so every
// condition of the chosen flow is evaluated.
var last = RequestInput(
    user: "alice",
    unixGroups: ["ops", "staff"],
    capability: .sudo,
    host: "app\(flows - 1)-web",
    duration: 5400,
    reason: "INC-4521 disk full",
    now: 1_764_072_000,
    fields: ["ticket": "INC-4521"],
    context: ["on_call": .bool(false)]
)
var first = last
first.host = "app0-web"

print("policy evaluation, \(flows) flows, \(runs) decisions each (µs per decision)")
print("case                                   median      p99      max")
var medians: [String: Double] = [:]
for (name, policy, input) in [
    ("last flow, no conditions (baseline)", plain, last),
    ("last flow, with conditions", withConditions, last),
    ("first flow, no conditions (baseline)", plain, first),
    ("first flow, with conditions", withConditions, first),
] {
    _ = measure(policy, input, runs: 1000)  // warm up
    let t = measure(policy, input, runs: runs)
    medians[name] = percentile(t, 0.5)
    let cols = [percentile(t, 0.5), percentile(t, 0.99), t.last ?? 0].map { String(format3: $0) }
    print(name.padding(38) + cols.map { $0.leftPadding(9) }.joined())
}
let ratio =
    (medians["last flow, with conditions"] ?? 0) / max(0.001, medians["last flow, no conditions (baseline)"] ?? 1)
print(
    "conditions cost ×\(String(format3: ratio)) over the baseline (median, last flow); target: < 1000 µs per decision"
)

extension String {
    init(format3 v: Double) {
        let scaled = Int((v * 10).rounded())
        self = "\(scaled / 10).\(scaled % 10)"
    }
    func padding(_ n: Int) -> String { count >= n ? self : self + String(repeating: " ", count: n - count) }
    func leftPadding(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
}
