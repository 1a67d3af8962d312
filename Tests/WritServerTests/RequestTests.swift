import FakeServices
import Glibc
import Testing
import WritAgent
import WritAudit
import WritCore
import WritEngine
import WritFleetAPI

/// Requests and decisions a host relays for its users: writ-server processes with a policy file,
/// driven through the agent's own client with each host's certificate.
@Suite("writ-server: requests through hosts, decided by the fleet's policy", .serialized)
struct RequestTests {
    static let policy = """
        version: 1
        flows:
          - name: web
            capability: sudo
            hosts: ["web-*"]
            requesters: {users: [alice]}
            approvers: {users: [bob, carol]}
            duration: {default: 30m, max: 1h}
          - name: db
            capability: sudo
            hosts: ["db-*"]
            requesters: {users: [alice]}
            approvers: {users: [carol]}
            approve_from_hosts: ["bastion-*"]
            duration: {default: 30m, max: 1h}

        """

    static func filing(_ user: String, reason: String = "INC-1 disk full") -> Components.Schemas.RequestFiling {
        .init(user: user, groups: [], capability: "sudo", reason: reason)
    }

    static func approval(_ user: String) -> Components.Schemas.RequestDecision {
        .init(user: user, groups: [], approve: true, comment: "ok")
    }

    /// A fleet and one replica reading `policy` from its state directory.
    static func start(_ kind: StoreKind, policy: String = Self.policy) async throws -> (Fleet, ServerProcess) {
        let fleet = try await Fleet.make(kind)
        let policyPath = fleet.stateDir + "/policy.yaml"
        try TempDir.write(policy, to: policyPath)
        return (fleet, try await fleet.start(["--policy", policyPath]))
    }

    /// The refusal's message, or nil when the call did not fail with a refusal.
    static func refusal(_ body: () async throws -> Void) async -> String? {
        do {
            try await body()
            return nil
        } catch {
            guard case .refused(let m) = error as? AgentError else { return "not a refusal: \(error)" }
            return m
        }
    }

