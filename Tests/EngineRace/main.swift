// writ-engine-race: one approval engine instance in its own process, on a PostgreSQL (or
// SQLite) store, driven by its parent one command per line on stdin, one answer per line on
// stdout. WritEngineTests runs two of these to race engines in separate processes.
//
//   writ-engine-race --pg SOCKET_DIR DATABASE USER      or      writ-engine-race --sqlite PATH
//
// Commands:
//   approve ID USER     → "granted G" | "recorded" | "refused MESSAGE"
//   tick NOW            → "ended N expired M"
//   hold NOW            → claims due grants in a transaction, prints "held N", and never ends it
//                         (the parent kills the process: its claims must go to the other)
//   enroll TOKEN        → "enrolled HOST" | "refused MESSAGE"
import Glibc
import WritEngine
import WritEnginePostgres

let args = Array(CommandLine.arguments.dropFirst())
func fail(_ message: String) -> Never {
    let text = "writ-engine-race: \(message)\n"
    _ = text.withCString { write(2, $0, strlen($0)) }
    exit(2)
}

let store: any ApprovalStore
do {
    let (opened, rest) = try await PostgresApprovalStore.open(arguments: args[...], label: "writ-engine-race")
    guard rest.isEmpty else { fail("usage: writ-engine-race --pg SOCKET_DIR DATABASE USER | --sqlite PATH") }
    store = opened
} catch { fail(error.description) }

/// The engine's clock is the parent's: `tick NOW` sets it.
final class Clock: @unchecked Sendable {
    var now: Int64 = 0
}
let clock = Clock()
let engine = ApprovalEngine(store: store, clock: { clock.now })

/// One answer line, sent at once (stdout is a pipe: buffered otherwise).
func answer(_ line: String) {
    print(line)
    fflush(nil)
}

answer("ready")
while let line = readLine() {
    let words = line.split(separator: " ").map(String.init)
    switch (words.first, words.count) {
    case ("approve", 3):
        do {
            let out = try await engine.decide(words[1], .approve(comment: ""), by: .host(words[2], on: "race"))
            answer(out.grant.map { "granted \($0.id)" } ?? "recorded")
        } catch .refused(let why) {
            answer("refused \(why)")
        } catch {
            answer("error \(error.description)")
        }
    case ("enroll", 2):
        do {
            answer(
                "enrolled \(try await engine.enroll(token: words[1], keyFingerprint: String(repeating: "a", count: 64)).name)"
            )
        } catch .refused(let why) {
            answer("refused \(why)")
        } catch {
            answer("error \(error.description)")
        }
    case ("tick", 2):
        clock.now = Int64(words[1]) ?? 0
        do {
            let report = try await engine.tick(batch: 50)
            answer("ended \(report.endedGrants.count) expired \(report.expiredRequests.count)")
        } catch {
            answer("error \(error.description)")
        }
    case ("hold", 2):
        let now = Int64(words[1]) ?? 0
        do {
            _ = try await store.transaction { (tx) throws(EngineError) -> Int in
                let claimed = try await tx.claimDueGrants(now: now, limit: 1000)
                answer("held \(claimed.count)")
                while true { sleep(60) }
            }
        } catch {
            answer("error \(error.description)")
        }
    default:
        answer("error unknown command: \(line)")
    }
}
