// writ-bench-feed: how soon a host's long-poll hears of its grant, with WAITERS hosts waiting.
//
//   writ-bench-feed --sqlite PATH | --pg SOCKET_DIR DATABASE USER   [WAITERS] [ROUNDS]
//
// Two instances of the engine on one store, as two writ-server replicas: WAITERS hosts (h-0 …)
// hold long-polls on the second instance's GrantFeedHub; the first instance issues ROUNDS
// grants, one at a time, each for one host picked at random. Prints one line: the time from
// the issuing call to that host's wait being answered, p50 and p99 in µs, and this process's
// resident memory with every wait pending. (In-process: no HTTP, no TLS, no agent.)
import Glibc
import Synchronization
import WritCore
import WritEngine
import WritEnginePostgres

let args = Array(CommandLine.arguments.dropFirst())
func fail(_ message: String) -> Never {
    let text = "writ-bench-feed: \(message)\n"
    _ = text.withCString { write(2, $0, strlen($0)) }
    exit(2)
}
let usage = "usage: writ-bench-feed --sqlite PATH | --pg SOCKET_DIR DATABASE USER [WAITERS] [ROUNDS]"

let writerStore: any ApprovalStore
let rest: ArraySlice<String>
do {
    (writerStore, rest) = try await PostgresApprovalStore.open(arguments: args[...], label: "writ-bench-feed")
} catch { fail("\(error.description); \(usage)") }
// The second replica: another connection pool to the same database (SQLite: the same instance,
// whose notifications are in-process).
let hubStore: any ApprovalStore
if writerStore is PostgresApprovalStore {
    do {
        hubStore = try await PostgresApprovalStore.open(arguments: args[...], label: "writ-bench-feed").store
    } catch { fail(error.description) }
} else {
    hubStore = writerStore
}
let waiters = rest.first.flatMap { Int($0) } ?? 1000
let rounds = rest.dropFirst().first.flatMap { Int($0) } ?? 200
guard waiters > 0, rounds > 0 else { fail(usage) }

func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

func residentKiB() -> Int {
    guard let f = fopen("/proc/self/status", "r") else { return -1 }
    defer { fclose(f) }
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, 256, f) != nil {
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if text.hasPrefix("VmRSS:") { return Int(text.split(separator: " ")[1]) ?? -1 }
    }
    return -1
}

let writer = ApprovalEngine(store: writerStore)
let hub = GrantFeedHub(engine: ApprovalEngine(store: hubStore), pollInterval: .seconds(30))
let following = Task { await hub.run() }
try? await Task.sleep(for: .milliseconds(500))
let start = (try? await writer.grantFeedEnd()) ?? 0

/// Each wait's answer, by host: when it came.
let (answers, answered) = AsyncStream<(host: Int, at: UInt64)>.makeStream()
let waiting = Task {
    await withTaskGroup(of: Void.self) { group in
        for i in 0..<waiters {
            group.addTask {
                var cursor = start
                while !Task.isCancelled {
                    guard let a = try? await hub.wait(host: "h-\(i)", after: cursor, timeout: .seconds(300)) else {
                        return
                    }
                    cursor = a.cursor
                    if !a.grants.isEmpty { answered.yield((i, monotonicNanos())) }
                }
            }
        }
    }
}
while await hub.pending < waiters { try? await Task.sleep(for: .milliseconds(20)) }
let rss = residentKiB()

/// ROUNDS grants, one at a time, each timed from the issuing call to its host's answer.
func measure() async -> [UInt64] {
    let admin = Principal.host("root", on: "bench")
    var heard = answers.makeAsyncIterator()
    var latencies: [UInt64] = []
    for _ in 0..<rounds {
        let host = Int.random(in: 0..<waiters)
        let now = Int64(time(nil))
        let request = EngineRequest(
            core: AccessRequest(
                id: EngineRequest.generateID(),
                requester: "alice",
                capability: .sudo,
                duration: 1800,
                reason: "bench",
                createdAt: now,
                pendingUntil: now + 3600,
                approvers: ["bob"]
            ),
            kind: "grant",
            extendsGrant: nil,
            requesterUID: 1000,
            flow: "sudo",
            host: "h-\(host)",
            runas: "root",
            commands: nil,
            grantID: nil,
            autoRule: nil,
            warnBefore: 300,
            policyVersion: "bench"
        )
        let began = monotonicNanos()
        do {
            _ = try await writer.file(
                request,
                Filing(.approve(rule: "bench", duration: 1800, evidence: nil)),
                by: admin
            )
        } catch { fail(error.description) }
        guard let answer = await heard.next() else { fail("the waits ended") }
        guard answer.host == host else { fail("host h-\(answer.host) was answered for a grant to h-\(host)") }
        latencies.append(answer.at - began)
    }
    return latencies
}
let latencies = await measure()
await hub.shutdown()
following.cancel()
waiting.cancel()
let sorted = latencies.sorted()
print(
    "\(writerStore.kind) waiters=\(waiters) rounds=\(rounds) "
        + "issue_to_answer_p50_us=\(sorted[sorted.count / 2] / 1000) "
        + "issue_to_answer_p99_us=\(sorted[min(sorted.count - 1, sorted.count * 99 / 100)] / 1000) "
        + "rss_with_waits_kib=\(rss)"
)
exit(0)
