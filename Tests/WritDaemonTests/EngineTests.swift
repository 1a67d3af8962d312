import Glibc
import Logging
import Synchronization
import Testing
import WritAudit
import WritCore
import WritProtocol
import WritStore

@testable import WritDaemon

/// A clock the test moves (forwards and backwards).
final class TestClock: Sendable {
    let value: Mutex<Int64>
    init(_ t: Int64) { value = Mutex(t) }
    var now: Int64 { value.withLock { $0 } }
    func set(_ t: Int64) { value.withLock { $0 = t } }
    func advance(_ s: Int64) { value.withLock { $0 += s } }
}

/// Accounts every Debian system has: the engine names peers from NSS, never from the client.
enum Users {
    static let requester = Peer(uid: 1, gid: 1, pid: getpid())  // daemon
    static let approver1 = Peer(uid: 2, gid: 2, pid: getpid())  // bin
    static let approver2 = Peer(uid: 3, gid: 3, pid: getpid())  // sys
    static let outsider = Peer(uid: 5, gid: 60, pid: getpid())  // games
    static let root = Peer(uid: 0, gid: 0, pid: getpid())
}

let testPolicy = """
    version: 1
    flows:
      - name: ops
        capability: sudo
        requesters: {users: [daemon]}
        approvers: {users: [bin, sys]}
        duration: {default: 30m, max: 2h}
        reason: {required: true, pattern: "^INC-[0-9]+"}
        pending_timeout: 10m
        warn_before: 1m
      - name: dual
        capability: sudo
        requesters: {users: [daemon]}
        approvers: {users: [bin, sys]}
        approvals: 2
        duration: {default: 10m, max: 1h}
        reason: {required: false}
    """

struct Fixture {
    let dir: String
    let engine: Engine
    let clock: TestClock
    let config: DaemonConfiguration

