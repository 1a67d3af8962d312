import FakeServices
import Glibc
import Logging
import Testing
import WritAgent
import WritAudit
import WritCore
import WritEngine
import WritEnginePostgres

/// One fleet's server side: a state directory (the CA; the SQLite store) and, on PostgreSQL, a
/// new database in the test process's private cluster. Replicas started from it share both.
struct Fleet: Sendable {
    let kind: StoreKind
    let stateDir: String
    /// PostgreSQL: the database's name.
    let database: String?

    static func make(_ kind: StoreKind) async throws -> Fleet {
        let dir = try TempDir.make()
        switch kind {
        case .sqlite:
            return Fleet(kind: kind, stateDir: dir, database: nil)
        case .postgresql:
            let name = TestCluster.databaseName()
            try await TestCluster.shared.createDatabase(name)
            return Fleet(kind: kind, stateDir: dir, database: name)
        }
    }

    /// `--state-dir` and, on PostgreSQL, `--database`: what every writ-server command takes.
    func storeArguments() async throws -> [String] {
        var args = ["--state-dir", stateDir]
        if let database {
            args += [
                "--database", "postgres://writ@localhost/\(database)?host=\(try await TestCluster.shared.directory())",
            ]
        }
        return args
    }

    /// A replica, listening on a free loopback port.
    func start(port: Int = 0, _ extra: [String] = []) async throws -> ServerProcess {
        let child = try ChildProcess.spawn(
            [try ChildProcess.built("writ-server"), "serve", "--listen", "127.0.0.1:\(port)", "--log-level", "warning"]
                + (try await storeArguments()) + extra
        )
        let line = try await child.receiveLine(timeout: .seconds(60))
        guard line.hasPrefix("listening on 127.0.0.1:"), let bound = Int(line.split(separator: ":").last ?? "") else {
            child.signal(SIGKILL)
            child.wait()
            throw HarnessError("writ-server did not start: \(line)")
        }
        return ServerProcess(child: child, url: "https://127.0.0.1:\(bound)", port: bound)
    }

    /// Changes this fleet's SQLite store behind writ-server's back (what tamper evidence must
    /// catch); throws when sqlite3 fails.
    func tamper(_ sql: String) async throws {
        let out = try await ChildProcess.run(["/usr/bin/sqlite3", stateDir + "/engine.db", sql])
        guard out.status == 0 else { throw HarnessError("sqlite3 \(sql): exit \(out.status) \(out.output)") }
    }

    /// `writ-server ARGS` on this fleet's store; its exit status and output.
    func admin(_ args: [String]) async throws -> (status: Int32, output: String) {
        try await ChildProcess.run([try ChildProcess.built("writ-server")] + args + (try await storeArguments()))
    }

    /// A one-time token for `host`, and the CA's SHA-256 printed beside it.
    func token(_ host: String) async throws -> (token: String, caSHA256: String) {
        let out = try await admin(["host", "enroll", host])
        guard out.status == 0 else { throw HarnessError("host enroll \(host): \(out.output)") }
        let lines = out.output.split(separator: "\n")
        guard lines.count >= 4, let sha = lines[3].split(separator: " ").last else {
            throw HarnessError("host enroll printed \(out.output)")
        }
        return (lines[1].trimmed(), String(sha))
    }

    /// The store, opened directly: another instance of the engine beside the replicas.
    func engine() async throws -> ApprovalEngine {
        switch kind {
        case .sqlite:
            return ApprovalEngine(store: try SQLiteApprovalStore(path: stateDir + "/engine.db"))
        case .postgresql:
            let store = try await PostgresApprovalStore(
                configuration: PostgresApprovalStore.configuration(
                    socketDirectory: try await TestCluster.shared.directory(),
                    user: "writ",
                    database: database!
                ),
                logger: Logger(label: "test")
            )
            return ApprovalEngine(store: store)
        }
    }

    /// Enrolls `host` and returns a client with its credentials.
    func enroll(_ host: String, server: ServerProcess) async throws -> (AgentCredentials, FleetClient) {
        let t = try await token(host)
        let credentials = try await FleetClient.enroll(
            server: server.url,
            token: t.token,
            caSHA256: t.caSHA256,
            localName: host
        )
        return (credentials, try FleetClient(server: server.url, caPEM: credentials.caPEM, credentials: credentials))
    }
}

/// A running `writ-server serve`.
struct ServerProcess: Sendable {
    let child: ChildProcess
    let url: String
    let port: Int

    /// SIGTERM, and its exit status.
    @discardableResult
    func stop() -> Int32 {
        child.signal(SIGTERM)
        return child.wait()
    }

    func kill() {
        child.signal(SIGKILL)
        child.wait()
    }
}

/// Issues a grant for `user` on hosts `host` (a pattern) through the engine: a request `bob`
/// approves.
func issueGrant(_ engine: ApprovalEngine, host: String, user: String = "alice") async throws -> EngineGrant {
    let now = Int64(time(nil))
    let core = AccessRequest(
        id: EngineRequest.generateID(),
        requester: user,
        capability: .sudo,
        duration: 600,
        reason: "INC-1 disk full",
        createdAt: now,
        pendingUntil: now + 3600,
        approvers: ["bob"],
        requiredApprovals: 1
    )
    let request = EngineRequest(
        core: core,
        kind: "grant",
        extendsGrant: nil,
        requesterUID: 1000,
        flow: "sudo",
        host: host,
        runas: "root",
        commands: nil,
        grantID: nil,
        autoRule: nil,
        warnBefore: 300,
        policyVersion: "test"
    )
    _ = try await engine.file(request, by: .host(user, on: "web-01"))
    let outcome = try await engine.decide(core.id, .approve(comment: "ok"), by: .host("bob", on: "admin-01"))
    guard let grant = outcome.grant else { throw HarnessError("the approval issued no grant") }
    return grant
}

extension Substring {
    func trimmed() -> String {
        var s = self
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}

/// `count` records of a host's own chain (sudo runs by `actor` at `time`), as its agent uploads
/// them.
func hostChain(_ actor: String, count: Int64, at time: Int64) -> [String] {
    var lines: [String] = []
    var previous = AuditLine.genesis
    for n in 1...count {
        let e = AuditEvent(time: time, event: "sudo.accept", actor: actor, fields: [.init("command", "/usr/bin/id")])
        let line = AuditLine.render(seq: n, prev: previous, e)
        previous = AuditChain.hash(line)
        lines.append(line)
    }
    return lines
}
