import Dispatch
import Glibc
import Synchronization
import Testing
import WritAudit
import WritCore
import WritProcesses
import WritProtocol

@testable import WritDaemon

/// What one local account can cost everyone else: refused requests, request churn, sudo
/// refusals, audit reads.
@Suite(.serialized) struct FloodTests {
    func auditLines(_ f: Fixture) throws -> [String] {
        try AuditLog(path: f.config.auditPath).lines()
    }

    @Test("a user in no flow refusing in a loop adds a bounded number of records, and the count")
    func refusedRequestsAreBudgeted() async throws {
        let f = try await Fixture()
        defer { f.cleanup() }
        let before = try auditLines(f).count
        let commands = (0..<32).map { "/usr/bin/true " + String(repeating: "a", count: 400 + $0) }
        for _ in 0..<500 {
            let r = await f.call(Users.outsider, .request) {
                $0.capability = "sudo"
                $0.commands = commands
                $0.reason = "INC-1"
            }
            // Refused by the policy, then (after 30) by the filing rate: both are refusals.
            #expect(r.error?.code == "policy" || r.error?.code == "rate_limited")
        }
        let added = try auditLines(f).dropFirst(before)
        // The budget (20) plus the record that says further ones are counted.
        #expect(added.count == 21, "\(added.count) records")
        #expect(added.last?.contains("further refused requests of games are counted") == true)
        let bytes = added.reduce(0) { $0 + $1.utf8.count }
        #expect(bytes < 21 * 20_000, "\(bytes) bytes of audit")
        // A steady flood stays muted; once the whole budget is back (20 x 30 s), the next record
        // says how many were not recorded.
        f.clock.advance(30)
        _ = await f.call(Users.outsider, .request) {
            $0.capability = "sudo"
            $0.reason = "INC-1"
        }
        #expect(try auditLines(f).count == before + 21)
        f.clock.advance(600)
        _ = await f.call(Users.outsider, .request) {
            $0.capability = "sudo"
            $0.reason = "INC-1"
        }
        let next = try auditLines(f).last ?? ""
        #expect(next.contains("\"event\":\"request.refuse\"") && next.contains("\"not_recorded_before\":\"480\""))
    }

    @Test("command lists are bounded: 32 commands, 4 KiB each, 16 KiB in all")
    func commandListLimits() async throws {
        let f = try await Fixture()
        defer { f.cleanup() }
        let many = await f.call(Users.requester, .request) {
            $0.capability = "sudo"
            $0.commands = (0..<33).map { "/usr/bin/id \($0)" }
        }
        #expect(many.error?.code == "bad_request" && many.error?.message.contains("33 commands") == true)
        let long = await f.call(Users.requester, .request) {
            $0.capability = "sudo"
            $0.commands = ["/usr/bin/id " + String(repeating: "x", count: 5000)]
        }
        #expect(long.error?.message.contains("5012 bytes long") == true)
        let total = await f.call(Users.requester, .request) {
            $0.capability = "sudo"
            $0.commands = (0..<8).map { _ in "/usr/bin/id " + String(repeating: "x", count: 3000) }
        }
        #expect(total.error?.message.contains("over the limit of 16384") == true)
    }

    @Test("filing and cancelling in a loop is rate limited after 30, and the limit is audited once")
    func requestChurnIsLimited() async throws {
        let f = try await Fixture()
        defer { f.cleanup() }
        var filed = 0
        var limited: WireResponse?
        for _ in 0..<60 {
            let r = await f.call(Users.requester, .request) {
                $0.capability = "sudo"
                $0.flow = "dual"
            }
            guard let id = r.request?.id else {
                limited = r
                continue
            }
            filed += 1
            _ = await f.call(Users.requester, .cancel) { $0.id = id }
        }
        #expect(filed == 30)
        #expect(limited?.error?.code == "rate_limited")
        #expect(limited?.error?.message.contains("try again in") == true)
        // Others are not limited by it.
        let other = await f.call(Users.approver1, .status)
        #expect(other.ok)
        f.clock.advance(20)
        let again = await f.call(Users.requester, .request) {
            $0.capability = "sudo"
            $0.flow = "dual"
        }
        #expect(again.request != nil)
        let limits = try auditLines(f).filter { $0.contains("\"event\":\"request.limit\"") }
        #expect(limits.count >= 1 && limits.count <= 21)
    }

    @Test("sudo refusals reported in a loop are budgeted per user; a long command is cut, saying so")
    func sudoRefusalsAreBudgeted() async throws {
        let f = try await Fixture()
        defer { f.cleanup() }
        let before = try auditLines(f).count
        for _ in 0..<300 {
            let r = await f.call(Users.root, .report) {
                $0.event = "sudo_reject"
                $0.user = "games"
                $0.service = "sudo"
                $0.commands = ["/bin/true " + String(repeating: "y", count: 50_000)]
            }
            #expect(r.ok)
        }
        let added = try auditLines(f).dropFirst(before)
        #expect(added.count == 61)
        #expect(added.allSatisfy { $0.utf8.count < 6000 })
        #expect(added.first?.contains("…[cut: 50010 bytes in all]") == true)
        // Another user's refusals are recorded: the budget is per account.
        let r = await f.call(Users.root, .report) {
            $0.event = "sudo_reject"
            $0.user = "bin"
            $0.service = "sudo"
        }
        #expect(r.ok)
        #expect(try auditLines(f).last?.contains("\"actor\":\"bin\"") == true)
    }