    init(policy: String = testPolicy, start: Int64 = 1_800_000_000, integrations: String? = nil) async throws {
        var template = Array("/tmp/writd-test.XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { $0.baseAddress.flatMap { mkdtemp($0) } }
        #expect(made != nil)
        dir = String(cString: template)
        clock = TestClock(start)
        var c = DaemonConfiguration()
        c.storePath = dir + "/store/grants.db"
        c.statePath = dir + "/store/writd.db"
        c.auditPath = dir + "/log/audit.jsonl"
        c.policyPath = dir + "/policy.yaml"
        c.hostName = "web-01"
        c.integrationsPath = dir + "/integrations.yaml"
        let clock = self.clock
        c.clock = { clock.now }
        config = c
        let fd = open(c.policyPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        _ = Array(policy.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        if let integrations {
            let ifd = open(c.integrationsPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            _ = Array(integrations.utf8).withUnsafeBytes { write(ifd, $0.baseAddress, $0.count) }
            close(ifd)
        }
        engine = try Engine(config: c, logger: Logger(label: "test"), timer: nil)
        await engine.start()
    }

    func call(_ peer: Peer, _ op: Operation, _ build: (inout WireRequest) -> Void = { _ in }) async -> WireResponse {
        var r = WireRequest(op: op)
        build(&r)
        // Audit reads are served off the actor, by `serve`.
        return op == .audit ? await engine.serve(r, from: .socket(peer)) : await engine.handle(r, from: .socket(peer))
    }

    func file(flow: String = "ops", duration: Int64? = 1800, reason: String = "INC-1 disk") async -> RequestView? {
        await call(Users.requester, .request) {
            $0.capability = "sudo"
            $0.flow = flow
            $0.duration = duration
            $0.reason = reason
        }.request
    }

    func grants() throws -> [Grant] { try GrantStore(path: config.storePath).list(includeEnded: true, now: clock.now) }

    func auditEvents() throws -> [String] {
        try AuditLog(path: config.auditPath).lines().compactMap { AuditLine.field("event", in: $0) }
    }

    func cleanup() { _ = system("rm -rf '\(dir)'") }
}

@Suite(.serialized) struct EngineTests {
    @Test func approvalIssuesExactlyOneGrantStartingAtApproval() async throws {
        let f = try await Fixture()
        defer { f.cleanup() }
        let filed = try #require(await f.file())
        #expect(filed.state == "pending")
        #expect(filed.approvers == ["bin", "sys"])
        f.clock.advance(120)
        let approved = await f.call(Users.approver1, .approve) { $0.id = filed.id }
        #expect(approved.request?.state == "approved")
        let again = await f.call(Users.approver2, .approve) { $0.id = filed.id }
        #expect(again.error?.code == "refused")
        let grants = try f.grants()
        #expect(grants.count == 1)
        let grant = try #require(grants.first)
        #expect(grant.notBefore == 1_800_000_120)
        #expect(grant.expiresAt == 1_800_001_920)
        #expect(grants.first?.requestID == filed.id)
        #expect(grants.first?.user == "daemon")
        #expect(try f.auditEvents() == ["policy.load", "request.create", "grant.issue", "request.approve"])
    }

    /// `writ extend` (and Slack's Extend button) on a login grant: the grant's run-as user (root)
    /// must not be sent back as a --runas, which login flows refuse.
    @Test func loginGrantsCanBeExtended() async throws {
        let f = try await Fixture(
            policy: """
                version: 1
                flows:
                  - name: shell
                    capability: login
                    requesters: {users: [daemon]}
                    approvers: {users: [bin]}
                    duration: {default: 10m, max: 1h}
                    reason: {required: false}
                """
        )
        defer { f.cleanup() }
        let filed = try #require(await f.call(Users.requester, .request) { $0.capability = "login" }.request)
        let approved = await f.call(Users.approver1, .approve) { $0.id = filed.id }
        let grant = try #require(approved.request?.grantId)
        let extension_ = await f.call(Users.requester, .extend) {
            $0.id = grant
            $0.duration = 600
        }
        #expect(extension_.error == nil, "\(extension_.error?.message ?? "")")
        #expect(extension_.request?.kind == "extend")
        #expect(extension_.request?.state == "pending")
    }

    @Test func selfApprovalAndOutsidersAreRefused() async throws {
        let f = try await Fixture()
        defer { f.cleanup() }
        let filed = try #require(await f.file())
        let own = await f.call(Users.requester, .approve) { $0.id = filed.id }
        #expect(own.error?.message.contains("cannot approve your own request") == true)
        let outsider = await f.call(Users.outsider, .approve) { $0.id = filed.id }
        #expect(outsider.error?.code == "not_found")
        let peek = await f.call(Users.outsider, .get) { $0.id = filed.id }
        #expect(peek.error?.code == "not_found")
        #expect(try f.grants().isEmpty)
    }

    @Test func policyRefusalsAreOneLine() async throws {
        let f = try await Fixture()
        defer { f.cleanup() }
        let noTicket = await f.call(Users.requester, .request) {
            $0.capability = "sudo"
            $0.flow = "ops"
            $0.reason = "because"
        }
        #expect(noTicket.error?.code == "policy")
        #expect(noTicket.error?.message.contains("INC-") == true)
        let tooLong = await f.file(duration: 3 * 3600)
        #expect(tooLong == nil)
        let root = await f.call(Users.root, .request) { $0.capability = "sudo" }
        #expect(root.error?.code == "refused")
    }

    @Test func twoDistinctApprovals() async throws {
        let f = try await Fixture()
        defer { f.cleanup() }
        let filed = try #require(await f.file(flow: "dual", duration: nil, reason: ""))
        #expect(filed.requiredApprovals == 2)
        let first = await f.call(Users.approver1, .approve) { $0.id = filed.id }
        #expect(first.request?.state == "pending")
        #expect(try f.grants().isEmpty)
        let twice = await f.call(Users.approver1, .approve) { $0.id = filed.id }
        #expect(twice.error?.message.contains("already approved") == true)
        let second = await f.call(Users.approver2, .approve) { $0.id = filed.id }
        #expect(second.request?.state == "approved")
        #expect(try f.grants().count == 1)
        #expect(try f.grants().first?.expiresAt == f.clock.now + 600)
    }

    @Test func concurrentApprovalsYieldOneGrant() async throws {
        let f = try await Fixture()
        defer { f.cleanup() }
        let filed = try #require(await f.file())
        await withTaskGroup(of: Void.self) { group in
            for peer in [Users.approver1, Users.approver2, Users.approver1, Users.approver2] {
                group.addTask { _ = await f.call(peer, .approve) { $0.id = filed.id } }
            }
        }
        #expect(try f.grants().count == 1)
    }

    @Test func unansweredRequestExpiresAtItsDeadlineEvenIfTheTickIsLate() async throws {
        let f = try await Fixture()
        defer { f.cleanup() }
        let filed = try #require(await f.file())
        f.clock.advance(600)
        // A decision at the deadline loses to it, before any tick has run.
        let late = await f.call(Users.approver1, .approve) { $0.id = filed.id }
        #expect(late.error?.message.contains("expired") == true)
        await f.engine.tick()
        let view = await f.call(Users.requester, .get) { $0.id = filed.id }
        #expect(view.request?.state == "expired")
        #expect(try f.auditEvents().last == "request.expire")
        #expect(try f.grants().isEmpty)
    }

    @Test func grantEndsOnTimeAndClockStepsDoNotRepeatOrMissIt() async throws {
        let f = try await Fixture()
        defer { f.cleanup() }
        let filed = try #require(await f.file(duration: 300))
        _ = await f.call(Users.approver1, .approve) { $0.id = filed.id }
        let grant = try #require(try f.grants().first)
        f.clock.advance(299)
        await f.engine.tick()
        #expect(try f.auditEvents().contains("grant.expire") == false)
        // Clock stepped forwards past the end: applied once, stamped with the grant's end.
        f.clock.advance(3600)
        await f.engine.tick()
        let expire = try AuditLog(path: f.config.auditPath).lines().filter { $0.contains("\"event\":\"grant.expire\"") }
        #expect(expire.count == 1)
        #expect(AuditLine.field("time", in: expire[0]) == String(grant.expiresAt))
        // Stepped back before the end, then forwards again: nothing is ended twice.
        f.clock.set(grant.expiresAt - 100)
        await f.engine.tick()
        f.clock.set(grant.expiresAt + 10)
        await f.engine.tick()
        #expect(try f.auditEvents().filter { $0 == "grant.expire" }.count == 1)
        let status = await f.call(Users.root, .ping)
        #expect(status.daemon?.activeGrants == 0)
        #expect(status.daemon?.nextDeadline == nil)
    }

    @Test func expiriesDueWhileDownAreAppliedAtStart() async throws {
        let f = try await Fixture()
        defer { f.cleanup() }
        let filed = try #require(await f.file(duration: 300))
        _ = await f.call(Users.approver1, .approve) { $0.id = filed.id }
        // writd "stops"; time passes; a new engine starts on the same files.
        f.clock.advance(7200)
        let restarted = try Engine(config: f.config, logger: Logger(label: "test"), timer: nil)
        await restarted.start()
        #expect(try f.auditEvents().filter { $0 == "grant.expire" }.count == 1)
        #expect(AuditChain.verify(try AuditLog(path: f.config.auditPath).lines()).isIntact)
    }

    @Test func outboxRecordAppendedBeforeACrashIsNotWrittenTwice() async throws {
        let f = try await Fixture()
        defer { f.cleanup() }
        let state = try StateStore(storePath: f.config.storePath, statePath: f.config.statePath)
        let sink = AuditSink(log: AuditLog(path: f.config.auditPath))
        try state.transaction { () throws(StoreError) in
            try sink.queue(state.db, AuditEvent(time: 1, event: "test.crash", actor: "t"))
        }
        // Simulate: appended, then killed before the outbox row was deleted.
        let s = try state.db.prepare("SELECT id FROM d.outbox")
        #expect(try s.step())
        let id = s.string(0)
        try AuditLog(path: f.config.auditPath).append(
            AuditEvent(time: 1, event: "test.crash", actor: "t", fields: [.init("id", id)])
        )
        #expect(try sink.flush(state.db) == 0)
        #expect(try f.auditEvents().filter { $0 == "test.crash" }.count == 1)
        // And a queued record that never reached the log is appended at restart.
        try state.transaction { () throws(StoreError) in
            try sink.queue(state.db, AuditEvent(time: 2, event: "test.queued", actor: "t"))
        }
        #expect(try sink.flush(state.db) == 1)
        #expect(try f.auditEvents().last == "test.queued")
    }

    @Test func onlyRootMayReportAndAdminister() async throws {
        let f = try await Fixture()
        defer { f.cleanup() }
        let forged = await f.call(Users.requester, .report) {
            $0.event = "session_close"
            $0.user = "bin"
        }
        #expect(forged.error?.code == "forbidden")
        let add = await f.call(Users.requester, .grantAdd) {
            $0.user = "daemon"
            $0.capability = "sudo"
            $0.duration = 60
        }
        #expect(add.error?.code == "forbidden")
        let reload = await f.call(Users.approver1, .reload)
        #expect(reload.error?.code == "forbidden")
        let version = await f.engine.handle(
            { () -> WireRequest in
                var r = WireRequest(op: .ping)
                r.v = 2
                return r
            }(),
            from: .socket(Users.requester)
        )
        #expect(version.error?.code == "unsupported_version")
    }

    @Test func badPolicyReloadKeepsTheLastGoodOne() async throws {
        let f = try await Fixture()
        defer { f.cleanup() }
        let before = await f.call(Users.root, .ping).daemon?.policyVersion
        let fd = open(f.config.policyPath, O_WRONLY | O_TRUNC)
        _ = Array("version: 1\nflows:\n  - name: x\n    capability: nope\n".utf8).withUnsafeBytes {
            write(fd, $0.baseAddress, $0.count)
        }
        close(fd)
        let reload = await f.call(Users.root, .reload)
        #expect(reload.error?.code == "policy")
        let after = await f.call(Users.root, .ping).daemon
        #expect(after?.policyVersion == before)
        #expect(after?.policyError?.contains("policy.yaml:4:") == true)
        #expect(await f.file() != nil)
    }
}

@Suite(.serialized) struct PolicyFileTests {
    @Test func aPolicyOthersCanWriteIsRefused() async throws {
        let f = try await Fixture()
        defer { f.cleanup() }
        chmod(f.config.policyPath, 0o666)
        let reload = await f.call(Users.root, .reload)
        #expect(reload.error?.code == "policy")
        #expect(reload.error?.message.contains("must be root's and not writable by others") == true)
        // The last good policy stays in force.
        #expect(await f.file() != nil)
    }
}

extension AuditChain.Verdict {
    var isIntact: Bool {
        if case .intact = self { return true }
        return false
    }
}