    @Test(
        "a request through a host is for that host and its user; an approval counts through the request's host or one approve_from_hosts names",
        arguments: StoreKind.allCases
    )
    func requestAndApprove(kind: StoreKind) async throws {
        let (fleet, server) = try await Self.start(kind)
        defer { server.stop() }
        let (_, web) = try await fleet.enroll("web-01", server: server)
        let (_, web2) = try await fleet.enroll("web-02", server: server)
        let (_, db) = try await fleet.enroll("db-01", server: server)
        let (_, bastion) = try await fleet.enroll("bastion-01", server: server)
        defer {
            Task {
                for c in [web, web2, db, bastion] { await c.shutdown() }
            }
        }

        // alice on web-01: the flow covering web-01 decides; the request is for web-01.
        let r = try await web.fileRequest(Self.filing("alice"))
        #expect(r.state == "pending" && r.host == "web-01" && r.flow == "web" && r.requester == "alice")
        #expect(r.approvers == ["bob", "carol"])
        // Someone the policy does not list, and root, are refused with a line saying why.
        let mallory = await Self.refusal { _ = try await web.fileRequest(Self.filing("mallory")) }
        #expect(mallory?.contains("mallory") == true)
        let root = await Self.refusal { _ = try await web.fileRequest(Self.filing("root")) }
        #expect(root?.contains("root is never restricted") == true)

        // bob sees it from web-01 and from nowhere else; an approval through web-02 is refused.
        #expect(try await web.listRequests(user: "bob", groups: []).map(\.id) == [r.id])
        #expect(try await web2.listRequests(user: "bob", groups: []).isEmpty)
        let elsewhere = await Self.refusal { _ = try await web2.decide(r.id, Self.approval("bob")) }
        #expect(elsewhere?.contains("does not take decisions through web-02") == true)
        // alice cannot cancel it through another host, nor see it there.
        let cancel = await Self.refusal { _ = try await web2.cancel(r.id, user: "alice") }
        #expect(cancel?.contains("no request \(r.id) of yours filed on this host") == true)
        #expect(try await web2.listRequests(user: "alice", groups: []).isEmpty)

        // bob approves through web-01: the grant is web-01's, and it is in web-01's feed only.
        let approved = try await web.decide(r.id, Self.approval("bob"))
        #expect(approved.state == "approved" && approved.decidedBy == "bob")
        let grantID = try #require(approved.grantId)
        #expect(try await web.snapshot().value.grants.map(\.id) == [grantID])
        #expect(try await web2.snapshot().value.grants.isEmpty)

        // db's flow takes approvals through bastion-* too: carol approves there.
        let d = try await db.fileRequest(Self.filing("alice"))
        #expect(d.flow == "db" && d.host == "db-01")
        #expect(try await bastion.listRequests(user: "carol", groups: []).map(\.id) == [d.id])
        let throughWeb = await Self.refusal { _ = try await web.decide(d.id, Self.approval("carol")) }
        #expect(throughWeb?.contains("does not take decisions through web-01") == true)
        let viaBastion = try await bastion.decide(d.id, Self.approval("carol"))
        #expect(viaBastion.state == "approved")
        #expect(try await db.snapshot().value.grants.map(\.id) == [try #require(viaBastion.grantId)])

        // More time, through the host the grant is for: a request of kind extend, approved there.
        let before = try #require(try await web.snapshot().value.grants.first { $0.id == grantID })
        let ext = try await web.extendGrant(
            grantID,
            .init(user: "alice", groups: [], duration: 600, reason: "INC-1 more")
        )
        #expect(ext.kind == "extend" && ext.extendsGrant == grantID && ext.state == "pending")
        let again = await Self.refusal {
            _ = try await web.extendGrant(grantID, .init(user: "alice", groups: [], duration: 600, reason: "x"))
        }
        #expect(again?.contains("already pending (\(ext.id))") == true, "\(again ?? "filed")")
        let elsewhereExtend = await Self.refusal {
            _ = try await web2.extendGrant(grantID, .init(user: "alice", groups: [], duration: 600, reason: "x"))
        }
        #expect(elsewhereExtend?.contains("you have no grant \(grantID) on this host") == true)
        #expect(try await web.decide(ext.id, Self.approval("bob")).state == "approved")
        let after = try #require(try await web.snapshot().value.grants.first { $0.id == grantID })
        #expect(after.expiresAt == before.expiresAt + 600, "\(after.expiresAt - before.expiresAt)")

        // The holder revokes her grant through a host it covers, not through another.
        let elsewhereRevoke = await Self.refusal { _ = try await web2.revokeGrant(grantID, user: "alice", reason: "") }
        #expect(elsewhereRevoke?.contains("no grant \(grantID) of yours on this host") == true)
        let notHers = await Self.refusal { _ = try await web.revokeGrant(grantID, user: "bob", reason: "") }
        #expect(notHers?.contains("no grant \(grantID) of yours on this host") == true)
        let revoked = try await web.revokeGrant(grantID, user: "alice", reason: "done")
        #expect(revoked.revokedBy == "alice" && revoked.endReason == "revoked")

        // The audit chain names the host each step came through.
        let engine = try await fleet.engine()
        defer { Task { await engine.store.close() } }
        let lines = try await engine.store.transaction { (tx) throws(EngineError) in
            try await tx.auditLines(after: 0, limit: 100)
        }
        #expect(lines.contains { $0.contains("request.create") && $0.contains("host:web-01") })
        #expect(lines.contains { $0.contains("request.approve") && $0.contains("host:bastion-01") })
    }

