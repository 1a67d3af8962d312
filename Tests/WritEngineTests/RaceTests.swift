import FakeServices
import Glibc
import Synchronization
import Testing
import WritAudit
import WritCore
import WritEngine
import WritEnginePostgres

/// Engine instances in separate processes (`writ-engine-race`) racing on one store: what one
/// actor guaranteed on one host must hold when the database is all they share.
@Suite("Engines in two processes race on one store", .serialized)
struct RaceTests {
    static let rounds = 1000

    @Test("both approve the same request at once, every round: exactly one grant each", arguments: StoreKind.allCases)
    func approvals(kind: StoreKind) async throws {
        let t = try await TestStore.make(kind)
        let store = try await t.open()
        let clock = TestClock()
        let engine = ApprovalEngine(store: store, clock: { clock.now })
        // Half the rounds need one approval (the second approver must be refused), half need
        // two (both must count: a lost update would leave the request pending forever).
        var ids: [String] = []
        for i in 0..<Self.rounds {
            ids.append(
                try await engine.file(sampleRequest(at: clock.now, required: i % 2 + 1), by: .host("alice", on: "h"))
                    .request.core.id
            )
        }
        let a = try await RaceProcess.start(try await t.raceArguments())
        let b = try await RaceProcess.start(try await t.raceArguments())
        // A reader follows the audit chain as a change feed while both write: each read after its
        // cursor must continue at cursor + 1 (a record that committed late would show as a gap
        // skipped for good), and it must end with every record. It follows the grant feed too:
        // every grant must be found, once (none is written twice here).
        let reader = try await t.open()
        let writing = Mutex(true)
        let following = Task { () throws -> (read: Int, gaps: [String], grants: [String]) in
            var cursor: Int64 = 0
            var read = 0
            var gaps: [String] = []
            var grantCursor: Int64 = 0
            var grants: [String] = []
            while true {
                let grantsAfter = grantCursor
                let changes = try await reader.transaction { (tx) throws(EngineError) in
                    try await tx.grantChanges(after: grantsAfter, limit: 500)
                }
                grants += changes.map(\.grant.id)
                grantCursor = changes.last?.position ?? grantCursor
                let done = writing.withLock { !$0 }
                let after = cursor
                let lines = try await reader.transaction { (tx) throws(EngineError) in
                    try await tx.auditLines(after: after, limit: 500)
                }
                for line in lines {
                    let seq = AuditLine.chainFields(line)?.seq ?? -1
                    if seq != cursor + 1 { gaps.append("after \(cursor) came \(seq)") }
                    cursor = seq
                    read += 1
                }
                if done && lines.isEmpty && changes.isEmpty { return (read, gaps, grants) }
                try await Task.sleep(for: .milliseconds(2))
            }
        }
        var grantsSeen = 0
        for (i, id) in ids.enumerated() {
            // Both lines are written before either answer is read: the two decisions overlap.
            try a.send("approve \(id) bob")
            try b.send("approve \(id) carol")
            let answers = [try await a.receive(), try await b.receive()]
            let granted = answers.filter { $0.hasPrefix("granted ") }.count
            if i % 2 == 0 {
                #expect(granted == 1, "round \(i): \(answers)")
                #expect(answers.contains { $0.hasPrefix("refused ") }, "round \(i): \(answers)")
            } else {
                #expect(granted == 1 && answers.contains("recorded"), "round \(i): \(answers)")
            }
            grantsSeen += granted
        }
        a.stop()
        b.stop()
        writing.withLock { $0 = false }
        let followed = try await following.value
        #expect(grantsSeen == Self.rounds)
        let lines = try await auditLines(store)
        #expect(lines.filter { AuditLine.field("event", in: $0) == "grant.issue" }.count == Self.rounds)
        #expect(isIntact(AuditChain.verify(lines)))
        #expect(followed.gaps.isEmpty, "\(followed.gaps.prefix(5))")
        #expect(followed.read == lines.count)
        let stored = try await store.transaction { (tx) throws(EngineError) in try await tx.liveGrants(now: 0).grants }
        #expect(followed.grants.count == Self.rounds && Set(followed.grants) == Set(stored.map(\.id)))
        await close(reader)
        await close(store)
    }

