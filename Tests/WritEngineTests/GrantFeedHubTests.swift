import FakeServices
import Synchronization
import Testing
import WritCore
import WritEngine

/// Long-polls of hosts' grant feeds (`GrantFeedHub`): on PostgreSQL the hub runs on a second
/// store instance (a replica of its own) and wakes from the first's NOTIFY; on SQLite from the
/// process's own commits. The hub's slow poll is set to a minute, so only a notification can
/// answer a wait within the tests' deadlines.
@Suite("GrantFeedHub: long-polls woken by the hosts' own changes")
struct GrantFeedHubTests {
    let admin = Principal.host("root", on: "server-1")

    /// A writer engine, and a hub on another instance of the same store (PostgreSQL), or on the
    /// same instance (SQLite: notifications are in-process).
    static func setUp(
        _ kind: StoreKind
    ) async throws -> (
        writer: ApprovalEngine, hub: GrantFeedHub, running: Task<Void, Never>, stores: [any ApprovalStore]
    ) {
        let t = try await TestStore.make(kind)
        let first = try await t.open()
        let second = kind == .postgresql ? try await t.open() : first
        let clock = TestClock()
        let writer = ApprovalEngine(store: first, clock: { clock.now })
        let hub = GrantFeedHub(engine: ApprovalEngine(store: second, clock: { clock.now }), pollInterval: .seconds(60))
        let running = Task { await hub.run() }
        // Until the hub follows the store: a change before that is found by the waits' own reads.
        try await Task.sleep(for: .milliseconds(300))
        return (writer, hub, running, kind == .postgresql ? [first, second] : [first])
    }

    func grant(_ engine: ApprovalEngine, host: String) async throws -> EngineGrant {
        var r = sampleRequest(at: 1_000_000)
        r.host = host
        return try #require(
            try await engine.file(r, Filing(.approve(rule: "r", duration: 1800, evidence: nil)), by: admin).grant
        )
    }

    @Test("a wait returns when a grant for its host is issued, by another instance", arguments: StoreKind.allCases)
    func wakesOnItsHost(kind: StoreKind) async throws {
        let (writer, hub, running, stores) = try await Self.setUp(kind)
        let start = try await writer.grantFeedEnd()
        let clock = ContinuousClock()
        let began = clock.now
        let waiting = Task { try await hub.wait(host: "web-01", after: start, timeout: .seconds(30)) }
        let other = Task { try await hub.wait(host: "db-01", after: start, timeout: .seconds(2)) }
        // A host that knows itself by its full name hears of a grant to its short name.
        let qualified = Task { try await hub.wait(host: "db-02.example.com", after: start, timeout: .seconds(30)) }
        try await Task.sleep(for: .milliseconds(200))
        let g = try await grant(writer, host: "web-*")
        let answer = try await waiting.value
        #expect(answer.grants.map(\.id) == [g.id] && answer.cursor > start)
        // A hang catcher: the poll is a minute away and the wait's deadline 30 s.
        #expect(clock.now - began < .seconds(15))
        // db-01 is not woken by it: its wait runs out, empty, with the cursor past the grant.
        let short = try await grant(writer, host: "db-02")
        #expect(try await qualified.value.grants.map(\.id) == [short.id])
        let quiet = try await other.value
        #expect(quiet.grants.isEmpty && quiet.cursor >= answer.cursor && !quiet.more)
        running.cancel()
        await running.value
        for s in stores { await close(s) }
    }

    @Test("of 1,000 waits, one grant wakes exactly those whose host it covers", arguments: StoreKind.allCases)
    func wakesOnlyCovered(kind: StoreKind) async throws {
        let (writer, hub, running, stores) = try await Self.setUp(kind)
        let start = try await writer.grantFeedEnd()
        let woken = Woken()
        let waits = Task {
            await withTaskGroup(of: Void.self) { group in
                for i in 0..<1000 {
                    group.addTask {
                        let host = "host-\(i)"
                        if let a = try? await hub.wait(host: host, after: start, timeout: .seconds(120)),
                            !a.grants.isEmpty
                        {
                            woken.hosts.withLock { $0.append(host) }
                        }
                    }
                }
            }
        }
        for _ in 0..<300 where await hub.pending < 1000 { try await Task.sleep(for: .milliseconds(50)) }
        try #require(await hub.pending == 1000, "not all 1,000 waits are pending")
        _ = try await grant(writer, host: "host-5*")
        // host-5, host-50…59, host-500…599: 111 waits answered with the grant. The bounds only
        // catch a hang: a fresh clone's CI run, every suite at once on two cores after a 12-minute
        // build, once took over 10 s for the last 11 of these reads and for host-7's below.
        for _ in 0..<1200 where woken.hosts.withLock({ $0.count }) < 111 {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(woken.hosts.withLock { $0.count } == 111)
        #expect(await hub.pending == 889)
        // A grant for one named host (no wildcard: found by name, not by a scan), in another case.
        _ = try await grant(writer, host: "HOST-7")
        for _ in 0..<1200 where woken.hosts.withLock({ $0.count }) < 112 {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(woken.hosts.withLock { $0.last } == "host-7")
        #expect(await hub.pending == 888)
        // Stopping answers the rest now, empty.
        await hub.shutdown()
        await waits.value
        #expect(woken.hosts.withLock { Set($0) }.count == 112)
        #expect(await hub.pending == 0)
        running.cancel()
        await running.value
        for s in stores { await close(s) }
    }
}

extension GrantFeedHubTests {
    @Test(
        "a host disabled while it waits is answered at once; a full hub refuses; a stopped one answers now",
        arguments: StoreKind.allCases
    )
    func hostChangesAndLimits(kind: StoreKind) async throws {
        let t = try await TestStore.make(kind)
        let first = try await t.open()
        let second = kind == .postgresql ? try await t.open() : first
        let writer = ApprovalEngine(store: first)
        // Enrolled before the hub follows the store: the enrollment's own notification ("the host
        // changed") would otherwise end a wait that began before it arrived.
        let token = try await writer.createEnrollment(host: "web-01", by: admin).token
        _ = try await writer.enroll(token: token, keyFingerprint: String(repeating: "a", count: 64))
        let hub = GrantFeedHub(engine: ApprovalEngine(store: second), pollInterval: .seconds(60), maxWaiters: 2)
        let running = Task { await hub.run() }
        try await Task.sleep(for: .milliseconds(300))
        let start = try await writer.grantFeedEnd()
        let clock = ContinuousClock()
        let began = clock.now
        let waiting = Task { try await hub.wait(host: "web-01", after: start, timeout: .seconds(30)) }
        let other = Task { try await hub.wait(host: "db-01", after: start, timeout: .seconds(30)) }
        // Both pending (bounded: a wait that ended early fails the test, not hangs it).
        for _ in 0..<500 where await hub.pending < 2 { try await Task.sleep(for: .milliseconds(20)) }
        try #require(await hub.pending == 2, "the two waits are not both pending")
        // Full: a third wait is refused, so that its caller pauses rather than comes straight back.
        await #expect(throws: EngineError.self) {
            _ = try await hub.wait(host: "db-02", after: start, timeout: .seconds(1))
        }
        _ = try await writer.setHost("web-01", enabled: false, by: admin)
        let answer = try await waiting.value
        #expect(answer.grants.isEmpty && clock.now - began < .seconds(15))  // not its 30 s deadline
        #expect(await hub.pending == 1)
        // Stopped: pending and later waits are answered at once, with the cursor they came with.
        await hub.shutdown()
        #expect(try await other.value.cursor == start)
        #expect(try await hub.wait(host: "db-03", after: start, timeout: .seconds(30)) == ([], start, false))
        running.cancel()
        await running.value
        await close(first)
        if kind == .postgresql { await close(second) }
    }
}