    @Test(
        "limits are per host: a host cannot use up a user's requests elsewhere, nor end a grant that covers more hosts"
    )
    func perHostLimits() async throws {
        let (fleet, server) = try await Self.start(.sqlite)
        defer { server.stop() }
        let (_, web) = try await fleet.enroll("web-01", server: server)
        let (_, web2) = try await fleet.enroll("web-02", server: server)
        defer {
            Task {
                await web.shutdown()
                await web2.shutdown()
            }
        }
        for _ in 0..<20 { _ = try await web.fileRequest(Self.filing("alice")) }
        let full = await Self.refusal { _ = try await web.fileRequest(Self.filing("alice")) }
        #expect(full?.contains("pending requests through web-01") == true, "\(full ?? "filed")")
        // web-01 filled alice's requests there, not on web-02.
        #expect(try await web2.fileRequest(Self.filing("alice")).state == "pending")
        // An id that is not one of Writ's is refused before it is looked up or logged.
        do {
            _ = try await web.cancel("r_1\nforged line", user: "alice")
            Issue.record("a malformed id was taken")
        } catch {
            guard case .local(let m) = error as? AgentError else { throw error }
            #expect(m.contains("is not an id of Writ's"))
        }
        // An admin's grant for web-* covers web-01, but web-01 speaks for itself only.
        let admin = try await fleet.admin([
            "grant", "add", "--user", "alice", "--host", "web-*", "--for", "10m", "--reason", "INC-2",
        ])
        let id = String(admin.output.split(separator: "\n").first ?? "")
        let wider = await Self.refusal { _ = try await web.revokeGrant(id, user: "alice", reason: "") }
        #expect(wider?.contains("covers web-*, more hosts than web-01") == true, "\(wider ?? "revoked")")
    }

    @Test("one host holds at most 200 pending requests, whoever files them; another host is not held up")
    func pendingPerHost() async throws {
        let (fleet, server) = try await Self.start(
            .sqlite,
            policy: """
                version: 1
                flows:
                  - name: web
                    capability: sudo
                    hosts: ["web-*"]
                    requesters: {unix_groups: [eng]}
                    approvers: {users: [bob]}
                    duration: {default: 30m, max: 1h}

                """
        )
        defer { server.stop() }
        let (_, web) = try await fleet.enroll("web-01", server: server)
        let (_, web2) = try await fleet.enroll("web-02", server: server)
        defer {
            Task {
                await web.shutdown()
                await web2.shutdown()
            }
        }
        func filing(_ user: String) -> Components.Schemas.RequestFiling {
            .init(user: user, groups: ["eng"], capability: "sudo", reason: "INC-3 load")
        }
        // Ten users, twenty each (their own limit): 200 through web-01.
        for n in 0..<10 {
            for _ in 0..<20 { _ = try await web.fileRequest(filing("user\(n)")) }
        }
        let full = await Self.refusal { _ = try await web.fileRequest(filing("user10")) }
        #expect(full?.contains("web-01 has 200 requests pending on the server") == true, "\(full ?? "filed")")
        #expect(try await web2.fileRequest(filing("user10")).state == "pending")
    }

