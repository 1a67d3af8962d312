import Glibc
import Testing
import WritAudit
import WritCore
import WritProtocol
import WritStore

@testable import WritDaemon

/// A directory root owns that others can read but not write (hooks run as `nobody` and their
/// paths are checked like that): under /run, not /tmp, which everyone can write.
func hookDirectory() throws -> String {
    var template = Array("/run/writ-hooktest.XXXXXX".utf8CString)
    let made = template.withUnsafeMutableBufferPointer { $0.baseAddress.flatMap { mkdtemp($0) } }
    guard made != nil else { throw HookDirError() }
    let dir = String(cString: template)
    chmod(dir, 0o755)
    return dir
}

struct HookDirError: Error {}

func writeExecutable(_ path: String, _ text: String) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o755)
    _ = Array(text.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
    chmod(path, 0o755)
}

/// Approval steps, escalation, auto_deny and on_request hooks, through writd's engine.
@Suite(.serialized) struct ApprovalAsCodeTests {
    static let stepsPolicy = """
        version: 1
        flows:
          - name: staged
            capability: sudo
            requesters: {users: [daemon]}
            duration: {default: 30m, max: 2h}
            reason: {required: false}
            pending_timeout: 2h
            auto_deny: [{name: too-long, when: 'request.duration > duration("1h")', message: ask for 1h or less}]
            steps:
              - {name: team, approvers: {users: [bin]}}
              - {name: security, approvers: {users: [sys]}, escalate: {after: 10m, to: {users: [games]}}}
        """

    @Test func stepsAreTakenInOrderAndEscalateWhenUnanswered() async throws {
        let f = try await Fixture(policy: Self.stepsPolicy)
        defer { f.cleanup() }
        let filed = try #require(await f.file(flow: "staged", duration: 1800, reason: ""))
        #expect(filed.steps?.map(\.name) == ["team", "security"])
        // Security cannot approve before the team has.
        let early = await f.call(Users.approver2, .approve) { $0.id = filed.id }
        #expect(early.error?.message.contains("waits for step team") == true)
        let team = await f.call(Users.approver1, .approve) { $0.id = filed.id }
        #expect(team.request?.state == "pending")
        #expect(team.request?.currentStep == 1)
        // games may not approve yet; after 10 minutes unanswered, it may.
        #expect(await f.call(Users.outsider, .approve) { $0.id = filed.id }.error != nil)
        f.clock.advance(600)
        await f.engine.tick()
        let later = await f.call(Users.outsider, .approve) { $0.id = filed.id }
        #expect(later.request?.state == "approved")
        #expect(try f.grants().count == 1)
        let events = try f.auditEvents()
        #expect(events.contains("request.step"))
        #expect(events.contains("request.escalate"))
        #expect(AuditChain.verify(try AuditLog(path: f.config.auditPath).lines()).isIntact)
    }

    @Test func autoDenyDecidesAtOnceAndSaysWhy() async throws {
        let f = try await Fixture(policy: Self.stepsPolicy)
        defer { f.cleanup() }
        let filed = try #require(await f.file(flow: "staged", duration: 7200, reason: ""))
        #expect(filed.state == "denied")
        #expect(filed.decisionNote == "ask for 1h or less")
        #expect(filed.decidedVia == "auto_deny rule too-long")
        #expect(try f.grants().isEmpty)
        let lines = try AuditLog(path: f.config.auditPath).lines()
        let deny = try #require(lines.first { AuditLine.field("event", in: $0) == "request.deny" })
        #expect(AuditLine.field("decided_by", in: deny) == "auto_deny rule too-long")
        #expect(AuditLine.field("actor", in: deny) == "policy:too-long")
    }

    @Test func aPolicyRefusalIsAudited() async throws {
        let f = try await Fixture()
        defer { f.cleanup() }
        let refused = await f.call(Users.requester, .request) {
            $0.capability = "sudo"
            $0.flow = "ops"
            $0.reason = "no ticket"
        }
        #expect(refused.error?.code == "policy")
        let lines = try AuditLog(path: f.config.auditPath).lines()
        let r = try #require(lines.first { AuditLine.field("event", in: $0) == "request.refuse" })
        #expect(AuditLine.field("requester", in: r) == "daemon")
        #expect(AuditLine.field("message", in: r)?.hasPrefix("reason must match") == true)
    }

    /// Hooks run as nobody here: the built-in writ-hook account exists only where install.sh ran.
    func hookPolicy(_ hook: String, timeout: String = "5s") -> String {
        """
        version: 1
        hook_user: nobody
        flows:
          - name: hooked
            capability: sudo
            requesters: {users: [daemon]}
            approvers: {users: [bin]}
            duration: {default: 30m, max: 2h}
            reason: {required: false}
            hooks: {on_request: {path: \(hook), timeout: \(timeout)}}
        """
    }

