import Testing
import WritCore
import WritEngine
import WritStore

@testable import WritDaemon

@Suite("Fleet: clock skew only shortens a grant")
struct ClockSkewTests {
    @Test("the local end is never later, the local start never earlier, whatever the skew and the delays")
    func bounds() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            var skew = ClockSkew()
            // Local minus server, ±10 minutes; each answer's delays up to 2 s each way.
            let truth = Int64.random(in: -600_000...600_000, using: &rng)
            var latest: Int64 = 0
            for _ in 0..<Int.random(in: 1...5, using: &rng) {
                let stamp = Int64.random(in: 1_800_000_000_000...1_800_000_100_000, using: &rng)
                let sent = stamp + truth - Int64.random(in: 0...2000, using: &rng)
                let received = stamp + truth + Int64.random(in: 0...2000, using: &rng)
                skew.add(sentAt: sent, receivedAt: received, serverTime: stamp)
                latest = max(latest, stamp)
            }
            let end = Int64.random(in: 1_800_000_000...1_800_100_000, using: &rng)
            let localEnd = skew.localEnd(end)!
            let localStart = skew.localStart(end)!
            // In milliseconds of the local clock: the server's end is at end*1000 + truth.
            #expect(localEnd * 1000 <= end * 1000 + truth, "end \(end), truth \(truth): \(localEnd)")
            // A start still to come on the server's clock: never earlier here.
            if end * 1000 > latest {
                #expect(localStart * 1000 >= end * 1000 + truth, "start \(end), truth \(truth): \(localStart)")
            }
            // And not much earlier than it need be: within the delays plus a second.
            #expect(localEnd * 1000 >= end * 1000 + truth - 5000)
        }
    }

    @Test("a stepped clock starts the bounds again from the new answer")
    func step() {
        var skew = ClockSkew()
        skew.add(sentAt: 1_000_000, receivedAt: 1_000_050, serverTime: 1_000_000)
        #expect(skew.localEnd(2000) == 2000)
        // The host's clock is set back ten minutes: the next answer contradicts the bounds.
        let moved = skew.add(sentAt: 1_005_000 - 600_000, receivedAt: 1_005_040 - 600_000, serverTime: 1_005_000)
        #expect(moved)
        #expect(skew.localEnd(2000) == 1400)
        // A long-poll that waited 30 s gives a loose lower bound, which changes nothing.
        let loose = skew.add(sentAt: 1_010_000 - 630_000, receivedAt: 1_040_010 - 600_000, serverTime: 1_040_000)
        #expect(!loose)
        #expect(skew.localEnd(2000) == 1400)
    }
}

@Suite("Fleet: writd applies the server's grants", .serialized)
struct FleetApplyTests {
    /// A grant for `user` as the server sends it, in server seconds.
    static func grant(_ id: String, user: String = "daemon", start: Int64, end: Int64) -> EngineGrant {
        EngineGrant(
            id: id,
            requestID: "r_1",
            user: user,
            capability: "sudo",
            host: "web-*",
            runas: "root",
            commands: nil,
            notBefore: start,
            expiresAt: end,
            approvedBy: "bin",
            reason: "INC-1"
        )
    }

    /// An answer stamped `server` (seconds) by the server, sent and received 20 ms around it on
    /// the host's clock, which is `skew` seconds ahead.
    static func answer(_ grants: [EngineGrant], server: Int64, skew: Int64, snapshot: Bool = false) -> FleetAnswer {
        let local = (server + skew) * 1000
        return FleetAnswer(
            grants: grants,
            cursor: "1.\(grants.count)",
            snapshot: snapshot,
            serverTime: server * 1000,
            sentAt: local - 20,
            receivedAt: local + 20
        )
    }

    @Test(
        "a host ten minutes off never keeps a grant longer than the server meant",
        arguments: [-600, 0, 600] as [Int64]
    )
    func skewedHost(skew: Int64) async throws {
        let server: Int64 = 1_800_000_000
        let f = try await Fixture(start: server + skew)
        defer { f.cleanup() }
        let applied = await f.engine.applyFleet(
            Self.answer(
                [Self.grant("g_1", start: server, end: server + 1800)],
                server: server,
                skew: skew,
                snapshot: true
            )
        )
        #expect(applied.added == 1)
        let g = try #require(try f.grants().first)
        #expect(g.uid == 1 && g.user == "daemon")
        // What is left by the host's clock is at most what the server meant, and within a second.
        let left = g.expiresAt - f.clock.now
        #expect(left <= 1800 && left >= 1799, "\(left)")
        // Started on the server already: in force here at once.
        #expect(g.notBefore <= f.clock.now && g.state(at: f.clock.now) == .active)
        #expect(await f.engine.fleetCursor() == "1.1")
    }

