import FakeServices
import Glibc
import Testing
import WritAudit
import WritCore
import WritEngine
import WritStore

/// writd as a fleet's agent, as a process of its own with its own store, state, socket and
/// audit log, against writ-server processes on a private PostgreSQL database.
@Suite("writd as an agent: grants.db follows the server", .serialized)
struct AgentTests {
    @Test(
        "an approval on the server reaches the agent's grants.db; a revocation through another replica when one dies; the server back"
    )
    func followsTheServer() async throws {
        let fleet = try await Fleet.make(.postgresql)
        let one = try await fleet.start()
        let two = try await fleet.start()
        defer {
            one.stop()
            two.stop()
        }
        let agent = try await AgentProcess.enroll("web-01", fleet: fleet, servers: [one, two])
        defer { agent.stop() }
        let engine = try await fleet.engine()
        defer { Task { await engine.store.close() } }
        // The agent has taken its snapshot once its cursor is in writd.db; a grant for an
        // account this host has (nobody: every Debian host has it).
        try await agent.waitUntilSynced()

        let issued = ContinuousClock.now
        let grant = try await issueGrant(engine, host: "web-*", user: "nobody")
        let local = try await agent.waitForGrant(grant.id) { $0 != nil }
        let took = ContinuousClock.now - issued
        #expect(took < .seconds(5), "in grants.db after \(took)")
        let g = try #require(local)
        #expect(g.user == "nobody" && g.uid == 65534 && g.capability == .sudo && g.host == "web-*")
        // Local times: skew and delay can only shorten (same clock here: within a second).
        #expect(g.expiresAt <= grant.expiresAt && g.expiresAt >= grant.expiresAt - 1)
        #expect(g.notBefore <= grant.notBefore && g.notBefore >= grant.notBefore - 1)

        // The replica the agent polls is killed mid-poll: the agent moves to the other one, and
        // a revocation reaches it there.
        one.kill()
        let killed = ContinuousClock.now
        _ = try await engine.revoke(grant: grant.id, by: .host("bob", on: "admin-01"), reason: "done")
        let revoked = try await agent.waitForGrant(grant.id) { $0?.revokedAt != nil }
        #expect(revoked?.revokedBy == "bob")
        let moved = ContinuousClock.now - killed
        #expect(moved < .seconds(10), "revocation applied \(moved) after the replica died")

        // Both gone, then one back on its port: the agent keeps polling, finds it, and what
        // changed meanwhile is applied.
        two.kill()
        let later = try await issueGrant(engine, host: "*", user: "nobody")
        try await Task.sleep(for: .seconds(1))
        #expect(try await agent.waitForGrant(later.id, timeout: .milliseconds(1)) { _ in false } == nil)
        let back = try await fleet.start(port: one.port)
        defer { back.stop() }
        let arrived = try await agent.waitForGrant(later.id, timeout: .seconds(60)) { $0 != nil }
        #expect(arrived?.id == later.id)

        // The host's audit records (grant.issue, grant.revoke) are on the server, chain and all:
        // its head is the host's last record (read again each time: the host may append more).
        var head: HostAuditHead?
        var records: [String] = []
        let giveUp = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < giveUp {
            records = try AuditLog(path: agent.dir + "/audit.log").lines().filter { !$0.isEmpty }
            head = try await engine.hostAuditHead("web-01")
            if let last = records.last, head?.seq == AuditLine.chainFields(last)?.seq { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let last = try #require(records.last)
        #expect(
            head?.seq == AuditLine.chainFields(last)?.seq && head?.hash == AuditChain.hash(last),
            "head \(String(describing: head)), local \(records.count) records"
        )
        #expect(records.contains { $0.contains("\"event\":\"grant.revoke\"") })
    }
}

/// A `writd run --server …` in a directory of its own.
struct AgentProcess: Sendable {
    let child: ChildProcess
    let dir: String

    static func enroll(_ host: String, fleet: Fleet, servers: [ServerProcess]) async throws -> AgentProcess {
        let dir = try TempDir.make()
        chmod(dir, 0o755)  // writd's socket is here: users must reach it
        let writd = try ChildProcess.built("writd")
        let t = try await fleet.token(host)
        let enrolled = try await ChildProcess.run([
            writd, "enroll", "--server", servers[0].url, "--token", t.token, "--ca-sha256", t.caSHA256,
            "--agent-dir", dir + "/agent",
        ])
        guard enrolled.status == 0 else { throw HarnessError("writd enroll: \(enrolled.output)") }
        var args = [
            writd, "run", "--agent-dir", dir + "/agent", "--store", dir + "/grants.db", "--state", dir + "/writd.db",
            "--audit-log", dir + "/audit.log", "--socket", dir + "/writd.sock", "--policy", dir + "/policy.yaml",
            "--integrations", dir + "/integrations.yaml", "--log-level", "warning",
        ]
        for s in servers { args += ["--server", s.url] }
        return AgentProcess(child: try ChildProcess.spawn(args), dir: dir)
    }

    func stop() {
        child.signal(SIGTERM)
        child.wait()
    }

    /// Waits until the agent's first snapshot is applied (its cursor is stored).
    func waitUntilSynced(timeout: Duration = .seconds(30)) async throws {
        let giveUp = ContinuousClock.now + timeout
        while ContinuousClock.now < giveUp {
            if let state = try? StoreFileReader.meta(dir + "/writd.db", key: "fleet_cursor"), state != nil { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw HarnessError("the agent took no snapshot in \(timeout)")
    }

    /// Polls grants.db until `done` holds for the grant (or the time is up); the grant then.
    func waitForGrant(
        _ id: String,
        timeout: Duration = .seconds(30),
        until done: (Grant?) -> Bool
    ) async throws -> Grant? {
        let giveUp = ContinuousClock.now + timeout
        var last: Grant?
        while ContinuousClock.now < giveUp {
            if let store = try? GrantStore(path: dir + "/grants.db") {
                last = try? store.grant(id: id)
                if done(last) { return last }
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        if timeout > .milliseconds(100) {
            Issue.record("grant \(id) did not reach the expected state in \(timeout): \(String(describing: last))")
        }
        return last
    }
}

/// writd.db's meta table, read with SQLite directly.
enum StoreFileReader {
    static func meta(_ path: String, key: String) throws -> String? {
        let db = try SQLiteDatabase(path: path, readOnly: true, create: false, busyTimeoutMs: 2000)
        let s = try db.prepare("SELECT value FROM meta WHERE key = ?1")
        try s.bind(1, key)
        return try s.step() ? s.string(0) : nil
    }
}
