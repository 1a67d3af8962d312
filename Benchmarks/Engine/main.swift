// writ-bench-engine: the approval engine's throughput and decision latency on one store.
//
//   writ-bench-engine --sqlite PATH | --pg SOCKET_DIR DATABASE USER   [REQUESTS] [CONCURRENCY]
//
// Files REQUESTS requests and approves each (one approval issues its grant), CONCURRENCY tasks at
// a time on one engine instance. Prints one line: the store, requests filed and approved per
// second, and the time of one decision (approve → grant committed): p50 and p99 in µs.
import Glibc
import WritCore
import WritEngine
import WritEnginePostgres

let args = Array(CommandLine.arguments.dropFirst())
func fail(_ message: String) -> Never {
    let text = "writ-bench-engine: \(message)\n"
    _ = text.withCString { write(2, $0, strlen($0)) }
    exit(2)
}

let store: any ApprovalStore
let rest: ArraySlice<String>
do {
    (store, rest) = try await PostgresApprovalStore.open(arguments: args[...], label: "writ-bench-engine")
} catch {
    fail(
        "\(error.description); usage: writ-bench-engine --sqlite PATH | --pg SOCKET_DIR DATABASE USER [REQUESTS] [CONCURRENCY]"
    )
}
let total = rest.first.flatMap { Int($0) } ?? 2000
let concurrency = rest.dropFirst().first.flatMap { Int($0) } ?? 1

func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

let engine = ApprovalEngine(store: store)
let alice = Principal.host("alice", on: "bench")
let bob = Principal.host("bob", on: "bench")

/// One request filed and approved; the approval's time in ns.
func round() async throws(EngineError) -> UInt64 {
    let now = Int64(time(nil))
    let request = EngineRequest(
        core: AccessRequest(
            id: EngineRequest.generateID(),
            requester: "alice",
            capability: .sudo,
            duration: 1800,
            reason: "INC-1 disk full",
            createdAt: now,
            pendingUntil: now + 3600,
            approvers: ["bob", "carol"]
        ),
        kind: "grant",
        extendsGrant: nil,
        requesterUID: 1000,
        flow: "sudo",
        host: "web-*",
        runas: "root",
        commands: nil,
        grantID: nil,
        autoRule: nil,
        warnBefore: 300,
        policyVersion: "bench"
    )
    let filed = try await engine.file(request, by: alice)
    let start = monotonicNanos()
    let out = try await engine.decide(filed.request.core.id, .approve(comment: ""), by: bob)
    let took = monotonicNanos() - start
    guard out.grant != nil else { fail("no grant issued") }
    return took
}

// Warm up (connections, statement caches), then measure.
for _ in 0..<min(100, total) {
    do { _ = try await round() } catch { fail(error.description) }
}
let started = monotonicNanos()
var decisions: [UInt64] = []
do {
    decisions = try await withThrowingTaskGroup(of: [UInt64].self) { group in
        for worker in 0..<concurrency {
            let share = total / concurrency + (worker < total % concurrency ? 1 : 0)
            group.addTask {
                var mine: [UInt64] = []
                for _ in 0..<share { mine.append(try await round()) }
                return mine
            }
        }
        var all: [UInt64] = []
        for try await part in group { all += part }
        return all
    }
} catch { fail("\(error)") }
let seconds = Double(monotonicNanos() - started) / 1e9
let sorted = decisions.sorted()
let p50 = sorted[sorted.count / 2]
let p99 = sorted[min(sorted.count - 1, sorted.count * 99 / 100)]
print(
    "\(store.kind) requests=\(total) concurrency=\(concurrency) per_second=\(Int(Double(total) / seconds)) "
        + "decision_p50_us=\(p50 / 1000) decision_p99_us=\(p99 / 1000)"
)
if let pg = store as? PostgresApprovalStore { await pg.shutdown() }
