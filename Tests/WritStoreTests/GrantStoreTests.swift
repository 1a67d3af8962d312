import Glibc
import Testing
import WritCore
import WritStore

@Suite("GrantStore")
final class GrantStoreTests {
    let scratch: Scratch
    let now = Grants.now

    init() throws { scratch = try Scratch() }

    // MARK: create

    @Test("create makes the directory 0700 and the file 0600, both owned by root")
    func createModes() throws {
        let dir = scratch.path("lib-writ")
        let path = dir + "/grants.db"
        _ = try GrantStore.create(path: path)
        let d = try scratch.stat(dir)
        let f = try scratch.stat(path)
        #expect(d.mode & S_IFMT == S_IFDIR)
        #expect(d.mode & 0o7777 == 0o700)
        #expect(d.uid == 0)
        #expect(f.mode & S_IFMT == S_IFREG)
        #expect(f.mode & 0o7777 == 0o600)
        #expect(f.uid == 0)
    }

    @Test("create writes the current schema version")
    func createSchemaVersion() throws {
        _ = try scratch.makeStore()
        #expect(try storedUserVersion(scratch.store) == StoreSchema.current)
        #expect(StoreSchema.current >= 1)
    }

    @Test("create on an existing store keeps its grants")
    func createKeepsExisting() throws {
        try scratch.makeStore().add(Grants.make(id: "g_keep"))
        let reopened = try scratch.makeStore()
        #expect(try reopened.grant(id: "g_keep") != nil)
    }

    @Test("create refuses a relative path")
    func createRelative() {
        let error = #expect(throws: StoreError.self) { try GrantStore.create(path: "grants.db") }
        #expect(error?.code == "invalid")
    }

    @Test("create refuses a store in an insecure directory")
    func createInsecureDirectory() throws {
        try #require(chmod(scratch.dir, 0o777) == 0)
        let error = #expect(throws: StoreError.self) { try GrantStore.create(path: self.scratch.store) }
        #expect(error?.code == "directory_insecure")
    }

    @Test("opening a missing store for writing fails with .missing")
    func openMissing() {
        #expect(throws: StoreError.missing(path: scratch.store)) { try GrantStore(path: self.scratch.store) }
    }

    @Test("GrantStore(path:) opens an existing store")
    func openExisting() throws {
        try scratch.makeStore().add(Grants.make(id: "g1"))
        #expect(try GrantStore(path: scratch.store).grant(id: "g1")?.id == "g1")
    }

    @Test("a store with a newer schema is refused and left as it is")
    func newerSchemaRefused() throws {
        _ = try scratch.makeStore()
        try rawExecute(scratch.store, "PRAGMA user_version = \(StoreSchema.current + 1)")
        let expected = StoreError.newerSchema(
            path: scratch.store,
            found: StoreSchema.current + 1,
            supported: StoreSchema.current
        )
        #expect(throws: expected) { try GrantStore(path: self.scratch.store) }
        #expect(throws: expected) { try GrantStore.create(path: self.scratch.store) }
        #expect(try storedUserVersion(scratch.store) == StoreSchema.current + 1)
    }

    // MARK: add and read back

    @Test("add then grant(id:) round-trips every field")
    func roundTripAllFields() throws {
        let store = try scratch.makeStore()
        let grant = Grant(
            id: "g_0123456789abcdef",
            user: "alice",
            uid: UInt32.max - 1,
            capability: .sudo,
            host: "web*.example.com",
            runas: "app-?",
            commands: [
                CommandPattern(path: "/usr/bin/systemctl", arguments: ["restart", "nginx"]),
                CommandPattern(path: "/usr/bin/journalctl", arguments: nil),
                CommandPattern(path: "/usr/bin/uptime", arguments: []),
                CommandPattern(path: "/opt/my tools/run", arguments: ["say \"hi\"", "a\\b", "日本", "tab\there"]),
            ],
            notBefore: now - 10,
            expiresAt: now + 7200,
            revokedAt: now - 5,
            revokedBy: "bob",
            reason: "INC-42: nginx ✓\nline 2",
            approvedBy: "cli:carol",
            requestID: "r_77",
            policyVersion: "p3",
            createdAt: now - 20
        )
        try store.add(grant)
        #expect(try store.grant(id: grant.id) == grant)
    }

