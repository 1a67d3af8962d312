// writ-bench-fleet: approval on the server → the agent's long-poll answered, over HTTPS with
// client certificates, with N agents connected (this process holds the other N-1 long-polls),
// against a running writ-server; and the server's RSS and CPU while N agents wait, and N agents
// reconnecting at once. Benchmarks/fleet.sh starts the server and a private PostgreSQL cluster.
//
//   writ-bench-fleet --pg SOCKET_DIR DATABASE USER URL CA_SHA256 SERVER_PID AGENTS ROUNDS
import Foundation
import Glibc
import NIOPosix
import WritAgent
import WritEngine
import WritEnginePostgres

func now() -> Int64 { FleetClient.now() }

func percentile(_ xs: [Double], _ p: Double) -> Double {
    let s = xs.sorted()
    guard !s.isEmpty else { return 0 }
    return s[min(s.count - 1, Int((Double(s.count - 1) * p).rounded()))]
}

/// The server's resident set (KiB) and CPU time (clock ticks) from /proc.
func serverUsage(_ pid: Int32) -> (rssKiB: Int, cpuTicks: Int) {
    var rss = 0
    if let f = fopen("/proc/\(pid)/status", "r") {
        var line = [CChar](repeating: 0, count: 512)
        while fgets(&line, 512, f) != nil {
            let s = String(cString: line)
            if s.hasPrefix("VmRSS:") { rss = Int(s.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? 0 }
        }
        fclose(f)
    }
    var ticks = 0
    if let f = fopen("/proc/\(pid)/stat", "r") {
        var line = [CChar](repeating: 0, count: 4096)
        if fgets(&line, 4096, f) != nil {
            let s = String(cString: line)
            if let close = s.lastIndex(of: ")") {
                let fields = s[s.index(after: close)...].split(separator: " ")
                // utime and stime: fields 14 and 15 of stat, 12 and 13 after the command.
                ticks = (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0)
            }
        }
        fclose(f)
    }
    return (rss, ticks)
}

/// The machine's busy and idle clock ticks, all cores, from /proc/stat.
func machineTicks() -> (busy: Int, idle: Int) {
    guard let f = fopen("/proc/stat", "r") else { return (0, 0) }
    defer { fclose(f) }
    var line = [CChar](repeating: 0, count: 512)
    guard fgets(&line, 512, f) != nil else { return (0, 0) }
    let t = String(cString: line).split(separator: " ").dropFirst().compactMap {
        Int($0.trimmingCharacters(in: .whitespacesAndNewlines))
    }
    guard t.count >= 5 else { return (0, 0) }
    let idle = t[3] + t[4]
    return (t.reduce(0, +) - idle, idle)
}

/// Who heard of which grant when: each agent's poll loop records its answers. For a late
/// approval's timeline it also keeps each agent's last polls and when this process heard the
/// store's NOTIFY for each grant.
actor Arrivals {
    var seen: [String: Int64] = [:]
    var waiting: [String: CheckedContinuation<Int64, Never>] = [:]
    /// Each agent's last few polls: sent, answered (or failed, -1 grants), grants in the answer.
    var polls: [Int: [(sent: Int64, server: Int64, received: Int64, grants: Int)]] = [:]
    var open: [Int: Int64] = [:]
    var notified: [String: Int64] = [:]

    func arrived(_ ids: [String], at t: Int64) {
        for id in ids where seen[id] == nil {
            seen[id] = t
            waiting.removeValue(forKey: id)?.resume(returning: t)
        }
    }

    func sending(agent: Int, at t: Int64) { open[agent] = t }

    /// How much longer than asked each empty poll took (ms): the server's lateness and the way
    /// there and back.
    var overruns: [Double] = []

    func polled(agent: Int, sent: Int64, server: Int64, received: Int64, grants: Int, asked: Int) {
        open[agent] = nil
        if grants == 0 { overruns.append(Double(received - sent - Int64(asked) * 1000)) }
        var log = polls[agent, default: []]
        log.append((sent, server, received, grants))
        if log.count > 4 { log.removeFirst() }
        polls[agent] = log
    }

    func notify(_ id: String, at t: Int64) { notified[id] = notified[id] ?? t }

    /// The last polls of `agent`, answered or still open, their times relative to `from` (ms).
    func timeline(agent: Int, from: Int64) -> String {
        ((polls[agent] ?? []).map {
            "poll sent \($0.sent - from) server answered \($0.server - from) received \($0.received - from) (\($0.grants))"
        } + (open[agent].map { ["poll sent \($0 - from) still open"] } ?? [])).joined(separator: "; ")
    }

    func when(_ id: String) async -> Int64 {
        if let t = seen[id] { return t }
        return await withCheckedContinuation { waiting[id] = $0 }
    }
}

var limit = rlimit()
if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
    limit.rlim_cur = limit.rlim_max
    setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
}
let args = CommandLine.arguments
let (store, rest) = try await PostgresApprovalStore.open(arguments: args.dropFirst(), label: "writ-bench-fleet")
let r = Array(rest)
guard r.count == 5, let serverPID = Int32(r[2]), let agents = Int(r[3]), let rounds = Int(r[4]) else {
    print("usage: writ-bench-fleet --pg SOCKET_DIR DATABASE USER URL CA_SHA256 SERVER_PID AGENTS ROUNDS")
    exit(64)
}
let url = r[0]
let caSHA = r[1]
let engine = ApprovalEngine(store: store)
let admin = Principal(user: "bench", route: .host("bench"))

