// writ-bench-check STORE USER N
//
// The in-process cost of the check itself, as pam_writ.so and sudo_writ.so run it: verify the
// store's ownership and modes, open it read-only, run the indexed query, decide, close. Prints
// median, p90 and min in microseconds over N checks (after 100 warm-up checks).
import Glibc
import WritCore
import WritStore

let args = CommandLine.arguments
guard args.count == 4, let n = Int(args[3]), n > 0 else {
    print("usage: writ-bench-check STORE USER N")
    exit(64)
}
guard let pw = getpwnam(args[2]) else {
    print("writ-bench-check: no such user \(args[2])")
    exit(1)
}
let uid = pw.pointee.pw_uid
var names = utsname()
uname(&names)
let host = HostIdentity(
    nodename: withUnsafeBytes(of: &names.nodename) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
)

func check() -> AccessDecision {
    let now = Int64(time(nil))
    do {
        let reader = try GrantReader(path: args[1])
        let grants = try reader.candidates(user: args[2], capability: .sudo, now: now)
        return AccessCheck.decide(
            AccessQuery(user: args[2], uid: uid, capability: .sudo, host: host, now: now),
            candidates: grants
        )
    } catch {
        return .deny(.noGrant)
    }
}

func microseconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) * 1e6 + Double(ts.tv_nsec) / 1e3
}

for _ in 0..<100 { _ = check() }
var times: [Double] = []
times.reserveCapacity(n)
var allowed = 0
for _ in 0..<n {
    let t0 = microseconds()
    if case .allow = check() { allowed += 1 }
    times.append(microseconds() - t0)
}
times.sort()
func fmt(_ v: Double) -> String {
    let r = (v * 10).rounded() / 10
    return "\(r)"
}
print(
    "check (verify + open + query + decide + close): median \(fmt(times[n / 2])) us  p90 \(fmt(times[n * 9 / 10])) us  min \(fmt(times[0])) us  (\(n) checks, \(allowed) allowed)"
)
