import FakeServices
import Glibc
import Testing
import WritAgent
import WritAudit
import WritCore
import WritEngine
import WritFleetAPI
import WritServer
import X509

/// writ-server as a process (the debug build), driven through the agent's own client over TLS
/// with client certificates: the contract of Sources/WritFleetAPI/openapi.yaml end to end.
@Suite("writ-server: enrollment, the host from the certificate, the grant feed, audit", .serialized)
struct ServerTests {
    @Test(
        "enrollment: the CA is pinned, a token works once and names the host, whatever the request says",
        arguments: StoreKind.allCases
    )
    func enrollment(kind: StoreKind) async throws {
        let fleet = try await Fleet.make(kind)
        let server = try await fleet.start()
        defer { server.stop() }
        let t = try await fleet.token("web-01")
        // A CA that is not the one pinned: nothing is sent, and the token is still good.
        await #expect(throws: AgentError.self) {
            _ = try await FleetClient.enroll(
                server: server.url,
                token: t.token,
                caSHA256: String(repeating: "0", count: 64),
                localName: "web-01"
            )
        }
        // The request names another host: the certificate names the token's.
        let credentials = try await FleetClient.enroll(
            server: server.url,
            token: t.token,
            caSHA256: t.caSHA256,
            localName: "db-01"
        )
        #expect(credentials.host == "web-01")
        let certificate = try Certificate(pemEncoded: credentials.certificatePEM)
        #expect(FleetPKI.commonName(certificate) == "web-01")
        #expect(try certificate.extensions.extendedKeyUsage?.contains(.clientAuth) == true)
        // Once only.
        do {
            _ = try await FleetClient.enroll(
                server: server.url,
                token: t.token,
                caSHA256: t.caSHA256,
                localName: "web-01"
            )
            Issue.record("a spent token enrolled again")
        } catch {
            guard case .refused = error as? AgentError else { throw error }
        }
        // The credentials work, and the new host has no grants.
        let client = try FleetClient(server: server.url, caPEM: credentials.caPEM, credentials: credentials)
        defer { Task { await client.shutdown() } }
        #expect(try await client.snapshot().value.grants.isEmpty)
        // Without a certificate, agent routes are refused.
        let anonymous = try FleetClient(server: server.url, caPEM: credentials.caPEM, credentials: nil)
        defer { Task { await anonymous.shutdown() } }
        do {
            _ = try await anonymous.snapshot()
            Issue.record("an agent route answered without a certificate")
        } catch {
            guard case .refused = error as? AgentError else { throw error }
        }
    }

    @Test(
        "a host reads only its own grants; disabled or enrolled again, its old credentials are refused at once",
        arguments: StoreKind.allCases
    )
    func hostFromCertificate(kind: StoreKind) async throws {
        let fleet = try await Fleet.make(kind)
        let server = try await fleet.start()
        defer { server.stop() }
        let (_, a) = try await fleet.enroll("web-01", server: server)
        let (_, b) = try await fleet.enroll("web-02", server: server)
        defer {
            Task {
                await a.shutdown()
                await b.shutdown()
            }
        }
        let engine = try await fleet.engine()
        defer { Task { await engine.store.close() } }
        let grant = try await issueGrant(engine, host: "web-02")
        #expect(try await a.snapshot().value.grants.isEmpty)
        #expect(try await b.snapshot().value.grants.map(\.id) == [grant.id])

        // Disabled: refused at the next call; enabled again: served.
        #expect(try await fleet.admin(["host", "disable", "web-01"]).status == 0)
        #expect(isRefused(await agentError { _ = try await a.snapshot() }))
        #expect(try await fleet.admin(["host", "enable", "web-01"]).status == 0)
        #expect(try await a.snapshot().value.grants.isEmpty)

        // web-02 enrolls again (a new key): the first enrollment's certificate is refused.
        let (_, b2) = try await fleet.enroll("web-02", server: server)
        defer { Task { await b2.shutdown() } }
        #expect(isRefused(await agentError { _ = try await b.snapshot() }))
        #expect(try await b2.snapshot().value.grants.map(\.id) == [grant.id])
    }

    @Test("renewal: a new certificate for the same key; another key is refused", arguments: [StoreKind.sqlite])
    func renewal(kind: StoreKind) async throws {
        let fleet = try await Fleet.make(kind)
        let server = try await fleet.start()
        defer { server.stop() }
        let (credentials, client) = try await fleet.enroll("web-01", server: server)
        defer { Task { await client.shutdown() } }
        let renewed = try await client.renew(credentials)
        #expect(renewed.certificatePEM != credentials.certificatePEM && renewed.keyPEM == credentials.keyPEM)
        let old = try Certificate(pemEncoded: credentials.certificatePEM)
        let new = try Certificate(pemEncoded: renewed.certificatePEM)
        #expect(new.publicKey == old.publicKey && FleetPKI.commonName(new) == "web-01")
        let next = try FleetClient(server: server.url, caPEM: renewed.caPEM, credentials: renewed)
        defer { Task { await next.shutdown() } }
        #expect(try await next.snapshot().value.grants.isEmpty)
        // A renewal that asks for another key: refused (a new key needs a new enrollment).
        var other = credentials
        other.keyPEM = FleetPKI.makeKey()
        let refusal = await agentError { _ = try await client.renew(other) }
        #expect(refusal?.description.contains("keeps the host's key") == true, "\(String(describing: refusal))")
    }

    @Test(
        "the feed: an empty answer after the wait, 'take a new snapshot' for a cursor it cannot follow",
        arguments: StoreKind.allCases
    )
    func feedEdges(kind: StoreKind) async throws {
        let fleet = try await Fleet.make(kind)
        let server = try await fleet.start()
        defer { server.stop() }
        let (_, client) = try await fleet.enroll("web-01", server: server)
        defer { Task { await client.shutdown() } }
        let snapshot = try await client.snapshot()
        let started = ContinuousClock.now
        let empty = try await client.changes(after: snapshot.value.cursor, wait: 1)
        #expect(empty.value.grants.isEmpty && !empty.value.more)
        #expect(ContinuousClock.now - started >= .milliseconds(900))
        // Every answer carries the server's clock, within the local send and receive times.
        #expect(empty.value.serverTimeMs >= empty.sentAt - 1000 && empty.value.serverTimeMs <= empty.receivedAt + 1000)
        for cursor in ["1.999999", "x", "1.-1", "2.0"] {
            let refusal = await agentError { _ = try await client.changes(after: cursor, wait: 0) }
            guard case .gone = refusal else {
                Issue.record("cursor \(cursor): \(String(describing: refusal))")
                continue
            }
        }
    }

    @Test(
        "a grant written by another instance wakes a poll held by a replica, and a second replica serves the same fleet"
    )
    func feedWakes() async throws {
        let fleet = try await Fleet.make(.postgresql)
        let one = try await fleet.start()
        let two = try await fleet.start()
        defer {
            one.stop()
            two.stop()
        }
        // Enrolled through replica one, polling replica two: one CA, one store.
        let t = try await fleet.token("web-01")
        let credentials = try await FleetClient.enroll(
            server: one.url,
            token: t.token,
            caSHA256: t.caSHA256,
            localName: "web-01"
        )
        let client = try FleetClient(server: two.url, caPEM: credentials.caPEM, credentials: credentials)
        defer { Task { await client.shutdown() } }
        let cursor = try await client.snapshot().value.cursor
        let engine = try await fleet.engine()
        defer { Task { await engine.store.close() } }
        let poll = Task { try await client.changes(after: cursor, wait: 30) }
        try await Task.sleep(for: .milliseconds(300))
        let issued = ContinuousClock.now
        let grant = try await issueGrant(engine, host: "web-*")
        let answer = try await poll.value
        let took = ContinuousClock.now - issued
        #expect(answer.value.grants.map(\.id) == [grant.id])
        // Woken by the notification, not by the end of the 30 s wait (the hub's safety poll is 5 s).
        #expect(took < .seconds(4), "answered after \(took)")
        // And revocation is a change too.
        let next = Task { try await client.changes(after: answer.value.cursor, wait: 30) }
        try await Task.sleep(for: .milliseconds(300))
        _ = try await engine.revoke(grant: grant.id, by: .host("bob", on: "admin-01"), reason: "done")
        let revoked = try await next.value
        #expect(revoked.value.grants.first?.revokedAt != nil)
    }

    @Test("SIGTERM answers pending polls at once, and the server exits cleanly")
    func sigterm() async throws {
        let fleet = try await Fleet.make(.sqlite)
        let server = try await fleet.start()
        let (_, client) = try await fleet.enroll("web-01", server: server)
        defer { Task { await client.shutdown() } }
        let cursor = try await client.snapshot().value.cursor
        let poll = Task { try await client.changes(after: cursor, wait: 30) }
        try await Task.sleep(for: .milliseconds(500))
        let stopped = ContinuousClock.now
        server.child.signal(SIGTERM)
        let answer = try await poll.value
        #expect(answer.value.grants.isEmpty)
        let answered = ContinuousClock.now - stopped
        #expect(answered < .seconds(10), "the poll waited for its own end: \(answered)")
        #expect(server.child.wait() == 0)
    }

    @Test("SIGTERM ends the server within seconds while its database is away")
    func sigtermDatabaseAway() async throws {
        let fleet = try await Fleet.make(.postgresql)
        let server = try await fleet.start()
        let database = try #require(fleet.database)
        // The database goes away: no new connection, and the open ones are ended.
        try await TestCluster.shared.psql("writ", "ALTER DATABASE \(database) ALLOW_CONNECTIONS false")
        try await TestCluster.shared.psql(
            "writ",
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '\(database)'"
        )
        // The due work and the hub now wait for a connection that does not come.
        try await Task.sleep(for: .seconds(2))
        server.child.signal(SIGTERM)
        let status = await server.child.exited(within: .seconds(30))
        if status == nil { server.kill() }
        // Before, it waited for the database without end (systemd kills after 90 s).
        #expect(status == 0, "writ-server did not end within 30 s of SIGTERM")
    }

    @Test(
        "a host's audit upload: stored once, a gap is a conflict, the head is the host's",
        arguments: [StoreKind.sqlite]
    )
    func audit(kind: StoreKind) async throws {
        let fleet = try await Fleet.make(kind)
        let server = try await fleet.start()
        defer { server.stop() }
        let (_, client) = try await fleet.enroll("web-01", server: server)
        defer { Task { await client.shutdown() } }
        let lines = hostChain("alice", count: 6, at: 1001)
        #expect(try await client.auditHead().seq == 0)
        #expect(try await client.uploadAudit(Array(lines[0..<3])).seq == 3)
        #expect(try await client.uploadAudit(Array(lines[0..<3])).seq == 3)
        let refusal = await agentError { _ = try await client.uploadAudit([lines[4]]) }
        guard case .conflict = refusal else {
            Issue.record("a gap was not a conflict: \(String(describing: refusal))")
            return
        }
        let head = try await client.uploadAudit(Array(lines[3...]))
        #expect(head.seq == 6 && head.hash == AuditChain.hash(lines[5]))
        #expect(try await client.auditHead().seq == 6)

        // The first upload's start is in the server's own chain; the oldest records deleted from
        // the store show in verify, though what is left is a whole chain up to its head.
        let anchor = try await fleet.admin(["audit", "show", "--json"])
        #expect(anchor.output.contains("\"event\":\"host.audit_anchor\""), "\(anchor.output)")
        #expect(anchor.output.contains("\"first_seq\":\"1\""), "\(anchor.output)")
        #expect(try await fleet.admin(["audit", "verify", "--host", "web-01"]).status == 0)
        try await fleet.tamper("DELETE FROM host_audit WHERE host = 'web-01' AND seq <= 2")
        let verified = try await fleet.admin(["audit", "verify", "--host", "web-01"])
        #expect(verified.status == 1)
        #expect(
            verified.output.contains("the chain starts at record 3, but its first upload began at record 1"),
            "\(verified.output)"
        )
    }

    @Test("one host holds at most 4 long-polls; a CA text with two certificates is refused by the agent")
    func bounds() async throws {
        let fleet = try await Fleet.make(.sqlite)
        let server = try await fleet.start()
        defer { server.stop() }
        let (credentials, client) = try await fleet.enroll("web-01", server: server)
        defer { Task { await client.shutdown() } }
        let cursor = try await client.snapshot().value.cursor
        let polls = (0..<4).map { _ in Task { try await client.changes(after: cursor, wait: 5) } }
        try await Task.sleep(for: .milliseconds(500))
        let fifth = await agentError { _ = try await client.changes(after: cursor, wait: 5) }
        guard case .busy(let why) = fifth else {
            Issue.record("a fifth wait of one host: \(String(describing: fifth))")
            return
        }
        #expect(why.contains("waits pending already"))
        for p in polls { _ = try await p.value }
        // Two certificates in the CA text: refused, whatever the first one is.
        let other = try FleetCA.make().certificate
        let twice = credentials.caPEM + "\n" + FleetPKI.pem(other)
        #expect(throws: AgentError.self) { _ = try FleetClient(server: server.url, caPEM: twice, credentials: nil) }
    }
}

func isRefused(_ error: AgentError?) -> Bool {
    if case .refused = error { return true }
    return false
}

/// The agent error `body` throws; nil when it throws none (or another kind).
func agentError(_ body: () async throws -> Void) async -> AgentError? {
    do {
        try await body()
        return nil
    } catch {
        return error as? AgentError
    }
}
