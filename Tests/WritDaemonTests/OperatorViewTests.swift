import Testing
import WritCore
import WritProtocol

@testable import WritDaemon

/// What a requester and an approver are shown, and what writd refuses instead of ignoring.
@Suite(.serialized) struct OperatorViewTests {
    @Test("writ flows: the flows the caller may request, what they grant and who approves")
    func flows() async throws {
        let f = try await Fixture()
        defer { f.cleanup() }
        let mine = await f.call(Users.requester, .flows).flows ?? []
        #expect(mine.map(\.name) == ["ops", "dual"])
        #expect(mine.first?.approvers == ["bin", "sys"])
        #expect(mine.first?.reasonPattern == "^INC-[0-9]+")
        #expect(mine.first?.maxDuration == 7200)
        #expect(mine.last?.approvals == 2)
        let none = await f.call(Users.outsider, .flows)
        #expect(none.ok && none.flows == [])
    }

    @Test("audit --user from someone other than root is refused, not quietly ignored")
    func auditOfOthers() async throws {
        let f = try await Fixture()
        defer { f.cleanup() }
        let other = await f.call(Users.requester, .audit) { $0.user = "bin" }
        #expect(other.error?.code == "forbidden")
        let own = await f.call(Users.requester, .audit) { $0.user = "daemon" }
        #expect(own.ok)
        let root = await f.call(Users.root, .audit) { $0.user = "bin" }
        #expect(root.ok)
    }

    @Test("a reason over the limit is refused with its real length, never cut")
    func longReason() async throws {
        let f = try await Fixture()
        defer { f.cleanup() }
        let reason = "INC-1 " + String(repeating: "x", count: 1494)
        let r = await f.call(Users.requester, .request) {
            $0.capability = "sudo"
            $0.flow = "ops"
            $0.reason = reason
        }
        #expect(r.error?.message == "the reason is 1500 characters, over the limit of 500 — shorten it")
        let filed = try #require(await f.file())
        let comment = await f.call(Users.approver1, .approve) {
            $0.id = filed.id
            $0.comment = String(repeating: "c", count: 1001)
        }
        #expect(comment.error?.message == "the comment is 1001 characters, over the limit of 1000 — shorten it")
        #expect(await f.call(Users.approver1, .get) { $0.id = filed.id }.request?.approvals.isEmpty == true)
    }

    @Test("root's grant add needs a reason")
    func grantAddNeedsReason() async throws {
        let f = try await Fixture()
        defer { f.cleanup() }
        let add = await f.call(Users.root, .grantAdd) {
            $0.user = "daemon"
            $0.capability = "sudo"
            $0.duration = 60
            $0.reason = "   "
        }
        #expect(add.error?.code == "bad_request")
        #expect(add.error?.message.contains("needs --reason") == true)
    }
}
