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

/// The two stores every engine test runs against.
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite
    case postgresql
    var testDescription: String { rawValue }
}

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
            let name = "t_" + RandomID.make("", hexDigits: 12)
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

/// Directories for the tests' SQLite stores, removed when the test process exits (a store may be
/// opened again after its test closed it, and by the race helper, so not earlier).
enum TempDir {
    private static let made = Mutex<[String]>([])
    private static let removedAtExit: Void = { atexit { TempDir.removeAll() } }()

    static func make() throws -> String {
        _ = removedAtExit
        var template = Array("/tmp/writ-engine-test.XXXXXX".utf8CString)
        guard let p = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw HarnessError("mkdtemp: errno \(errno)")
        }
        let dir = String(cString: p)
        made.withLock { $0.append(dir) }
        return dir
    }

    /// Each directory made, with the files in it (a store's database, journal, WAL).
    static func removeAll() {
        for dir in made.withLock({ $0 }) {
            if let d = opendir(dir) {
                while let entry = readdir(d) {
                    let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                        String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                    }
                    if name != "." && name != ".." { unlink(dir + "/" + name) }
                }
                closedir(d)
            }
            rmdir(dir)
        }
    }
}

/// The repository's root, from this file's path.
let repositoryRoot: String = {
    var parts = String(#filePath).split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)
    return parts.joined(separator: "/")
}()

/// One private PostgreSQL cluster per test process.
actor TestCluster {
    static let shared = TestCluster()
    /// Started once: the first caller starts it, the others wait for the same start.
    private var starting: Task<String, any Error>?

    func directory() async throws -> String {
        if starting == nil {
            starting = Task {
                let d = "/tmp/writ-pg-\(getpid())-\(RandomID.make("", hexDigits: 6))"
                let out = try await ChildProcess.run([
                    "\(repositoryRoot)/scripts/pg-test-cluster.sh", "start", d, "--watch", String(getpid()),
                ])
                guard out.status == 0 else {
                    throw HarnessError(
                        "could not start the test PostgreSQL cluster (exit \(out.status)): \(out.output)"
                    )
                }
                return d
            }
        }
        return try await starting!.value
    }

    func configuration(database: String) async throws -> PostgresClient.Configuration {
        PostgresApprovalStore.configuration(socketDirectory: try await directory(), user: "writ", database: database)
    }

    func createDatabase(_ name: String) async throws {
        try await psql("writ", "CREATE DATABASE \(name)")
    }

    /// Runs one SQL command as `writ` in `database`.
    func psql(_ database: String, _ sql: String) async throws {
        let out = try await ChildProcess.run([
            "psql", "-q", "-h", try await directory(), "-U", "writ", "-d", database, "-c", sql,
        ])
        guard out.status == 0 else { throw HarnessError("psql \(sql): exit \(out.status) \(out.output)") }
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
