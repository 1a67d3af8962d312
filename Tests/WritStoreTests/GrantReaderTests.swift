import Glibc
import Testing
import WritCore
import WritStore

@Suite("GrantReader")
final class GrantReaderTests {
    let scratch: Scratch
    let now = Grants.now

    init() throws { scratch = try Scratch() }

    // MARK: candidates

    @Test("candidates are the user's unrevoked, unexpired grants of that capability, newest expiry first")
    func candidatesFilter() throws {
        let store = try scratch.makeStore()
        let active = Grants.make(id: "active", expiresAt: now + 3600)
        let pending = Grants.make(id: "pending", notBefore: now + 600, expiresAt: now + 7200)
        let otherHost = Grants.make(id: "other-host", host: "db*", expiresAt: now + 1800)
        try store.addAll([
            active, pending, otherHost,
            Grants.make(id: "expired", notBefore: now - 7200, expiresAt: now - 1),
            Grants.make(id: "ends-now", notBefore: now - 7200, expiresAt: now),
            Grants.make(id: "revoked", revokedAt: now - 5, revokedBy: "bob"),
            Grants.make(id: "revoked-pending", notBefore: now + 60, revokedAt: now - 5, revokedBy: "bob"),
            Grants.make(id: "login", capability: .login),
            Grants.make(id: "bob", user: "bob", uid: 1001),
            Grants.make(id: "alice-upper", user: "Alice"),
        ])
        let reader = try GrantReader(path: scratch.store)
        let candidates = try reader.candidates(user: "alice", capability: .sudo, now: now)
        #expect(candidates.map(\.id) == ["pending", "active", "other-host"])
        #expect(candidates == [pending, active, otherHost].map(Grants.asCandidate))
    }

    @Test("candidates for login return only login grants")
    func loginCandidates() throws {
        let store = try scratch.makeStore()
        try store.addAll([Grants.make(id: "s"), Grants.make(id: "l", capability: .login)])
        let reader = try GrantReader(path: scratch.store)
        #expect(try reader.candidates(user: "alice", capability: .login, now: now).map(\.id) == ["l"])
    }

    @Test("candidates decode stored command lists")
    func candidatesDecodeCommands() throws {
        let commands = [
            CommandPattern(path: "/usr/bin/systemctl", arguments: ["restart", "nginx"]),
            CommandPattern(path: "/usr/bin/journalctl", arguments: nil),
            CommandPattern(path: "/usr/bin/uptime", arguments: []),
            CommandPattern(path: "/usr/bin/echo", arguments: ["say \"hi\"", "a\\b", "日本"]),
        ]
        let store = try scratch.makeStore()
        try store.addAll([
            Grants.make(id: "scoped", runas: "www-data", commands: commands, expiresAt: now + 100),
            Grants.make(id: "empty", commands: [], expiresAt: now + 50),
        ])
        let candidates = try GrantReader(path: scratch.store).candidates(user: "alice", capability: .sudo, now: now)
        #expect(candidates.count == 2)
        #expect(candidates.first?.commands == commands)
        #expect(candidates.first?.runas == "www-data")
        #expect(candidates.last?.commands == [])
    }