// Enroll the agents, 32 at a time.
let enrollStart = now()
var credentials: [AgentCredentials] = []
let names = (0..<agents).map { String(format: "agent-%05d", $0) }
for batch in stride(from: 0, to: agents, by: 32) {
    let part = try await withThrowingTaskGroup(of: AgentCredentials.self) { group in
        for name in names[batch..<min(agents, batch + 32)] {
            group.addTask {
                let t = try await engine.createEnrollment(host: name, by: admin)
                // The server signs 32 at a time: a busy answer is tried again.
                for _ in 0..<20 {
                    do {
                        return try await FleetClient.enroll(
                            server: url,
                            token: t.token,
                            caSHA256: caSHA,
                            localName: name
                        )
                    } catch AgentError.busy, AgentError.unavailable {
                        try await Task.sleep(for: .milliseconds(200))
                    }
                }
                return try await FleetClient.enroll(server: url, token: t.token, caSHA256: caSHA, localName: name)
            }
        }
        var out: [AgentCredentials] = []
        for try await c in group { out.append(c) }
        return out
    }
    credentials += part
}
let enrolled = Double(now() - enrollStart) / 1000
// The agents' connections on threads of their own: NIO's shared threads stay free for this
// process's PostgreSQL connection, which issues the grants being timed.
let agentLoops = MultiThreadedEventLoopGroup(numberOfThreads: 2)
// The heartbeat the agents ask for: writd's default unless WRIT_BENCH_HEARTBEAT says (0: none).
let heartbeat: Int? =
    getenv("WRIT_BENCH_HEARTBEAT").flatMap { Int(String(cString: $0)) }
    .map { $0 == 0 ? nil : $0 } ?? FleetClient.defaultHeartbeat
func client(_ c: AgentCredentials) throws -> FleetClient {
    try FleetClient(server: url, caPEM: c.caPEM, credentials: c, heartbeat: heartbeat, eventLoopGroup: agentLoops)
}
let clients = try credentials.map(client)
let byHost = Dictionary(uniqueKeysWithValues: zip(credentials.map(\.host), clients))

/// Every agent takes its snapshot, at most `width` at a time (all at once when `width` is the
/// number of agents): the time until all are in sync.
func syncAll(_ clients: [FleetClient], width: Int) async throws -> (seconds: Double, cursors: [String]) {
    let start = now()
    let cursors = try await withThrowingTaskGroup(of: (Int, String).self) { group in
        var out = [String](repeating: "", count: clients.count)
        var next = 0
        func add() {
            let i = next
            let c = clients[i]
            next += 1
            group.addTask {
                // As the agent does: a connection that fails is tried again within a second.
                while true {
                    do {
                        return (i, try await c.snapshot().value.cursor)
                    } catch AgentError.unavailable, AgentError.busy {
                        try await Task.sleep(for: .milliseconds(Int.random(in: 250...1000)))
                    }
                }
            }
        }
        while next < min(width, clients.count) { add() }
        for try await (i, cursor) in group {
            out[i] = cursor
            if next < clients.count { add() }
        }
        return out
    }
    return (Double(now() - start) / 1000, cursors)
}