    @Test("the policy is read again when the file changes; a file that fails keeps the last good one")
    func policyReload() async throws {
        let fleet = try await Fleet.make(.sqlite)
        let policyPath = fleet.stateDir + "/policy.yaml"
        // No policy yet: requests are refused, saying what to fix.
        let server = try await fleet.start(["--policy", policyPath])
        defer { server.stop() }
        let (_, web) = try await fleet.enroll("web-01", server: server)
        defer { Task { await web.shutdown() } }
        let none = await Self.refusal { _ = try await web.fileRequest(Self.filing("alice")) }
        #expect(none?.contains("no valid policy") == true && none?.contains(policyPath) == true)

        try TempDir.write(Self.policy, to: policyPath)
        server.child.signal(SIGHUP)
        let r = try await eventuallyFiled(web)
        #expect(r.state == "pending")

        // A broken file: the last good policy stays in force.
        try TempDir.write("version: 1\nflows: [oops\n", to: policyPath)
        server.child.signal(SIGHUP)
        // Filed (and withdrawn) for a second and a half, past the reload: none is refused.
        for _ in 0..<15 {
            let during = try await web.fileRequest(Self.filing("alice"))
            #expect(during.state == "pending" && during.policyVersion == r.policyVersion)
            _ = try await web.cancel(during.id, user: "alice")
            try await Task.sleep(for: .milliseconds(100))
        }

        // bob is dropped from the approvers: his approval of a pending request is refused.
        try TempDir.write(
            Self.policy.split(separator: "[bob, carol]", omittingEmptySubsequences: false).joined(separator: "[carol]"),
            to: policyPath
        )
        server.child.signal(SIGHUP)
        // In force once a new request's approvers are the new policy's (bob's approval is not
        // tried before: it would count under the old one).
        var reloaded = false
        for _ in 0..<50 {
            let probe = try await web.fileRequest(Self.filing("alice"))
            _ = try await web.cancel(probe.id, user: "alice")
            if probe.approvers == ["carol"] {
                reloaded = true
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(reloaded)
        let refusal = await Self.refusal { _ = try await web.decide(r.id, Self.approval("bob")) }
        #expect(refusal?.contains("no longer an approver") == true, "\(refusal ?? "approved")")
        #expect(try await web.decide(r.id, Self.approval("carol")).state == "approved")
    }

    @Test(
        "writ-server audit: the server's chain and the hosts' by host, user, flow and time; verify finds a rewritten record",
        arguments: StoreKind.allCases
    )
    func fleetAudit(kind: StoreKind) async throws {
        let (fleet, server) = try await Self.start(kind)
        defer { server.stop() }
        let (_, web) = try await fleet.enroll("web-01", server: server)
        let (_, db) = try await fleet.enroll("db-01", server: server)
        defer {
            Task {
                await web.shutdown()
                await db.shutdown()
            }
        }
        let r = try await web.fileRequest(Self.filing("alice"))
        _ = try await web.decide(r.id, Self.approval("bob"))
        let now = Int64(time(nil))
        _ = try await web.uploadAudit(hostChain("alice", count: 3, at: now))
        _ = try await db.uploadAudit(hostChain("carol", count: 2, at: now - 7200))

        func audit(_ args: [String]) async throws -> [String] {
            let out = try await fleet.admin(["audit", "show", "--json"] + args)
            #expect(out.status == 0, "\(out.output)")
            return out.output.split(separator: "\n").map(String.init)
        }
        let webLines = try await audit(["--host", "web-01"])
        #expect(webLines.filter { $0.hasPrefix("web-01\t") }.count == 3)
        #expect(webLines.contains { $0.hasPrefix("server\t") && $0.contains("request.create") })
        #expect(!webLines.contains { $0.hasPrefix("db-01\t") })
        let carol = try await audit(["--user", "carol"])
        #expect(carol.count == 2 && carol.allSatisfy { $0.hasPrefix("db-01\t") })
        let flow = try await audit(["--flow", "web"])
        #expect(!flow.isEmpty && flow.allSatisfy { $0.hasPrefix("server\t") && $0.contains("\"flow\":\"web\"") })
        let recent = try await audit(["--since", "1h"])
        #expect(!recent.contains { $0.hasPrefix("db-01\t") } && recent.contains { $0.hasPrefix("web-01\t") })
        let old = try await audit(["--until", "1h"])
        #expect(old.count == 2 && old.allSatisfy { $0.hasPrefix("db-01\t") })

        let verified = try await fleet.admin(["audit", "verify"])
        #expect(verified.status == 0, "\(verified.output)")
        #expect(verified.output.contains("the server's chain: ") && verified.output.contains("chain intact"))
        #expect(verified.output.contains("host web-01: 3 records, chain intact; head record 3"))
        #expect(verified.output.contains("host db-01: 2 records, chain intact"))

        // A record rewritten in the store: verify names the chain and the record.
        if kind == .sqlite {
            try await fleet.tamper(
                "UPDATE host_audit SET line = replace(line, 'alice', 'mallory') WHERE host = 'web-01' AND seq = 2"
            )
            let broken = try await fleet.admin(["audit", "verify", "--host", "web-01"])
            #expect(broken.status == 1)
            #expect(broken.output.contains("host web-01: broken at its record 3"), "\(broken.output)")
            // The newest record of db-01 deleted: the chain is whole, but not up to its head.
            try await fleet.tamper("DELETE FROM host_audit WHERE host = 'db-01' AND seq = 2")
            let short = try await fleet.admin(["audit", "verify", "--host", "db-01"])
            #expect(short.status == 1)
            #expect(short.output.contains("its head was recorded as record 2"), "\(short.output)")
        }
    }

    /// Files alice's request, retrying while the server has not read the policy yet.
    func eventuallyFiled(_ client: FleetClient) async throws -> FleetClient.Request {
        for _ in 0..<50 {
            if let r = try? await client.fileRequest(Self.filing("alice")) { return r }
            try await Task.sleep(for: .milliseconds(100))
        }
        return try await client.fileRequest(Self.filing("alice"))
    }
}