    @Test("AuditBudget: a burst, then one per interval, counting the rest")
    func budget() {
        var b = AuditBudget(burst: 2, refillSeconds: 10)
        #expect(b.spend("u", now: 0) == .record(notRecorded: 0))
        #expect(b.spend("u", now: 0) == .record(notRecorded: 0))
        #expect(b.spend("u", now: 1) == .recordAndMute)
        #expect(b.spend("u", now: 2) == .countOnly)
        #expect(b.spend("u", now: 3) == .countOnly)
        #expect(b.spend("v", now: 3) == .record(notRecorded: 0))
        // Still muted while the budget is only partly back; recorded once it is whole again.
        #expect(b.spend("u", now: 10) == .countOnly)
        #expect(b.spend("u", now: 20) == .record(notRecorded: 3))
        #expect(b.take("w", now: 0) == nil)
        #expect(b.take("w", now: 0) == nil)
        #expect(b.take("w", now: 4) == 6)
        #expect(b.take("w", now: 10) == nil)
        // A clock stepped back does not hand out tokens.
        #expect(b.take("w", now: 5) == 10)
    }

    @Test("writ audit reads a bounded tail: newest records, since, a user's own, an append in progress skipped")
    func auditTail() async throws {
        let f = try await Fixture()
        defer { f.cleanup() }
        let path = f.dir + "/tail.jsonl"
        let log = AuditLog(path: path)
        for i in 0..<3000 {
            _ = try log.append(
                AuditEvent(
                    time: 1_000 + Int64(i),
                    event: "test.event",
                    actor: i % 3 == 0 ? "daemon" : "bin",
                    fields: [.init("n", String(i)), .init("pad", String(repeating: "p", count: 300))]
                )
            )
        }
        let all = try log.tail(maxBytes: 64 << 20, maxRecords: 100_000) { _ in true }
        #expect(all.complete && all.lines.count == 3000)
        #expect(all.lines.first?.contains("\"n\":\"0\"") == true && all.lines.last?.contains("\"n\":\"2999\"") == true)
        let since = try log.tail(since: 3_990, maxBytes: 64 << 20, maxRecords: 100) { _ in true }
        #expect(since.complete && since.lines.count == 10)
        let capped = try log.tail(maxBytes: 300 << 10, maxRecords: 100_000) { _ in true }
        #expect(!capped.complete && capped.lines.count < 3000 && capped.scannedBytes <= 600 << 10)
        #expect(capped.lines.last?.contains("\"n\":\"2999\"") == true)
        let mine = try log.tail(maxBytes: 64 << 20, maxRecords: 100_000, mentioning: "\"daemon\"") {
            AuditLine.field("actor", in: $0) == "daemon"
        }
        #expect(mine.lines.count == 1000)
        // A line being appended (no newline yet) is not shown.
        let fd = open(path, O_WRONLY | O_APPEND)
        _ = "{\"seq\":9999,\"partial".withCString { write(fd, $0, strlen($0)) }
        close(fd)
        let during = try log.tail(maxBytes: 64 << 20, maxRecords: 5) { _ in true }
        #expect(during.lines.count == 5 && during.lines.last?.contains("\"n\":\"2999\"") == true)

        // Through writd: a user's own records only, from the newest 8 MiB.
        let own = await f.call(Users.requester, .audit)
        #expect(own.ok && (own.audit ?? []).allSatisfy { $0.contains("\"daemon\"") })
    }
}

@Suite("DirectoryCache") struct DirectoryCacheTests {
    final class Flag: Sendable { let value = Mutex(false) }

    /// A directory whose answers for uid 777 wait until `release` is signalled, and say when
    /// they have returned.
    static func directory(release: DispatchSemaphore, returned: Flag) -> DirectoryCache.Directory {
        DirectoryCache.Directory(
            user: { uid in
                if uid == 777 {
                    release.wait()
                    returned.value.withLock { $0 = true }
                }
                return UserDirectory.Account(name: "u\(uid)", uid: uid, gid: uid)
            },
            userNamed: { _ in nil },
            groupNames: { ["g\($0.uid)"] },
            members: { _ in [] }
        )
    }

    @Test("a hanging lookup fails its own request after the deadline; others are answered meanwhile")
    func hangingDirectory() async {
        // No clock bounds (a loaded machine stalls for seconds): the hung lookup is held until the
        // end, so each answer below provably came while it still hung.
        let release = DispatchSemaphore(value: 0)
        let returned = Flag()
        let cache = DirectoryCache(
            clock: { Int64(time(nil)) },
            directory: Self.directory(release: release, returned: returned)
        )
        async let stuck = cache.prepare(uid: 777)
        try? await Task.sleep(for: .milliseconds(100))
        let other = await cache.prepare(uid: 1000)
        #expect(other == nil)
        #expect(cache.user(uid: 1000)?.name == "u1000" && cache.groupNames(of: cache.user(uid: 1000)!) == ["g1000"])
        let why = await stuck
        #expect(why?.contains("did not answer") == true)
        #expect(returned.value.withLock { $0 } == false, "the hung lookup was waited for")
        release.signal()
    }

    @Test("an answer is kept and used on the engine without asking NSS again")
    func cached() async {
        let asked = Mutex(0)
        let cache = DirectoryCache(
            clock: { 1000 },
            directory: DirectoryCache.Directory(
                user: { uid in
                    asked.withLock { $0 += 1 }
                    return UserDirectory.Account(name: "u\(uid)", uid: uid, gid: uid)
                },
                userNamed: { _ in nil },
                groupNames: { _ in [] },
                members: { _ in [] }
            )
        )
        #expect(await cache.prepare(uid: 5) == nil)
        for _ in 0..<10 { #expect(cache.user(uid: 5)?.name == "u5") }
        #expect(await cache.prepare(uid: 5) == nil)
        #expect(asked.withLock { $0 } == 1)
    }
}