/// The hosts whose waits were answered with a grant.
final class Woken: Sendable {
    let hosts = Mutex<[String]>([])
}

/// A store that counts its transactions: what a wait costs the store.
final class CountingStore: ApprovalStore {
    let base: any ApprovalStore
    let count = Mutex(0)

    init(_ base: any ApprovalStore) { self.base = base }

    var kind: String { base.kind }
    var transactions: Int { count.withLock { $0 } }

    func transaction<T: Sendable>(
        _ body: @Sendable (any StoreTransaction) async throws(EngineError) -> T
    ) async throws(EngineError) -> T {
        count.withLock { $0 += 1 }
        return try await base.transaction(body)
    }

    func followChanges(_ onChange: @escaping @Sendable (String) async -> Void) async throws(EngineError) {
        try await base.followChanges(onChange)
    }

    func close() async { await base.close() }
}

extension GrantFeedHubTests {
    @Test(
        "a wait that starts where the hub stands costs no read; its empty answer moves to where the hub stands",
        arguments: StoreKind.allCases
    )
    func quietWaitsCostNoRead(kind: StoreKind) async throws {
        let t = try await TestStore.make(kind)
        let first = try await t.open()
        let counted = CountingStore(kind == .postgresql ? try await t.open() : first)
        let writer = ApprovalEngine(store: first)
        let hub = GrantFeedHub(engine: ApprovalEngine(store: counted), pollInterval: .seconds(60))
        let running = Task { await hub.run() }
        let start = try await writer.grantFeedEnd()
        try await Task.sleep(for: .milliseconds(300))
        // A wait at the hub's position, nothing written: no transaction from the wait's start to
        // its end (the hub itself reads nothing either: no change, its poll a minute away).
        let before = counted.transactions
        let quiet = try await hub.wait(host: "db-01", after: start, timeout: .milliseconds(500))
        #expect(quiet == ([], start, false))
        #expect(counted.transactions == before, "a quiet wait cost \(counted.transactions - before) transaction(s)")

        // Another host's grant during a wait: the hub reads it, the wait is not woken, and its
        // empty answer ends past the grant (the agent's next wait starts where the hub stands).
        let waiting = Task { try await hub.wait(host: "db-01", after: start, timeout: .seconds(2)) }
        try await Task.sleep(for: .milliseconds(200))
        _ = try await grant(writer, host: "web-01")
        let end = try await writer.grantFeedEnd()
        let moved = try await waiting.value
        #expect(moved.grants.isEmpty && moved.cursor == end, "cursor \(moved.cursor), feed end \(end)")
        // And a grant for the host is still delivered to a wait that began there.
        let next = Task { try await hub.wait(host: "db-01", after: moved.cursor, timeout: .seconds(30)) }
        try await Task.sleep(for: .milliseconds(200))
        let g = try await grant(writer, host: "db-*")
        #expect(try await next.value.grants.map(\.id) == [g.id])
        running.cancel()
        await running.value
        await close(first)
        if kind == .postgresql { await close(counted) }
    }
}