    @Test("optional fields stay nil and a login grant round-trips")
    func roundTripMinimal() throws {
        let store = try scratch.makeStore()
        let grant = Grants.make(id: "g_login", capability: .login)
        try store.add(grant)
        let loaded = try #require(try store.grant(id: "g_login"))
        #expect(loaded == grant)
        #expect(loaded.commands == nil)
        #expect(
            loaded.revokedAt == nil && loaded.revokedBy == nil && loaded.requestID == nil && loaded.policyVersion == nil
        )
    }

    @Test("grant(id:) of an unknown id is nil")
    func unknownID() throws {
        #expect(try scratch.makeStore().grant(id: "g_nope") == nil)
    }

    @Test("a duplicate id is refused")
    func duplicateID() throws {
        let store = try scratch.makeStore()
        try store.add(Grants.make(id: "g1"))
        #expect(throws: StoreError.self) { try store.add(Grants.make(id: "g1", user: "bob")) }
        #expect(try store.grant(id: "g1")?.user == "alice")
    }

    @Test("a grant that ends before it starts is refused", arguments: [0 as Int64, -1])
    func endBeforeStart(length: Int64) throws {
        let store = try scratch.makeStore()
        #expect(throws: StoreError.self) {
            try store.add(Grants.make(id: "g_bad", notBefore: self.now, expiresAt: self.now + length))
        }
        #expect(try store.grant(id: "g_bad") == nil)
    }

    @Test("addAll inserts all grants or none")
    func addAllAtomic() throws {
        let store = try scratch.makeStore()
        try store.addAll((0..<10).map { Grants.make(id: "ok\($0)") })
        #expect(try store.list(includeEnded: true, now: now).count == 10)
        let batch = [Grants.make(id: "new1"), Grants.make(id: "ok3"), Grants.make(id: "new2")]
        #expect(throws: StoreError.self) { try store.addAll(batch) }
        #expect(try store.grant(id: "new1") == nil)
        #expect(try store.grant(id: "new2") == nil)
        #expect(try store.list(includeEnded: true, now: now).count == 10)
        // The store is still usable afterwards.
        try store.add(Grants.make(id: "new3"))
        #expect(try store.grant(id: "new3") != nil)
    }

    // MARK: list

    func addLifecycleMix(_ store: GrantStore) throws {
        try store.addAll([
            Grants.make(id: "active-late", expiresAt: now + 7200, createdAt: now - 50),
            Grants.make(id: "active-soon", expiresAt: now + 60, createdAt: now - 40),
            Grants.make(id: "pending", notBefore: now + 600, expiresAt: now + 3600, createdAt: now - 30),
            Grants.make(id: "expired", notBefore: now - 7200, expiresAt: now - 1, createdAt: now - 7200),
            Grants.make(id: "ends-now", notBefore: now - 7200, expiresAt: now, createdAt: now - 7100),
            Grants.make(id: "revoked", revokedAt: now - 5, revokedBy: "bob", createdAt: now - 20),
        ])
    }

    @Test("list(includeEnded: false) shows active and pending grants, soonest expiry first")
    func listLive() throws {
        let store = try scratch.makeStore()
        try addLifecycleMix(store)
        #expect(try store.list(includeEnded: false, now: now).map(\.id) == ["active-soon", "pending", "active-late"])
    }

    @Test("list(includeEnded: true) shows every grant in creation order")
    func listAll() throws {
        let store = try scratch.makeStore()
        try addLifecycleMix(store)
        #expect(
            try store.list(includeEnded: true, now: now).map(\.id)
                == ["expired", "ends-now", "active-late", "active-soon", "pending", "revoked"]
        )
    }

    // MARK: revoke

    @Test("revoking an active or pending grant records who and when", arguments: ["active", "pending"])
    func revokeLive(which: String) throws {
        let store = try scratch.makeStore()
        let grant =
            which == "active"
            ? Grants.make(id: "g1") : Grants.make(id: "g1", notBefore: now + 600, expiresAt: now + 3600)
        try store.add(grant)
        let result = try store.revoke(id: "g1", by: "carol", now: now)
        #expect(result.revoked)
        #expect(result.grant == grant)  // as it was before
        let stored = try #require(try store.grant(id: "g1"))
        #expect(stored.revokedAt == now)
        #expect(stored.revokedBy == "carol")
        #expect(stored.state(at: now) == .revoked)
        #expect(try store.list(includeEnded: false, now: now).isEmpty)
    }

    @Test("revoking an expired grant changes nothing and says so")
    func revokeExpired() throws {
        let store = try scratch.makeStore()
        try store.add(Grants.make(id: "g1", notBefore: now - 7200, expiresAt: now - 1))
        let result = try store.revoke(id: "g1", by: "carol", now: now)
        #expect(!result.revoked)
        let stored = try #require(try store.grant(id: "g1"))
        #expect(stored.revokedAt == nil)
        #expect(stored.revokedBy == nil)
    }

    @Test("revoking twice keeps the first revocation")
    func revokeTwice() throws {
        let store = try scratch.makeStore()
        try store.add(Grants.make(id: "g1"))
        #expect(try store.revoke(id: "g1", by: "carol", now: now).revoked)
        let second = try store.revoke(id: "g1", by: "dave", now: now + 10)
        #expect(!second.revoked)
        let stored = try #require(try store.grant(id: "g1"))
        #expect(stored.revokedAt == now)
        #expect(stored.revokedBy == "carol")
    }

    @Test("revoking an unknown id throws .notFound")
    func revokeUnknown() throws {
        let store = try scratch.makeStore()
        #expect(throws: StoreError.notFound(id: "g_missing")) {
            try store.revoke(id: "g_missing", by: "carol", now: self.now)
        }
    }

    // MARK: ids

    @Test("generated ids are g_ and 16 lowercase hex digits, and differ")
    func grantIDs() {
        let ids = (0..<200).map { _ in GrantID.generate() }
        for id in ids {
            #expect(id.hasPrefix("g_"))
            #expect(id.utf8.count == 18)
            #expect(id.dropFirst(2).allSatisfy { "0123456789abcdef".contains($0) })
        }
        #expect(Set(ids).count == ids.count)
    }
}
