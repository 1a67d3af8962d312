// writ-bench-seed STORE USER UID [TOTAL] [USERS]
//
// Fills a grant store for the benchmarks: TOTAL grants (default 100,000) over USERS users
// (default 10,000), most of them ended history (expired or revoked), a few active, plus one
// active full sudo grant and one active login grant for USER/UID, the account the benchmark runs
// sudo as. Written through GrantStore, so the schema and the index are the real ones.
import Glibc
import WritCore
import WritStore

let args = CommandLine.arguments
guard args.count >= 4, let uid = UInt32(args[3]) else {
    print("usage: writ-bench-seed STORE USER UID [TOTAL] [USERS]")
    exit(64)
}
let total = args.count > 4 ? Int(args[4]) ?? 100_000 : 100_000
let users = args.count > 5 ? Int(args[5]) ?? 10_000 : 10_000
let now = Int64(time(nil))
var grants: [Grant] = []
grants.reserveCapacity(total)
for i in 0..<(total - 2) {
    let u = i % users
    let user = i % 97 == 0 ? args[2] : "bench_u\(u)"  // some history for the benchmark user too
    let capability: Capability = i % 3 == 0 ? .login : .sudo
    let age = Int64(i % 5000) * 3600
    var g = Grant(
        id: "g_bench\(i)",
        user: user,
        uid: user == args[2] ? uid : UInt32(100_000 + u),
        capability: capability,
        host: i % 4 == 0 ? "web-*" : "*",
        runas: "root",
        commands: i % 5 == 0 ? [CommandPattern(path: "/usr/bin/systemctl", arguments: ["restart", "nginx"])] : nil,
        notBefore: now - age - 3600,
        expiresAt: now - age,
        reason: "INC-\(i)",
        approvedBy: "bench",
        createdAt: now - age - 3600
    )
    if i % 50 == 0 && user != args[2] {  // 2% still active; the benchmark user's history stays history
        g.notBefore = now - 60
        g.expiresAt = now + 3600
    } else if i % 7 == 0 {
        g.revokedAt = g.expiresAt - 10
        g.revokedBy = "bench"
    }
    grants.append(g)
}
grants.append(
    Grant(
        id: GrantID.generate(),
        user: args[2],
        uid: uid,
        capability: .sudo,
        notBefore: now - 60,
        expiresAt: now + 86400,
        reason: "benchmark",
        approvedBy: "bench",
        createdAt: now
    )
)
grants.append(
    Grant(
        id: GrantID.generate(),
        user: args[2],
        uid: uid,
        capability: .login,
        notBefore: now - 60,
        expiresAt: now + 86400,
        reason: "benchmark",
        approvedBy: "bench",
        createdAt: now
    )
)
do {
    let store = try GrantStore.create(path: args[1])
    try store.addAll(grants)
    print("seeded \(grants.count) grants for \(users) users into \(args[1])")
} catch {
    print("writ-bench-seed: \(error)")
    exit(1)
}