    @Test(
        "revocations, extensions, and a snapshot that no longer lists a grant; unknown accounts and root are not enforced"
    )
    func changes() async throws {
        let server: Int64 = 1_800_000_000
        let f = try await Fixture(start: server)
        defer { f.cleanup() }
        var a = Self.grant("g_a", start: server, end: server + 600)
        let b = Self.grant("g_b", start: server, end: server + 600)
        let c = Self.grant("g_c", start: server, end: server + 600)
        let nobodyHere = Self.grant("g_x", user: "no-such-user-here", start: server, end: server + 600)
        let root = Self.grant("g_r", user: "root", start: server, end: server + 600)
        let first = await f.engine.applyFleet(
            Self.answer([a, b, c, nobodyHere, root], server: server, skew: 0, snapshot: true)
        )
        #expect(first.added == 3 && Set(first.skipped) == ["no-such-user-here", "root"])

        // Extended on the server: the end moves here.
        a.expiresAt = server + 1200
        var revokedB = b
        revokedB.revokedAt = server + 10
        revokedB.revokedBy = "bin"
        let second = await f.engine.applyFleet(Self.answer([a, revokedB], server: server + 10, skew: 0))
        #expect(second.changed >= 1 && second.ended == 1)
        let byID = Dictionary(uniqueKeysWithValues: try f.grants().map { ($0.id, $0) })
        // 20 ms of delay before the server's stamp: the end is the second before (never after).
        #expect(byID["g_a"]?.expiresAt == server + 1200 - 1)
        #expect(byID["g_b"]?.revokedBy == "bin" && byID["g_b"]?.revokedAt != nil)

        // A snapshot without c: it ended on the server while this host did not hear.
        let third = await f.engine.applyFleet(Self.answer([a], server: server + 20, skew: 0, snapshot: true))
        #expect(third.ended == 1)
        #expect(try f.grants().first { $0.id == "g_c" }?.revokedBy == "writ-server")
        let events = try f.auditEvents()
        #expect(events.filter { $0 == "grant.issue" }.count == 3)
        #expect(events.filter { $0 == "grant.revoke" }.count == 2)
        #expect(events.contains("grant.extend"))
    }

    @Test("the host's clock set back after a grant arrived: its local end moves back with it")
    func clockSetBack() async throws {
        let server: Int64 = 1_800_000_000
        let f = try await Fixture(start: server)
        defer { f.cleanup() }
        await f.engine.applyFleet(
            Self.answer([Self.grant("g_1", start: server, end: server + 1800)], server: server, skew: 0, snapshot: true)
        )
        #expect(try f.grants().first?.expiresAt == server + 1800 - 1)
        // Ten minutes later by the server, the host's clock reads five minutes: set back 5 min.
        f.clock.set(server + 300)
        await f.engine.applyFleet(Self.answer([], server: server + 600, skew: -300))
        let g = try #require(try f.grants().first)
        #expect(g.expiresAt == server + 1800 - 300 - 1, "\(g.expiresAt - server)")
        #expect(g.expiresAt - f.clock.now == 1200 - 1)
    }