    @Test("a malformed stored command list fails closed with .corrupt")
    func malformedCommandList() throws {
        let store = try scratch.makeStore()
        try store.add(Grants.make(id: "g1", commands: [CommandPattern(path: "/usr/bin/id", arguments: nil)]))
        try rawExecute(scratch.store, "UPDATE grants SET commands = '[[\"usr/bin/id\"]]' WHERE id = 'g1'")
        let reader = try GrantReader(path: scratch.store)
        let error = #expect(throws: StoreError.self) {
            try reader.candidates(user: "alice", capability: .sudo, now: self.now)
        }
        #expect(error?.code == "corrupt")
    }

    @Test("at most 64 candidates are returned, those expiring last")
    func candidateLimit() throws {
        let store = try scratch.makeStore()
        try store.addAll((0..<70).map { Grants.make(id: "g\($0)", expiresAt: now + 100 + Int64($0)) })
        let candidates = try GrantReader(path: scratch.store).candidates(user: "alice", capability: .sudo, now: now)
        #expect(candidates.count == 64)
        #expect(candidates.first?.id == "g69")
        #expect(candidates.last?.id == "g6")
    }

    @Test("an open reader sees a revocation made afterwards")
    func readerSeesRevocation() throws {
        let store = try scratch.makeStore()
        try store.add(Grants.make(id: "g1"))
        let reader = try GrantReader(path: scratch.store)
        #expect(try reader.candidates(user: "alice", capability: .sudo, now: now).map(\.id) == ["g1"])
        try store.revoke(id: "g1", by: "carol", now: now)
        #expect(try reader.candidates(user: "alice", capability: .sudo, now: now).isEmpty)
    }

    @Test("20,000 history rows for 2,000 users: each user still gets exactly their live grants")
    func manyGrants() throws {
        let store = try scratch.makeStore()
        var all: [Grant] = []
        all.reserveCapacity(20_000)
        for u in 0..<2_000 {
            let user = "user\(u)"
            let uid = UInt32(10_000 + u)
            for k in 0..<10 {
                let id = "g_\(u)_\(k)"
                let cap: Capability = k % 3 == 0 ? .login : .sudo
                let expires = now + Int64(k * 100 + u % 7) - 450  // k < 5 ended, k >= 5 live
                let notBefore = k == 9 ? now + 10 : expires - 10_000
                let revoked: Int64? = k == 7 ? now - 1 : nil
                all.append(
                    Grants.make(
                        id: id,
                        user: user,
                        uid: uid,
                        capability: cap,
                        notBefore: notBefore,
                        expiresAt: expires,
                        revokedAt: revoked,
                        revokedBy: revoked == nil ? nil : "admin"
                    )
                )
            }
        }
        try store.addAll(all)
        let reader = try GrantReader(path: scratch.store)
        for u in [0, 1, 2, 999, 1_234, 1_999] {
            for cap in Capability.allCases {
                let expected = all.filter {
                    $0.user == "user\(u)" && $0.capability == cap && $0.revokedAt == nil && $0.expiresAt > now
                }
                .sorted { $0.expiresAt > $1.expiresAt }
                .map(Grants.asCandidate)
                let got = try reader.candidates(user: "user\(u)", capability: cap, now: now)
                #expect(got == expected, "user\(u) \(cap)")
                #expect(!got.isEmpty)
            }
        }
        #expect(try reader.candidates(user: "user2000", capability: .sudo, now: now).isEmpty)
    }

    @Test("the candidates query is answered from the grants_live index")
    func usesLiveIndex() throws {
        let store = try scratch.makeStore()
        try store.addAll((0..<500).map { Grants.make(id: "g\($0)", user: "u\($0 % 50)", expiresAt: now + Int64($0)) })
        // The SQL of GrantReader.candidates, verbatim.
        let sql = """
            SELECT id, uid, host, runas, commands, not_before, expires_at FROM grants
            WHERE user = ?1 AND capability = ?2 AND revoked_at IS NULL AND expires_at > ?3
            ORDER BY expires_at DESC LIMIT 64
            """
        let db = try SQLiteDatabase(path: scratch.store, readOnly: true, busyTimeoutMs: 1000)
        let stmt = try db.prepare("EXPLAIN QUERY PLAN " + sql)
        try stmt.bind(1, "u1")
        try stmt.bind(2, "sudo")
        try stmt.bind(3, now)
        var plan: [String] = []
        while try stmt.step() { plan.append(stmt.string(3)) }
        #expect(plan.contains { $0.contains("grants_live") }, "plan: \(plan)")
        #expect(!plan.contains { $0.hasPrefix("SCAN grants") }, "plan: \(plan)")
        #expect(!plan.contains { $0.contains("TEMP B-TREE") }, "plan: \(plan)")
    }

    // MARK: refusing a store that cannot be trusted

    @Test("a missing store: .missing")
    func missing() {
        #expect(throws: StoreError.missing(path: scratch.store)) { try GrantReader(path: self.scratch.store) }
    }

    @Test("a missing directory: .missing")
    func missingDirectory() {
        let path = scratch.path("nope") + "/grants.db"
        #expect(throws: StoreError.missing(path: path)) { try GrantReader(path: path) }
    }

    @Test("a symlink to a good store: .symlink")
    func symlinkToStore() throws {
        _ = try scratch.makeStore()
        let link = scratch.path("link.db")
        try #require(symlink(scratch.store, link) == 0)
        #expect(throws: StoreError.symlink(path: link)) { try GrantReader(path: link) }
    }

    @Test("a store owned by another user: .notOwnedByRoot")
    func notOwnedByRoot() throws {
        _ = try scratch.makeStore()
        try #require(chown(scratch.store, 1000, 1000) == 0)
        #expect(throws: StoreError.notOwnedByRoot(path: scratch.store, uid: 1000)) {
            try GrantReader(path: self.scratch.store)
        }
        #expect(throws: StoreError.notOwnedByRoot(path: scratch.store, uid: 1000)) {
            try GrantStore(path: self.scratch.store)
        }
    }

    @Test("a store writable by group or others: .writableByOthers", arguments: [0o666 as mode_t, 0o620, 0o602])
    func writableByOthers(mode: mode_t) throws {
        _ = try scratch.makeStore()
        try #require(chmod(scratch.store, mode) == 0)
        #expect(throws: StoreError.writableByOthers(path: scratch.store, mode: S_IFREG | mode)) {
            try GrantReader(path: self.scratch.store)
        }
    }

    @Test("a store readable by others is accepted")
    func readableByOthers() throws {
        try scratch.makeStore().add(Grants.make(id: "g1"))
        try #require(chmod(scratch.store, 0o644) == 0)
        #expect(try GrantReader(path: scratch.store).candidates(user: "alice", capability: .sudo, now: now).count == 1)
    }

    @Test("a directory writable by group or others: .directoryInsecure", arguments: [0o777 as mode_t, 0o770, 0o1777])
    func directoryWritable(mode: mode_t) throws {
        _ = try scratch.makeStore()
        try #require(chmod(scratch.dir, mode) == 0)
        let error = #expect(throws: StoreError.self) { try GrantReader(path: self.scratch.store) }
        #expect(error?.code == "directory_insecure")
        if case .directoryInsecure(let path, _) = error { #expect(path == scratch.dir) }
    }

    @Test("a directory owned by another user: .directoryInsecure")
    func directoryNotRoot() throws {
        _ = try scratch.makeStore()
        try #require(chown(scratch.dir, 1000, 1000) == 0)
        let error = #expect(throws: StoreError.self) { try GrantReader(path: self.scratch.store) }
        #expect(error?.code == "directory_insecure")
    }

    @Test("a directory reached through a symlink: .directoryInsecure")
    func directorySymlink() throws {
        let real = scratch.path("real")
        try #require(mkdir(real, 0o700) == 0)
        _ = try GrantStore.create(path: real + "/grants.db")
        let link = scratch.path("linkdir")
        try #require(symlink(real, link) == 0)
        let error = #expect(throws: StoreError.self) { try GrantReader(path: link + "/grants.db") }
        #expect(error?.code == "directory_insecure")
    }

    @Test("a directory or FIFO in place of the file: .notRegularFile")
    func notRegularFile() throws {
        try #require(mkdir(scratch.store, 0o700) == 0)
        #expect(throws: StoreError.notRegularFile(path: scratch.store)) { try GrantReader(path: self.scratch.store) }
        let fifo = scratch.path("fifo.db")
        try #require(mkfifo(fifo, 0o600) == 0)
        #expect(throws: StoreError.notRegularFile(path: fifo)) { try GrantReader(path: fifo) }
    }

    @Test("a file of random bytes: .corrupt")
    func randomBytes() throws {
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<8192).map { _ in UInt8.random(in: 0...255, using: &rng) }
        try scratch.write(bytes, to: scratch.store)
        let error = #expect(throws: StoreError.self) { try GrantReader(path: self.scratch.store) }
        #expect(error?.code == "corrupt")
    }

    @Test("an empty file: .uninitialized")
    func emptyFile() throws {
        try scratch.write([], to: scratch.store)
        #expect(throws: StoreError.uninitialized(path: scratch.store)) { try GrantReader(path: self.scratch.store) }
    }

    @Test("an SQLite database without the Writ schema: .uninitialized")
    func foreignDatabase() throws {
        try scratch.write([], to: scratch.store)
        try rawExecute(scratch.store, "CREATE TABLE notes (body TEXT)")
        #expect(throws: StoreError.uninitialized(path: scratch.store)) { try GrantReader(path: self.scratch.store) }
    }

    @Test("a store with a newer schema: .newerSchema")
    func newerSchema() throws {
        _ = try scratch.makeStore()
        try rawExecute(scratch.store, "PRAGMA user_version = \(StoreSchema.current + 1)")
        #expect(
            throws: StoreError.newerSchema(
                path: scratch.store,
                found: StoreSchema.current + 1,
                supported: StoreSchema.current
            )
        ) {
            try GrantReader(path: self.scratch.store)
        }
    }

    @Test("a good store opens while a writer holds it open")
    func openWhileWriterOpen() throws {
        let store = try scratch.makeStore()
        try store.add(Grants.make(id: "g1"))
        let reader = try GrantReader(path: scratch.store)
        #expect(try reader.candidates(user: "alice", capability: .sudo, now: now).map(\.id) == ["g1"])
        try store.add(Grants.make(id: "g2", expiresAt: now + 9999))
        #expect(try reader.candidates(user: "alice", capability: .sudo, now: now).map(\.id) == ["g2", "g1"])
    }
}
