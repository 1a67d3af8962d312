import FakeServices
import Glibc
import Logging
import PostgresNIO
import Synchronization
import Testing
import WritAudit
import WritCore
import WritEngine
import WritEnginePostgres

/// A fresh, empty store of one kind: a new SQLite file, or a new database in the test process's
/// private PostgreSQL cluster (`scripts/pg-test-cluster.sh`, started on first use and stopped when
/// the process exits).
struct TestStore: Sendable {
    let kind: StoreKind
    /// SQLite: the file. PostgreSQL: the database's name.
    let name: String

    static func make(_ kind: StoreKind) async throws -> TestStore {
        switch kind {
        case .sqlite:
            let dir = try TempDir.make()
            return TestStore(kind: kind, name: dir + "/engine.db")
        case .postgresql:
            let name = TestCluster.databaseName()
            try await TestCluster.shared.createDatabase(name)
            return TestStore(kind: kind, name: name)
        }
    }

    /// A new connection (pool) to the store: a second engine instance when called twice.
    func open() async throws -> any ApprovalStore {
        switch kind {
        case .sqlite: return try SQLiteApprovalStore(path: name)
        case .postgresql:
            return try await PostgresApprovalStore(
                configuration: await TestCluster.shared.configuration(database: name),
                logger: Logger(label: "test")
            )
        }
    }

    /// What `writ-engine-race` needs to reach the store.
    func raceArguments() async throws -> [String] {
        switch kind {
        case .sqlite: return ["--sqlite", name]
        case .postgresql: return ["--pg", try await TestCluster.shared.directory(), name, "writ"]
        }
    }
}

func close(_ store: any ApprovalStore) async {
    if let pg = store as? PostgresApprovalStore { await pg.shutdown() }
}

extension TestCluster {
    func configuration(database: String) async throws -> PostgresClient.Configuration {
        PostgresApprovalStore.configuration(socketDirectory: try await directory(), user: "writ", database: database)
    }
}

/// A request for `alice` that `bob` or `carol` may approve (`required` of them).
func sampleRequest(
    at now: Int64,
    required: Int = 1,
    approvers: Set<String> = ["bob", "carol"],
    duration: Int64 = 1800,
    pendingFor: Int64 = 3600,
    steps: [AccessRequest.Step]? = nil
) -> EngineRequest {
    let core =
        steps.map {
            AccessRequest(
                id: EngineRequest.generateID(),
                requester: "alice",
                capability: .sudo,
                duration: duration,
                reason: "INC-1 disk full",
                createdAt: now,
                pendingUntil: now + pendingFor,
                steps: $0
            )
        }
        ?? AccessRequest(
            id: EngineRequest.generateID(),
            requester: "alice",
            capability: .sudo,
            duration: duration,
            reason: "INC-1 disk full",
            createdAt: now,
            pendingUntil: now + pendingFor,
            approvers: approvers,
            requiredApprovals: required
        )
    return EngineRequest(
        core: core,
        kind: "grant",
        extendsGrant: nil,
        requesterUID: 1000,
        flow: "sudo",
        host: "web-*",
        runas: "root",
        commands: nil,
        grantID: nil,
        autoRule: nil,
        warnBefore: 300,
        policyVersion: "test"
    )
}

/// A clock the test sets.
final class TestClock: Sendable {
    private let value: Mutex<Int64>
    init(_ start: Int64 = 1_800_000_000) { value = Mutex(start) }
    var now: Int64 {
        get { value.withLock { $0 } }
        set { value.withLock { $0 = newValue } }
    }
}

/// Every audit line of a store, in order.
func auditLines(_ store: any ApprovalStore) async throws -> [String] {
    try await store.transaction { (tx) throws(EngineError) in try await tx.auditLines(after: 0, limit: 1_000_000) }
}

func isIntact(_ v: AuditChain.Verdict) -> Bool {
    if case .intact = v { return true }
    return false
}

/// A one-way signal between tasks: `wait` returns once `open` has been called.
actor Latch {
    private var opened = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func open() {
        opened = true
        for w in waiters { w.resume() }
        waiters = []
    }

    func wait() async {
        if opened { return }
        await withCheckedContinuation { waiters.append($0) }
    }
}