    @Test("strict mode: silent past the limit, the server's grants are refused for new use until it answers again")
    func strict() async throws {
        let server: Int64 = 1_800_000_000
        let f = try await Fixture(start: server)
        defer { f.cleanup() }
        await f.engine.applyFleet(
            Self.answer([Self.grant("g_1", start: server, end: server + 3600)], server: server, skew: 0, snapshot: true)
        )
        // Root's own grant on this host is not the server's to suspend.
        let local = await f.call(Users.root, .grantAdd) {
            $0.user = "bin"
            $0.capability = "sudo"
            $0.duration = 3600
            $0.reason = "local break-glass"
        }
        #expect(local.ok)
        f.clock.advance(299)
        await f.engine.enforceFleetStaleness(limit: 300)
        #expect(try f.grants().allSatisfy { $0.state(at: f.clock.now) == .active })
        f.clock.advance(2)
        await f.engine.enforceFleetStaleness(limit: 300)
        let suspended = try f.grants()
        #expect(suspended.first { $0.id == "g_1" }?.state(at: f.clock.now) != .active)
        #expect(suspended.first { $0.user == "bin" }?.state(at: f.clock.now) == .active)
        #expect(try f.auditEvents().contains("fleet.strict"))
        // The server answers (an empty poll): its grants are in force again, with its times.
        await f.engine.applyFleet(Self.answer([], server: server + 301, skew: 0))
        let back = try #require(try f.grants().first { $0.id == "g_1" })
        #expect(
            back.state(at: f.clock.now) == .active && back.notBefore <= server + 1 && back.expiresAt == server + 3599
        )
        #expect(try f.auditEvents().contains("fleet.resume"))
    }

    @Test(
        "a revocation that arrives while strict mode holds the grant closed is applied: revoked and audited"
    )
    func revokedWhileSuspended() async throws {
        let server: Int64 = 1_800_000_000
        let f = try await Fixture(start: server)
        defer { f.cleanup() }
        await f.engine.applyFleet(
            Self.answer([Self.grant("g_1", start: server, end: server + 3600)], server: server, skew: 0, snapshot: true)
        )
        f.clock.advance(301)
        await f.engine.enforceFleetStaleness(limit: 300)
        #expect(try f.grants().first { $0.id == "g_1" }?.state(at: f.clock.now) != .active)
        // The partition heals with the revocation the server made meanwhile.
        var revoked = Self.grant("g_1", start: server, end: server + 3600)
        revoked.revokedAt = server + 200
        revoked.revokedBy = "bob"
        revoked.endedAt = server + 200
        revoked.endReason = "revoked"
        await f.engine.applyFleet(Self.answer([revoked], server: server + 302, skew: 0))
        let g = try #require(try f.grants().first { $0.id == "g_1" })
        #expect(g.revokedAt != nil && g.state(at: f.clock.now) != .active)
        #expect(try f.auditEvents().contains("grant.revoke"))
        // Not restored by the server's answer either: it stays ended.
        await f.engine.applyFleet(Self.answer([], server: server + 303, skew: 0))
        #expect(try f.grants().first { $0.id == "g_1" }?.state(at: f.clock.now) != .active)
    }

    @Test("the server may change only its own grants; one bad grant does not hold back a revocation")
    func fleetOnly() async throws {
        let server: Int64 = 1_800_000_000
        let f = try await Fixture(start: server)
        defer { f.cleanup() }
        let local = await f.call(Users.root, .grantAdd) {
            $0.user = "bin"
            $0.capability = "sudo"
            $0.duration = 3600
            $0.reason = "local break-glass"
        }
        let localID = try #require(local.grant?.id)
        await f.engine.applyFleet(
            Self.answer([Self.grant("g_1", start: server, end: server + 600)], server: server, skew: 0, snapshot: true)
        )
        // The server names the local grant's id, revoked: root's grant stays.
        var forged = Self.grant(localID, user: "bin", start: server, end: server + 600)
        forged.revokedAt = server
        var revoked = Self.grant("g_1", start: server, end: server + 600)
        revoked.revokedAt = server + 5
        revoked.revokedBy = "bin"
        // A grant with a control character in its reason is refused, and a grant too short for
        // the clock's bounds (a future start and end within the same second) is not enforced.
        var bad = Self.grant("g_bad", start: server, end: server + 600)
        bad.reason = "line\nbreak"
        let tiny = Self.grant("g_tiny", start: server + 100, end: server + 100)
        let applied = await f.engine.applyFleet(Self.answer([forged, bad, tiny, revoked], server: server + 5, skew: 0))
        #expect(!applied.failed && applied.ended == 1)
        let grants = Dictionary(uniqueKeysWithValues: try f.grants().map { ($0.id, $0) })
        #expect(grants[localID]?.revokedAt == nil)
        #expect(grants["g_1"]?.revokedAt != nil)
        #expect(grants["g_bad"] == nil && grants["g_tiny"] == nil)
    }
}
