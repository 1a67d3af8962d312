import FakeServices
import Logging
import PostgresNIO
import Testing
import WritAudit
import WritCore
import WritEngine
import WritEnginePostgres

/// The engine's behaviour, the same tests on both stores.
@Suite("ApprovalEngine on SQLite and PostgreSQL")
struct EngineStoreTests {
    let bob = Principal.host("bob", on: "web-01")
    let carol = Principal.host("carol", on: "web-02")
    let alice = Principal.host("alice", on: "web-01")

    /// A fresh store of `kind` and an engine on it, with a clock the test sets.
    static func engine(
        _ kind: StoreKind,
        flowMaxDuration: Int64? = nil
    ) async throws -> (
        any ApprovalStore, TestClock, ApprovalEngine
    ) {
        let store = try await TestStore.make(kind).open()
        let clock = TestClock()
        return (
            store, clock, ApprovalEngine(store: store, clock: { clock.now }, flowMaxDuration: { _ in flowMaxDuration })
        )
    }

    @Test(
        "a request is filed pending, approved once, and its grant names the user and host pattern",
        arguments: StoreKind.allCases
    )
    func approveIssuesOneGrant(kind: StoreKind) async throws {
        let (store, clock, engine) = try await Self.engine(kind)
        let filed = try await engine.file(sampleRequest(at: clock.now), by: alice)
        #expect(filed.request.core.state == .pending)
        #expect(filed.grant == nil)
        clock.now += 10
        let out = try await engine.decide(filed.request.core.id, .approve(comment: "ok"), by: bob)
        #expect(out.request.core.state == .approved)
        let grant = try #require(out.grant)
        #expect(grant.user == "alice" && grant.host == "web-*" && grant.runas == "root")
        #expect(grant.notBefore == clock.now && grant.expiresAt == clock.now + 1800)
        #expect(out.request.grantID == grant.id)
        // A second approval finds it decided.
        await #expect(throws: EngineError.self) {
            _ = try await engine.decide(filed.request.core.id, .approve(comment: ""), by: carol)
        }
        let lines = try await auditLines(store)
        #expect(lines.map { AuditLine.field("event", in: $0) } == ["request.create", "grant.issue", "request.approve"])
        #expect(AuditLine.field("via", in: lines[2]) == "host:web-01")
        #expect(isIntact(AuditChain.verify(lines)))
        await close(store)
    }

    @Test("a PostgreSQL that does not let the store in is an error that says so, within the open timeout")
    func unreachablePostgres() async throws {
        let socketDirectory = try await TestCluster.shared.directory()
        for (directory, database) in [(socketDirectory, TestCluster.databaseName()), ("/nonexistent", "writ")] {
            let started = ContinuousClock.now
            let failure = await Self.openFailure(
                PostgresApprovalStore.configuration(socketDirectory: directory, user: "writ", database: database)
            )
            #expect(
                failure?.contains("\(directory)/.s.PGSQL.5432 did not let writ on \(database) in within") == true,
                "\(failure ?? "the store opened")"
            )
            // Bounded by the timeout, not by the pool's retries (a hang catcher: the suites share two cores).
            #expect(ContinuousClock.now - started < .seconds(20))
        }
    }

    /// Why a PostgreSQL store on `configuration` fails to open within a second (nil: it opened).
    static func openFailure(_ configuration: PostgresClient.Configuration) async -> String? {
        // Quiet: the pool logs each failed try (info).
        var logger = Logger(label: "test")
        logger.logLevel = .error
        do {
            let store = try await PostgresApprovalStore(
                configuration: configuration,
                logger: logger,
                openTimeout: .seconds(1)
            )
            await store.shutdown()
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test("who may not decide is refused and nothing changes", arguments: StoreKind.allCases)
    func refusals(kind: StoreKind) async throws {
        let (store, clock, engine) = try await Self.engine(kind)
        let id = try await engine.file(sampleRequest(at: clock.now), by: alice).request.core.id
        for (who, decision) in [
            (alice, ApprovalEngine.Decision.approve(comment: "")),  // self-approval
            (Principal.host("mallory", on: "web-01"), .approve(comment: "")),
            (Principal.host("mallory", on: "web-01"), .deny(reason: "no")),
        ] {
            await #expect(throws: EngineError.self) { _ = try await engine.decide(id, decision, by: who) }
        }
        await #expect(throws: EngineError.notFound("no request r_nope")) {
            _ = try await engine.decide("r_nope", .approve(comment: ""), by: bob)
        }
        // The caller's own check runs on the locked request and stops the decision.
        await #expect(throws: EngineError.refused("not from Slack")) {
            _ = try await engine.decide(id, .approve(comment: ""), by: bob) { _ throws(EngineError) in
                throw .refused("not from Slack")
            }
        }
        let r = try await store.transaction { (tx) throws(EngineError) in try await tx.request(id, forUpdate: false) }
        #expect(r?.core.state == .pending && r?.core.approvals.isEmpty == true)
        #expect(try await auditLines(store).count == 1)
        await close(store)
    }

    @Test(
        "two steps: the second approval issues the grant; deny and cancel end a request",
        arguments: StoreKind.allCases
    )
    func stepsDenyCancel(kind: StoreKind) async throws {
        let (store, clock, engine) = try await Self.engine(kind)
        let steps = [
            AccessRequest.Step(name: "team", approvers: ["bob"], required: 1),
            AccessRequest.Step(name: "security", approvers: ["carol"], required: 1),
        ]
        let two = try await engine.file(sampleRequest(at: clock.now, steps: steps), by: alice).request.core.id
        let first = try await engine.decide(two, .approve(comment: ""), by: bob)
        #expect(first.grant == nil && first.request.core.currentStep == 1)
        let second = try await engine.decide(two, .approve(comment: ""), by: carol)
        #expect(second.grant != nil && second.request.core.state == .approved)

        let denied = try await engine.file(sampleRequest(at: clock.now), by: alice).request.core.id
        let d = try await engine.decide(denied, .deny(reason: "not now"), by: carol)
        #expect(d.request.core.state == .denied && d.grant == nil)

        let cancelled = try await engine.file(sampleRequest(at: clock.now), by: alice).request.core.id
        await #expect(throws: EngineError.self) { _ = try await engine.cancel(cancelled, by: bob) }
        #expect(try await engine.cancel(cancelled, by: alice).core.state == .cancelled)
        let events = try await auditLines(store).compactMap { AuditLine.field("event", in: $0) }
        #expect(events.filter { $0 == "request.step" }.count == 1)
        #expect(events.filter { $0 == "grant.issue" }.count == 1)
        #expect(events.contains("request.deny") && events.contains("request.cancel"))
        #expect(isIntact(AuditChain.verify(try await auditLines(store))))
        await close(store)
    }

    @Test(
        "a rule's decision at filing is written with the request, its grant and its records at once",
        arguments: StoreKind.allCases
    )
    func autoApprove(kind: StoreKind) async throws {
        let (store, clock, engine) = try await Self.engine(kind)
        let asked = Filing.Asked(flow: "ops", duration: 1800)
        let filing = Filing(
            .approve(rule: "oncall", duration: 1200, evidence: "on call: Primary, level 1"),
            asked: asked,
            conditionErrors: ["auto_approve rule night: no field ticket"]
        )
        let out = try await engine.file(sampleRequest(at: clock.now), filing, by: alice)
        #expect(out.request.core.state == .approved && out.request.autoRule == "oncall")
        let g = try #require(out.grant)
        #expect(g.approvedBy == "policy:oncall")
        #expect(g.expiresAt == clock.now + 1200)  // the rule's duration, not the one asked
        let stored = try await store.transaction { (tx) throws(EngineError) in
            (try await tx.request(out.request.core.id, forUpdate: false), try await tx.grant(g.id, forUpdate: false))
        }
        #expect(stored.0 == out.request)
        #expect(stored.1 == g)
        // One transaction, three records: what was asked (for replay), the grant, the rule's word.
        let lines = try await auditLines(store)
        #expect(
            lines.compactMap { AuditLine.field("event", in: $0) } == [
                "request.create", "grant.issue", "request.approve",
            ]
        )
        #expect(AuditLine.field("asked_flow", in: lines[0]) == "ops")
        #expect(AuditLine.field("asked_duration", in: lines[0]) == "1800")
        #expect(AuditLine.field("condition_errors", in: lines[0]) == "auto_approve rule night: no field ticket")
        #expect(AuditLine.field("evidence", in: lines[2]) == "on call: Primary, level 1")
        #expect(AuditLine.field("actor", in: lines[2]) == "policy:oncall")

        // A rule's denial at filing: no grant, the request denied, its record after the create.
        let denied = try await engine.file(
            sampleRequest(at: clock.now),
            Filing(.deny(rule: "weekend", message: "no changes at the weekend")),
            by: alice
        )
        #expect(denied.grant == nil && denied.request.core.state == .denied && denied.request.autoRule == "weekend")
        #expect(denied.actions == [.notifyDenied])

        // A rule never grants more than the request asks, and never nothing.
        let capped = try await engine.file(
            sampleRequest(at: clock.now, duration: 600),
            Filing(.approve(rule: "generous", duration: 86400, evidence: nil)),
            by: alice
        )
        #expect(capped.grant?.expiresAt == clock.now + 600)
        let nothing = try await engine.file(
            sampleRequest(at: clock.now),
            Filing(.approve(rule: "zero", duration: 0, evidence: nil)),
            by: alice
        )
        #expect(nothing.grant == nil && nothing.request.core.state == .pending)
        let all = try await auditLines(store)
        let events = all.compactMap { AuditLine.field("event", in: $0) }
        #expect(
            events.suffix(6) == [
                "request.create", "request.deny", "request.create", "grant.issue", "request.approve", "request.create",
            ]
        )
        #expect(isIntact(AuditChain.verify(all)))
        await close(store)
    }

    @Test("ticks expire requests, escalate steps and end grants, each once", arguments: StoreKind.allCases)
    func tick(kind: StoreKind) async throws {
        let (store, clock, engine) = try await Self.engine(kind)
        let start = clock.now
        let unanswered = try await engine.file(sampleRequest(at: start, pendingFor: 600), by: alice).request.core.id
        let escalating = try await engine.file(
            sampleRequest(
                at: start,
                steps: [
                    AccessRequest.Step(
                        name: "team",
                        approvers: ["bob"],
                        required: 1,
                        escalateAfter: 300,
                        escalateTo: ["carol"]
                    )
                ]
            ),
            by: alice
        ).request.core.id
        let granted = try await engine.file(sampleRequest(at: start, duration: 900), by: alice)
        let grant = try #require(try await engine.decide(granted.request.core.id, .approve(comment: ""), by: bob).grant)

        clock.now = start + 299
        #expect(try await engine.tick() == ApprovalEngine.TickReport())
        clock.now = start + 300
        #expect(try await engine.tick().escalatedRequests == [escalating])
        // carol may approve it now.
        #expect(try await engine.decide(escalating, .approve(comment: ""), by: carol).grant != nil)
        clock.now = start + 700
        let expired = try await engine.tick()
        #expect(expired.expiredRequests == [unanswered])
        #expect(expired.endedGrants.isEmpty)
        clock.now = start + 1000
        let ended = try await engine.tick()
        #expect(ended.endedGrants.map(\.id) == [grant.id])
        #expect(ended.endedGrants.first?.endedAt == grant.expiresAt)
        #expect(try await engine.tick() == ApprovalEngine.TickReport())
        let lines = try await auditLines(store)
        let events = lines.compactMap { AuditLine.field("event", in: $0) }
        #expect(events.filter { $0 == "request.expire" }.count == 1)
        #expect(events.filter { $0 == "request.escalate" }.count == 1)
        #expect(events.filter { $0 == "grant.expire" }.count == 1)
        #expect(isIntact(AuditChain.verify(lines)))
        await close(store)
    }

    @Test(
        "revoke ends a grant once; an extension moves its end within the flow's maximum",
        arguments: StoreKind.allCases
    )
    func revokeAndExtend(kind: StoreKind) async throws {
        let (store, clock, engine) = try await Self.engine(kind, flowMaxDuration: 3600)
        let a = try await engine.file(
            sampleRequest(at: clock.now),
            Filing(.approve(rule: "r", duration: 1800, evidence: nil)),
            by: alice
        )
        let grant = try #require(a.grant)
        clock.now += 100
        var ext = sampleRequest(at: clock.now, duration: 7200)
        ext.kind = "extend"
        ext.extendsGrant = grant.id
        let e = try await engine.file(ext, by: alice)
        let extended = try #require(try await engine.decide(e.request.core.id, .approve(comment: ""), by: bob).grant)
        #expect(extended.id == grant.id)
        #expect(extended.expiresAt == clock.now + 3600)  // capped: the flow's maximum from now

        let revoked = try await engine.revoke(grant: grant.id, by: bob, reason: "done")
        #expect(revoked.revokedBy == "bob" && revoked.endedAt == clock.now && revoked.endReason == "revoked")
        await #expect(throws: EngineError.self) { _ = try await engine.revoke(grant: grant.id, by: bob, reason: "") }
        clock.now += 10_000
        #expect(try await engine.tick().endedGrants.isEmpty)  // already ended: not ended again
        await close(store)
    }

    @Test(
        "the grant feed: a host's snapshot, then its changes; an answer for other hosts still moves the cursor",
        arguments: StoreKind.allCases
    )
    func grantFeed(kind: StoreKind) async throws {
        let (store, clock, engine) = try await Self.engine(kind)
        func approved(_ host: String) async throws -> EngineGrant {
            var r = sampleRequest(at: clock.now)
            r.host = host
            let filing = Filing(.approve(rule: "r", duration: 1800, evidence: nil))
            return try #require(try await engine.file(r, filing, by: alice).grant)
        }
        let web = try await approved("web-*")
        let everywhere = try await approved("*")
        _ = try await approved("db-01")
        let snapshot = try await engine.grantSnapshot(forHost: "web-01.example.com")
        #expect(Set(snapshot.grants.map(\.id)) == [web.id, everywhere.id])

        // Nothing new for web-01, but the cursor moves past db-02's grant.
        let db2 = try await approved("db-02")
        let quiet = try await engine.grantChanges(forHost: "web-01", after: snapshot.cursor)
        #expect(quiet.grants.isEmpty && quiet.cursor > snapshot.cursor && !quiet.more)

        // A revocation and an expiry reach the host as the grants' new state, in that order.
        _ = try await engine.revoke(grant: web.id, by: bob, reason: "done")
        clock.now += 1800
        _ = try await engine.tick()
        let ended = try await engine.grantChanges(forHost: "web-01", after: quiet.cursor)
        #expect(ended.grants.map(\.id) == [web.id, everywhere.id])
        #expect(ended.grants.allSatisfy { $0.endedAt != nil })
        #expect(try await engine.grantSnapshot(forHost: "web-01").grants.isEmpty)

        // One entry at a time: `more` until the feed's end; db-02 sees its own grant and the one
        // for every host, once each, ended.
        var cursor = snapshot.cursor
        var seen: [EngineGrant] = []
        for _ in 0..<20 {
            let page = try await engine.grantChanges(forHost: "db-02", after: cursor, limit: 1)
            seen += page.grants
            cursor = page.cursor
            if !page.more { break }
        }
        #expect(seen.count == 2 && Set(seen.map(\.id)) == [db2.id, everywhere.id])
        #expect(seen.allSatisfy { $0.endedAt != nil })
        #expect(cursor == ended.cursor)

        // A cursor from elsewhere (past this feed's end), or not a position: refused, not silent.
        await #expect(
            throws: EngineError.gone("feed position \(cursor + 100) is past this store's end: take a new snapshot")
        ) {
            _ = try await engine.grantChanges(forHost: "web-01", after: cursor + 100)
        }
        await #expect(throws: EngineError.self) { _ = try await engine.grantChanges(forHost: "web-01", after: -1) }
        // A limit of 0 reads one entry: it always moves.
        let one = try await engine.grantChanges(forHost: "web-01", after: snapshot.cursor, limit: 0)
        #expect(one.cursor > snapshot.cursor)
        await close(store)
    }

    /// Two writers. A is another instance at its commit point: it has taken its feed position
    /// (the head row) and not yet committed. B, through the store, writes a grant after it. A
    /// reader following the feed meanwhile must find A's write once A commits. (Were positions
    /// handed out without the head row's lock, B would commit first at a higher position, the
    /// reader's cursor would pass A's, and A's grant would never be seen.)
    @Test("the grant feed never skips a write that commits late (PostgreSQL, three connections)")
    func feedLateCommit() async throws {
        let t = try await TestStore.make(.postgresql)
        let (writerB, reader) = (try await t.open(), try await t.open())
        let start = try await reader.transaction { (tx) throws(EngineError) in try await tx.liveGrants(now: 0).cursor }
        func grant() -> EngineGrant {
            EngineGrant(
                requestID: nil,
                user: "alice",
                capability: "sudo",
                host: "*",
                runas: "root",
                commands: nil,
                notBefore: 0,
                expiresAt: 4_000_000_000,
                approvedBy: "test",
                reason: "late commit"
            )
        }
        let (a, b) = (grant(), grant())
        let logger = Logger(label: "instance-a")
        let instanceA = PostgresClient(
            configuration: try await TestCluster.shared.configuration(database: t.name),
            backgroundLogger: logger
        )
        let running = Task { await instanceA.run() }
        let placed = Latch()
        let release = Latch()
        let first = Task {
            try await instanceA.withTransaction(logger: logger) { conn in
                var position: Int64 = 0
                for try await p in try await conn.query(
                    "UPDATE grant_feed_head SET seq = seq + 1 WHERE id = 1 RETURNING seq",
                    logger: logger
                ).decode(Int64.self) { position = p }
                try await conn.query(
                    """
                    INSERT INTO grants (id, request_id, user_name, expires_at, ended_at, body, change_seq)
                    VALUES (\(a.id), NULL, 'alice', \(a.expiresAt), NULL, \(a.document), \(position))
                    """,
                    logger: logger
                )
                await placed.open()
                await release.wait()
            }
        }
        await placed.wait()
        let second = Task { try await writerB.transaction { (tx) throws(EngineError) in try await tx.insertGrant(b) } }
        try await Task.sleep(for: .milliseconds(300))  // B is waiting for the feed's head by now
        let during = try await reader.transaction { (tx) throws(EngineError) in
            try await tx.grantChanges(after: start, limit: 100)
        }
        let cursor = during.last?.position ?? start
        await release.open()
        try await first.value
        try await second.value
        let after = try await reader.transaction { (tx) throws(EngineError) in
            try await tx.grantChanges(after: cursor, limit: 100)
        }
        #expect(during.isEmpty, "B committed while A held its position: \(during.map(\.grant.id))")
        let seen = (during + after).map(\.grant.id)
        #expect(seen == [a.id, b.id], "the reader saw \(during.map(\.grant.id)) then \(after.map(\.grant.id))")
        // A grant written without its feed position (as an older Writ, or a path that skipped
        // it, would) cannot commit: the feed would never show it.
        await #expect(throws: (any Error).self) {
            try await TestCluster.shared.psql(
                t.name,
                "INSERT INTO grants (id, user_name, expires_at, body) VALUES ('g_unplaced', 'alice', 1, '{}')"
            )
        }
        running.cancel()
        await running.value
        for s in [writerB, reader] { await close(s) }
    }

    @Test(
        "enrollment: a token works once, for its host, within its lifetime; a disabled host is refused",
        arguments: StoreKind.allCases
    )
    func enrollment(kind: StoreKind) async throws {
        let (store, clock, engine) = try await Self.engine(kind)
        let admin = Principal(user: "root", route: .host("server-1"))
        let made = try await engine.createEnrollment(host: "web-01.example.com", lifetime: 600, by: admin)
        #expect(made.token.hasPrefix("wet_") && made.token.count == 68 && made.expiresAt == clock.now + 600)
        let key1 = String(repeating: "1", count: 64)
        let key2 = String(repeating: "2", count: 64)
        // Not enrolled yet.
        #expect(try await engine.hostMayConnect("web-01.example.com", keyFingerprint: key1) == false)
        let host = try await engine.enroll(token: made.token, keyFingerprint: key1)
        #expect(host.name == "web-01.example.com" && host.enabled && host.enrolledAt == clock.now)
        #expect(host.keyFingerprint == key1)
        #expect(try await engine.hostMayConnect("web-01.example.com", keyFingerprint: key1))
        #expect(try await engine.hostMayConnect("web-01.example.com", keyFingerprint: key2) == false)
        // Once only.
        await #expect(throws: EngineError.self) { _ = try await engine.enroll(token: made.token, keyFingerprint: key2) }
        // Not after its lifetime.
        let late = try await engine.createEnrollment(host: "web-02", lifetime: 600, by: admin)
        clock.now += 601
        await #expect(throws: EngineError.self) { _ = try await engine.enroll(token: late.token, keyFingerprint: key2) }
        // Malformed, or never made.
        for bad in ["", "wet_", "wet_" + String(repeating: "g", count: 64), late.token.uppercased(), "x" + late.token] {
            await #expect(throws: EngineError.self, "\(bad)") {
                _ = try await engine.enroll(token: bad, keyFingerprint: key2)
            }
        }
        // What an admin may ask for.
        for name in ["Web-01", "-web", "web-", "a b", "", "web..01", String(repeating: "a", count: 64)] {
            await #expect(throws: EngineError.self, "\(name)") {
                _ = try await engine.createEnrollment(host: name, by: admin)
            }
        }
        await #expect(throws: EngineError.self) {
            _ = try await engine.createEnrollment(host: "a", lifetime: 0, by: admin)
        }
        await #expect(throws: EngineError.self) {
            _ = try await engine.createEnrollment(host: "a", lifetime: 8 * 86400, by: admin)
        }

        // Disabled: refused at once, no new token, and a token made before does not work, not
        // even after the host is enabled again (disabling voids its tokens).
        let before = try await engine.createEnrollment(host: "web-01.example.com", by: admin)
        #expect(try await engine.setHost("web-01.example.com", enabled: false, by: admin).enabled == false)
        #expect(try await engine.hostMayConnect("web-01.example.com", keyFingerprint: key1) == false)
        await #expect(throws: EngineError.self) {
            _ = try await engine.createEnrollment(host: "web-01.example.com", by: admin)
        }
        await #expect(throws: EngineError.self) {
            _ = try await engine.enroll(token: before.token, keyFingerprint: key2)
        }
        _ = try await engine.setHost("web-01.example.com", enabled: true, by: admin)
        await #expect(throws: EngineError.self) {
            _ = try await engine.enroll(token: before.token, keyFingerprint: key2)
        }
        let after = try await engine.createEnrollment(host: "web-01.example.com", by: admin)
        #expect(try await engine.enroll(token: after.token, keyFingerprint: key2).name == "web-01.example.com")
        // Enrolling again replaces the key: the first enrollment's certificates are refused.
        #expect(try await engine.hostMayConnect("web-01.example.com", keyFingerprint: key1) == false)
        #expect(try await engine.hostMayConnect("web-01.example.com", keyFingerprint: key2))
        await #expect(throws: EngineError.self) { _ = try await engine.setHost("nowhere", enabled: false, by: admin) }

        // The audit names who made a token for which host, never the token.
        let lines = try await auditLines(store)
        let events = lines.compactMap { AuditLine.field("event", in: $0) }
        #expect(events.filter { $0 == "host.enroll_token" }.count == 4)
        #expect(events.filter { $0 == "host.enroll" }.count == 2)
        #expect(events.contains("host.disable") && events.contains("host.enable"))
        // Each use names the token's making by the first 8 digits of its hash.
        let enrolls = lines.filter { AuditLine.field("event", in: $0) == "host.enroll" }
        #expect(enrolls.compactMap { AuditLine.field("token_id", in: $0) }.count == 2)
        for token in [made.token, late.token, before.token, after.token] {
            #expect(!lines.contains { $0.contains(token.dropFirst(4)) })
        }
        #expect(isIntact(AuditChain.verify(lines)))
        await close(store)
    }

    /// A host's own chain as its audit log writes it: `count` records from `seq`, after `prev`.
    static func hostChain(from seq: Int64 = 1, count: Int, prev: String = AuditLine.genesis) -> [String] {
        var lines: [String] = []
        var previous = prev
        for n in seq..<(seq + Int64(count)) {
            let e = AuditEvent(
                time: 1000 + n,
                event: "sudo.accept",
                actor: "alice",
                fields: [.init("command", "/usr/bin/id \(n)")]
            )
            let line = AuditLine.render(seq: n, prev: previous, e)
            previous = AuditChain.hash(line)
            lines.append(line)
        }
        return lines
    }

    @Test(
        "a host's audit upload: each record once, a rewrite or a gap refused, the head kept",
        arguments: StoreKind.allCases
    )
    func hostAuditUpload(kind: StoreKind) async throws {
        let (store, _, engine) = try await Self.engine(kind)
        let chain = Self.hostChain(count: 10)
        #expect(try await engine.hostAuditHead("web-01") == nil)
        #expect(try await engine.uploadAudit(host: "web-01", lines: Array(chain[0..<4]))?.seq == 4)
        // Sent again with more: the known ones are skipped, the new ones stored.
        #expect(try await engine.uploadAudit(host: "web-01", lines: Array(chain[0..<6]))?.seq == 6)
        // A gap, a rewritten record, a record that does not follow: refused, nothing stored.
        await #expect(throws: EngineError.self) {
            _ = try await engine.uploadAudit(host: "web-01", lines: Array(chain[7...]))
        }
        let rewritten = Self.hostChain(count: 3)[2].replacingOccurrences(of: "alice", with: "mallory")
        await #expect(throws: EngineError.self) { _ = try await engine.uploadAudit(host: "web-01", lines: [rewritten]) }
        let stray = Self.hostChain(from: 7, count: 1, prev: AuditLine.genesis)
        await #expect(throws: EngineError.self) { _ = try await engine.uploadAudit(host: "web-01", lines: stray) }
        #expect(try await engine.hostAuditHead("web-01")?.seq == 6)
        // Resumed from where the server stands: the head is the host's own chain's head.
        let head = try #require(try await engine.uploadAudit(host: "web-01", lines: Array(chain[6...])))
        guard case .intact(let records, let seq, let hash) = AuditChain.verify(chain) else {
            Issue.record("the test's chain does not verify")
            return
        }
        #expect(records == 10 && head == HostAuditHead(seq: seq, hash: hash))

        // Another host's chain starts wherever it stood when it enrolled; nothing before that.
        let later = Self.hostChain(from: 500, count: 3, prev: String(repeating: "a", count: 64))
        #expect(try await engine.uploadAudit(host: "db-01", lines: Array(later[1...]))?.seq == 502)
        await #expect(throws: EngineError.self) { _ = try await engine.uploadAudit(host: "db-01", lines: [later[0]]) }
        #expect(try await engine.hostAuditHead("web-01")?.seq == 10)  // chains are per host
        // Each first upload wrote where its chain starts into the server's chain, once; every
        // chain verifies against both its ends.
        let anchors = try await engine.fleetAudit(FleetAuditFilter()).filter {
            AuditLine.field("event", in: $0.line) == "host.audit_anchor"
        }
        #expect(anchors.map { AuditLine.field("first_seq", in: $0.line) } == ["1", "501"])
        let checks = try await engine.verifyFleetAudit()
        #expect(checks.count == 3, "\(checks)")
        for check in checks {
            guard case .intact = check.verdict else {
                Issue.record("\(check.host ?? "the server"): \(check.verdict)")
                continue
            }
        }

        // Bounded: too many records, or a line that is not one of Writ's.
        await #expect(throws: EngineError.self) {
            _ = try await engine.uploadAudit(host: "web-02", lines: Self.hostChain(count: 1001))
        }
        await #expect(throws: EngineError.self) { _ = try await engine.uploadAudit(host: "web-02", lines: ["{}"]) }
        let twoLines = chain[0].replacingOccurrences(of: "alice", with: "alice\n{\"seq\":2}")
        await #expect(throws: EngineError.self) { _ = try await engine.uploadAudit(host: "web-02", lines: [twoLines]) }
        await #expect(throws: EngineError.self) {
            _ = try await engine.uploadAudit(host: "web-02", lines: [chain[0], chain[2], chain[1]])
        }
        #expect(try await engine.hostAuditHead("web-02") == nil)
        await close(store)
    }

    @Test("two first uploads for one host at once leave one consistent chain (PostgreSQL, two instances)")
    func hostAuditFirstUploadRace() async throws {
        let t = try await TestStore.make(.postgresql)
        let (one, two) = (try await t.open(), try await t.open())
        let (a, b) = (ApprovalEngine(store: one), ApprovalEngine(store: two))
        let chain = Self.hostChain(count: 20)
        let expected = HostAuditHead(seq: 20, hash: AuditChain.hash(chain[19]))
        for round in 0..<30 {
            let host = "race-\(round)"
            // The first 10 and the last 10 at once: whichever anchors the chain, the other must
            // either follow it (11–20 after 1–10) or be refused (1–10 before an anchor at 11).
            async let early = try? a.uploadAudit(host: host, lines: Array(chain[0..<10]))
            async let late = try? b.uploadAudit(host: host, lines: Array(chain[10...]))
            _ = await (early, late)
            #expect(try await a.hostAuditHead(host) == expected, "round \(round)")
        }
        await close(one)
        await close(two)
    }

    @Test("reopening migrates nothing twice; a newer schema is refused", arguments: StoreKind.allCases)
    func migrations(kind: StoreKind) async throws {
        let t = try await TestStore.make(kind)
        let first = try await t.open()
        let clock = TestClock()
        _ = try await ApprovalEngine(store: first, clock: { clock.now }).file(sampleRequest(at: clock.now), by: alice)
        await close(first)
        let again = try await t.open()
        #expect(try await auditLines(again).count == 1)
        await close(again)
        // As a newer Writ would leave it.
        switch kind {
        case .sqlite:
            let out = try await ChildProcess.run(["sqlite3", t.name, "PRAGMA user_version = 99"])
            #expect(out.status == 0)
        case .postgresql:
            try await TestCluster.shared.psql(t.name, "UPDATE writ_schema SET version = 99")
        }
        do {
            _ = try await t.open()
            Issue.record("a store with a newer schema was opened")
        } catch let e as EngineError {
            guard case .schema = e else { throw e }
        }
    }

    @Test("a second grant for one request is refused by the store itself", arguments: StoreKind.allCases)
    func oneGrantPerRequest(kind: StoreKind) async throws {
        let (store, clock, _) = try await Self.engine(kind)
        let grant = EngineGrant(
            requestID: "r_1",
            user: "alice",
            capability: "sudo",
            host: "web-*",
            runas: "root",
            commands: nil,
            notBefore: clock.now,
            expiresAt: clock.now + 60,
            approvedBy: "bob",
            reason: "r"
        )
        try await store.transaction { (tx) throws(EngineError) in try await tx.insertGrant(grant) }
        var other = grant
        other.id = "g_second"
        let second = other
        await #expect(throws: EngineError.refused("the request already has its grant")) {
            try await store.transaction { (tx) throws(EngineError) in try await tx.insertGrant(second) }
        }
        await close(store)
    }
}
