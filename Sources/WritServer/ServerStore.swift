import FoundationEssentials
import Logging
import NIOSSL
import PostgresNIO
import WritEngine
import WritEnginePostgres

/// Where the engine's store is: PostgreSQL for a fleet (`--database postgres://…`), SQLite in the
/// state directory for a trial on one machine.
public enum ServerStore {
    /// Opens the store the command line names: a `postgres://` or `postgresql://` URL, or, with
    /// none, `engine.db` in `stateDirectory`. The URL takes `sslmode` (disable, require,
    /// verify-full; default: disable on a Unix socket, verify-full otherwise) and `host` as a
    /// query parameter naming a Unix socket directory, as libpq does.
    public static func open(
        database: String?,
        password: String?,
        stateDirectory: String,
        logger: Logger
    ) async throws(EngineError) -> any ApprovalStore {
        guard let database else { return try SQLiteApprovalStore(path: stateDirectory + "/engine.db") }
        let configuration = try postgresConfiguration(database, password: password)
        return try await PostgresApprovalStore(configuration: configuration, logger: logger)
    }

    static func postgresConfiguration(
        _ text: String,
        password: String?
    ) throws(EngineError) -> PostgresClient.Configuration {
        let usage =
            "--database takes postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=require&host=/run/postgresql]"
        guard let url = URLComponents(string: text), url.scheme == "postgres" || url.scheme == "postgresql" else {
            throw .refused(usage)
        }
        guard let user = url.user, !user.isEmpty else { throw .refused("name a user: \(usage)") }
        let name = url.path.hasPrefix("/") ? String(url.path.dropFirst()) : url.path
        guard !name.isEmpty else { throw .refused("name a database: \(usage)") }
        let query = Dictionary((url.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
        let secret = password ?? url.password
        let port = url.port ?? 5432
        if let socketDirectory = query["host"], socketDirectory.hasPrefix("/") {
            return PostgresClient.Configuration(
                unixSocketPath: "\(socketDirectory)/.s.PGSQL.\(port)",
                username: user,
                password: secret,
                database: name
            )
        }
        guard let host = url.host, !host.isEmpty else { throw .refused("name a host: \(usage)") }
        let tls: PostgresClient.Configuration.TLS
        switch query["sslmode"] ?? "verify-full" {
        case "disable":
            tls = .disable
        case "require":
            var c = TLSConfiguration.makeClientConfiguration()
            c.certificateVerification = .none
            tls = .require(c)
        case "verify-full":
            tls = .require(TLSConfiguration.makeClientConfiguration())
        case let other:
            throw .refused("sslmode \(other) is not one of disable, require, verify-full")
        }
        return PostgresClient.Configuration(
            host: host,
            port: port,
            username: user,
            password: secret,
            database: name,
            tls: tls
        )
    }
}