// Up to 1,000 agents arrive at once; more, on two cores shared by the server, PostgreSQL and
// this generator, would only measure handshakes abandoned at their connect timeout: past
// 1,000 they arrive 250 at a time.
let width = agents <= 1000 ? agents : 250
let (firstSync, cursors) = try await syncAll(clients, width: width)
let arrivals = Arrivals()
let polling = Task {
    await withTaskGroup(of: Void.self) { group in
        for (i, c) in clients.enumerated() {
            group.addTask {
                var cursor = cursors[i]
                // As agents do: not all at the same moment.
                try? await Task.sleep(for: .milliseconds(Int.random(in: 0...2000)))
                while !Task.isCancelled {
                    let sent = now()
                    await arrivals.sending(agent: i, at: sent)
                    do {
                        // As writd asks: 30 s, give or take 5.
                        var rng = SystemRandomNumberGenerator()
                        let wait = FleetClient.pollWait(30, using: &rng)
                        let page = try await c.changes(after: cursor, wait: wait)
                        await arrivals.arrived(page.value.grants.map(\.id), at: page.receivedAt)
                        await arrivals.polled(
                            agent: i,
                            sent: page.sentAt,
                            server: page.value.serverTimeMs,
                            received: page.receivedAt,
                            grants: page.value.grants.count,
                            asked: wait
                        )
                        cursor = page.value.cursor
                    } catch {
                        await arrivals.polled(agent: i, sent: sent, server: 0, received: now(), grants: -1, asked: 0)
                        try? await Task.sleep(for: .milliseconds(200))
                    }
                }
            }
        }
    }
}
// Let every poll reach the server, then measure the server idle with N waiting.
try await Task.sleep(for: .seconds(agents >= 10000 ? 20 : agents >= 1000 ? 8 : 3))
let before = serverUsage(serverPID)
let ownBefore = serverUsage(getpid())
let machineBefore = machineTicks()
try await Task.sleep(for: .seconds(10))
let after = serverUsage(serverPID)
let ownAfter = serverUsage(getpid())
let machineAfter = machineTicks()
let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
let idleCPU = Double(after.cpuTicks - before.cpuTicks) / ticksPerSecond / 10 * 100
let ownCPU = Double(ownAfter.cpuTicks - ownBefore.cpuTicks) / ticksPerSecond / 10 * 100
let machineBusy =
    Double(machineAfter.busy - machineBefore.busy)
    / Double(max(1, machineAfter.busy + machineAfter.idle - machineBefore.busy - machineBefore.idle)) * 100

// This process hears the store's NOTIFY too: when it arrives places the wait between the
// commit and the server's hub.
let listening = Task {
    while !Task.isCancelled {
        try? await store.followChanges { change in
            if change.hasPrefix("grant:") { await arrivals.notify(String(change.dropFirst(6)), at: now()) }
        }
        try? await Task.sleep(for: .milliseconds(200))
    }
}
try await Task.sleep(for: .milliseconds(500))

// Approvals: a grant for one agent at a time, chosen at random; its poll's answer is timed.
// An approval later than `lateMs` prints its timeline to stderr.
let lateMs = Int64(getenv("WRIT_BENCH_LATE_MS").flatMap { Int(String(cString: $0)) } ?? 250)
var latencies: [Double] = []
var late: [String] = []
for _ in 0..<rounds {
    let index = Int.random(in: 0..<agents)
    let host = names[index]
    let t0 = now()
    let g = try await engine.addGrant(
        user: "nobody",
        capability: "sudo",
        host: host,
        duration: 600,
        reason: "bench",
        by: admin
    )
    let committed = now()
    let t1 = await arrivals.when(g.id)
    latencies.append(Double(t1 - t0))
    if t1 - t0 > lateMs {
        let heard = await arrivals.notified[g.id].map { "\($0 - t0)" } ?? "-"
        let polls = await arrivals.timeline(agent: index, from: t0)
        late.append(
            "late \(t1 - t0) ms at \(t0): \(host) committed \(committed - t0), NOTIFY heard \(heard), answered \(t1 - t0); \(polls)"
        )
    }
    try await Task.sleep(for: .milliseconds(Int.random(in: 20...60)))
}
_ = byHost
polling.cancel()
listening.cancel()
let overruns = await arrivals.overruns
for line in late { FileHandle.standardError.write(Data((line + "\n").utf8)) }
for c in clients { await c.shutdown() }

// N agents reconnecting at once: new connections (TLS handshakes), then a snapshot each.
let fresh = try credentials.map(client)
let (reconnect, _) = try await syncAll(fresh, width: width)
for c in fresh { await c.shutdown() }
try await agentLoops.shutdownGracefully()
await store.close()

func ms(_ x: Double) -> String { x < 10 ? String(format: "%.1f", x) : String(Int(x.rounded())) }
print(
    "agents \(agents), heartbeat \(heartbeat.map { "\($0) s" } ?? "none"): approve→poll answered p50 \(ms(percentile(latencies, 0.5))) ms, p99 \(ms(percentile(latencies, 0.99))) ms (\(rounds) approvals); "
        + "server RSS \(after.rssKiB / 1024) MiB with all waiting, CPU \(String(format: "%.1f", idleCPU)) % of a core idle; "
        + "enrolled in \(String(format: "%.1f", enrolled)) s; all in sync at start \(String(format: "%.2f", firstSync)) s, "
        + "reconnecting \(width == agents ? "at once" : "\(width) at a time") \(String(format: "%.2f", reconnect)) s"
        + "; empty polls \(overruns.count), answered later than asked by p50 \(ms(percentile(overruns, 0.5))) ms, p99 \(ms(percentile(overruns, 0.99))) ms"
        + "; this generator \(String(format: "%.0f", ownCPU)) % of a core and the machine \(String(format: "%.0f", machineBusy)) % busy while all wait"
        + (late.isEmpty ? "" : "; \(late.count) over \(lateMs) ms (timelines on stderr)")
)