    /// Waits (real time) until the request is no longer in `state`, or 10 s.
    func waitWhile(_ f: Fixture, _ id: String, _ test: (RequestView) -> Bool) async -> RequestView? {
        for _ in 0..<200 {
            let r = await f.call(Users.requester, .get) { $0.id = id }.request
            if let r, !test(r) { return r }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return await f.call(Users.requester, .get) { $0.id = id }.request
    }

    @Test func anOnRequestHookApprovesForNoLongerThanItSays() async throws {
        let dir = try hookDirectory()
        defer { _ = system("rm -rf '\(dir)'") }
        writeExecutable(
            dir + "/approve.sh",
            "#!/bin/sh\ncat >/dev/null\necho '{\"decision\": \"approve\", \"reason\": \"on call\", \"duration\": 600}'\n"
        )
        let f = try await Fixture(policy: hookPolicy(dir + "/approve.sh"))
        defer { f.cleanup() }
        let filed = try #require(await f.file(flow: "hooked", duration: 1800, reason: ""))
        #expect(filed.state == "pending")
        let decided = await waitWhile(f, filed.id) { $0.state == "pending" }
        #expect(decided?.state == "approved")
        #expect(decided?.duration == 600)
        #expect(decided?.decidedVia == "hook on_request (\(dir)/approve.sh)")
        let grant = try #require(try f.grants().first)
        #expect(grant.expiresAt - grant.notBefore == 600)
        let lines = try AuditLog(path: f.config.auditPath).lines()
        let run = try #require(lines.first { AuditLine.field("event", in: $0) == "hook.run" })
        #expect(AuditLine.field("result", in: run) == "approve")
    }

    @Test func aFailingHookLeavesTheRequestToPeople() async throws {
        let dir = try hookDirectory()
        defer { _ = system("rm -rf '\(dir)'") }
        writeExecutable(dir + "/garbage.sh", "#!/bin/sh\necho 'this is not json'\n")
        writeExecutable(dir + "/slow.sh", "#!/bin/sh\nsleep 30\n")
        for (hook, timeout) in [("garbage.sh", "5s"), ("slow.sh", "1s")] {
            let f = try await Fixture(policy: hookPolicy(dir + "/" + hook, timeout: timeout))
            defer { f.cleanup() }
            let filed = try #require(await f.file(flow: "hooked", duration: 1800, reason: ""))
            var run: String? = nil
            for _ in 0..<100 where run == nil {
                try await Task.sleep(for: .milliseconds(50))
                run = try AuditLog(path: f.config.auditPath).lines().first {
                    AuditLine.field("event", in: $0) == "hook.run"
                }
            }
            #expect(run.flatMap { AuditLine.field("result", in: $0) } == "failed", "\(hook)")
            let still = await f.call(Users.requester, .get) { $0.id = filed.id }.request
            #expect(still?.state == "pending")
            // People decide as usual.
            #expect(await f.call(Users.approver1, .approve) { $0.id = filed.id }.request?.state == "approved")
        }
    }

    @Test func aDeferringHookAddsApproversButNeverTheRequester() async throws {
        let dir = try hookDirectory()
        defer { _ = system("rm -rf '\(dir)'") }
        writeExecutable(
            dir + "/defer.sh",
            "#!/bin/sh\necho '{\"decision\": \"defer\", \"add_approvers\": [\"sys\", \"daemon\", \"no-such-user-x\"]}'\n"
        )
        let f = try await Fixture(policy: hookPolicy(dir + "/defer.sh"))
        defer { f.cleanup() }
        let filed = try #require(await f.file(flow: "hooked", duration: 1800, reason: ""))
        let updated = await waitWhile(f, filed.id) { !$0.approvers.contains("sys") }
        #expect(updated?.approvers == ["bin", "sys"])
        #expect(await f.call(Users.approver2, .approve) { $0.id = filed.id }.request?.state == "approved")
    }
}

/// The cap on hooks running at once (`Engine.maxRunningHooks`).
@Suite(.serialized) struct HookCapTests {
    @Test func beyondTheCapAHookIsNotRunAndItsRequestGoesToPeople() async throws {
        let dir = try hookDirectory()
        defer { _ = system("rm -rf '\(dir)'") }
        // Each hook holds its slot until the test lets it go (a timeout could free slots while a
        // busy machine is still filing the requests).
        writeExecutable(dir + "/slow.sh", "#!/bin/sh\nwhile [ ! -e \(dir)/go ]; do sleep 0.05; done\n")
        let f = try await Fixture(
            policy: """
                version: 1
                hook_user: nobody
                flows:
                  - name: hooked
                    capability: sudo
                    requesters: {users: [daemon]}
                    approvers: {users: [bin]}
                    reason: {required: false}
                    hooks: {on_request: {path: \(dir)/slow.sh, timeout: 60s}}
                """
        )
        defer { f.cleanup() }
        var ids: [String] = []
        for _ in 0...Engine.maxRunningHooks {
            ids.append(try #require(await f.file(flow: "hooked", duration: 600, reason: "")).id)
        }
        // The last one found every slot taken: refused at once, audited, left to people.
        let lines = try AuditLog(path: f.config.auditPath).lines().filter {
            AuditLine.field("event", in: $0) == "hook.run"
        }
        #expect(lines.count == 1)
        #expect(lines.first.flatMap { AuditLine.field("request", in: $0) } == ids.last)
        #expect(lines.first.flatMap { AuditLine.field("error", in: $0) }?.contains("hooks are running already") == true)
        // Let the running ones finish before the fixture goes away.
        close(open(dir + "/go", O_WRONLY | O_CREAT, 0o644))
        for _ in 0..<100 {
            let runs = try AuditLog(path: f.config.auditPath).lines().filter {
                AuditLine.field("event", in: $0) == "hook.run"
            }
            if runs.count == ids.count { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(await f.call(Users.approver1, .approve) { $0.id = ids.last }.request?.state == "approved")
    }
}