    @Test("both tick over 1,000 due grants: each ended once and audited once", arguments: StoreKind.allCases)
    func ticks(kind: StoreKind) async throws {
        let t = try await TestStore.make(kind)
        let store = try await t.open()
        let clock = TestClock()
        let engine = ApprovalEngine(store: store, clock: { clock.now })
        var grants: Set<String> = []
        for _ in 0..<Self.rounds {
            let g = try await engine.file(
                sampleRequest(at: clock.now, duration: 60),
                Filing(.approve(rule: "r", duration: 60, evidence: nil)),
                by: .host("alice", on: "h")
            )
            grants.insert(try #require(g.grant).id)
        }
        let a = try await RaceProcess.start(try await t.raceArguments())
        let b = try await RaceProcess.start(try await t.raceArguments())
        let due = clock.now + 61
        try a.send("tick \(due)")
        try b.send("tick \(due)")
        let answers = [try await a.receive(), try await b.receive()]
        a.stop()
        b.stop()
        let ended = answers.compactMap { $0.split(separator: " ").dropFirst().first.flatMap { Int($0) } }
        #expect(ended.reduce(0, +) == Self.rounds, "\(answers)")
        let lines = try await auditLines(store)
        let expiries = lines.filter { AuditLine.field("event", in: $0) == "grant.expire" }.compactMap {
            AuditLine.field("grant", in: $0)
        }
        #expect(expiries.count == Self.rounds)
        #expect(Set(expiries) == grants)
        #expect(isIntact(AuditChain.verify(lines)))
        await close(store)
    }

    @Test("two hosts race for one enrollment token, 200 times: one of them enrolls", arguments: StoreKind.allCases)
    func enrollmentRace(kind: StoreKind) async throws {
        let t = try await TestStore.make(kind)
        let store = try await t.open()
        let engine = ApprovalEngine(store: store, clock: { 1_000 })
        let admin = Principal(user: "root", route: .host("server-1"))
        let a = try await RaceProcess.start(try await t.raceArguments())
        let b = try await RaceProcess.start(try await t.raceArguments())
        for i in 0..<200 {
            let token = try await engine.createEnrollment(host: "host-\(i)", by: admin).token
            try a.send("enroll \(token)")
            try b.send("enroll \(token)")
            let answers = [try await a.receive(), try await b.receive()]
            #expect(answers.filter { $0 == "enrolled host-\(i)" }.count == 1, "round \(i): \(answers)")
            #expect(answers.filter { $0.hasPrefix("refused ") }.count == 1, "round \(i): \(answers)")
        }
        a.stop()
        b.stop()
        let lines = try await auditLines(store)
        #expect(lines.filter { AuditLine.field("event", in: $0) == "host.enroll" }.count == 200)
        #expect(isIntact(AuditChain.verify(lines)))
        await close(store)
    }

    @Test("an instance killed while it holds claimed work: the other does that work")
    func killedInstance() async throws {
        let t = try await TestStore.make(.postgresql)
        let store = try await t.open()
        let clock = TestClock()
        let engine = ApprovalEngine(store: store, clock: { clock.now })
        for _ in 0..<100 {
            _ = try await engine.file(
                sampleRequest(at: clock.now, duration: 60),
                Filing(.approve(rule: "r", duration: 60, evidence: nil)),
                by: .host("alice", on: "h")
            )
        }
        let due = clock.now + 61
        let a = try await RaceProcess.start(try await t.raceArguments())
        let b = try await RaceProcess.start(try await t.raceArguments())
        try a.send("hold \(due)")
        #expect(try await a.receive() == "held 100")
        // A holds every due grant: B skips them rather than waiting or doing them twice.
        try b.send("tick \(due)")
        #expect(try await b.receive() == "ended 0 expired 0")
        a.kill()
        // The server rolls the dead session back a moment after its socket closes: until then
        // B still skips those rows. Within 10 s, B ends all 100, once.
        var ended = 0
        for _ in 0..<100 where ended < 100 {
            try b.send("tick \(due)")
            let answer = try await b.receive()
            ended += Int(answer.split(separator: " ").dropFirst().first ?? "") ?? 0
            if ended < 100 { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(ended == 100)
        b.stop()
        let lines = try await auditLines(store)
        #expect(lines.filter { AuditLine.field("event", in: $0) == "grant.expire" }.count == 100)
        #expect(isIntact(AuditChain.verify(lines)))
        await close(store)
    }
}

/// A `writ-engine-race` child: one command line in, one answer line out.
struct RaceProcess {
    let child: ChildProcess

    static func start(_ arguments: [String]) async throws -> RaceProcess {
        let r = RaceProcess(child: try ChildProcess.spawn([try ChildProcess.built("writ-engine-race")] + arguments))
        let ready = try await r.receive()
        guard ready == "ready" else { throw HarnessError("writ-engine-race did not start: \(ready)") }
        return r
    }

    func send(_ line: String) throws { try child.send(line) }
    func receive() async throws -> String { try await child.receiveLine() }
    func kill() {
        child.signal(SIGKILL)
        child.wait()
    }
    func stop() { child.finish() }
}

@Suite("PostgreSQL wakes other instances")
struct NotifyTests {
    @Test("a change committed by one instance reaches another's LISTEN at commit, not before")
    func notifyAtCommit() async throws {
        let t = try await TestStore.make(.postgresql)
        let writer = try await t.open()
        let follower = try #require(try await t.open() as? PostgresApprovalStore)
        let seen = Mutex<[String]>([])
        let following = Task {
            try await follower.followChanges { payload in seen.withLock { $0.append(payload) } }
        }
        // LISTEN is in place once a change made now arrives; file until one does (at most 10 s).
        let clock = TestClock()
        let engine = ApprovalEngine(store: writer, clock: { clock.now })
        var filed: [String] = []
        for _ in 0..<100 where seen.withLock({ $0.isEmpty }) {
            filed.append(
                try await engine.file(sampleRequest(at: clock.now), by: .host("alice", on: "h")).request.core.id
            )
            try await Task.sleep(for: .milliseconds(100))
        }
        let first = try #require(seen.withLock { $0.first })
        #expect(filed.map { "request:\($0)" }.contains(first))
        // Announced at commit, not before: a transaction that sleeps after its insert.
        let late = sampleRequest(at: clock.now)
        let seenBeforeCommit = try await writer.transaction { (tx) throws(EngineError) -> Bool in
            try await tx.insertRequest(late)
            try? await Task.sleep(for: .milliseconds(500))
            return seen.withLock { $0.contains("request:\(late.core.id)") }
        }
        #expect(!seenBeforeCommit)
        for _ in 0..<100 where !seen.withLock({ $0.contains("request:\(late.core.id)") }) {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(seen.withLock { $0.contains("request:\(late.core.id)") })
        filed.append(late.core.id)
        // Rolled back: never announced.
        let before = seen.withLock { $0.count }
        await #expect(throws: EngineError.self) {
            _ = try await writer.transaction { (tx) throws(EngineError) -> Int in
                try await tx.insertRequest(sampleRequest(at: clock.now))
                throw .refused("changed my mind")
            }
        }
        let approved = try await engine.decide(filed[0], .approve(comment: ""), by: .host("bob", on: "h"))
        let grant = try #require(approved.grant)
        for _ in 0..<100 where !seen.withLock({ $0.contains("grant:\(grant.id)") }) {
            try await Task.sleep(for: .milliseconds(50))
        }
        let after = seen.withLock { Array($0.dropFirst(before)) }
        #expect(after.contains("grant:\(grant.id)"))
        #expect(
            after.allSatisfy {
                $0 == "request:\(filed[0])" || $0 == "grant:\(grant.id)" || filed.map { "request:\($0)" }.contains($0)
            },
            "\(after)"
        )
        following.cancel()
        _ = await following.result
        await close(writer)
        await follower.shutdown()
    }
}
