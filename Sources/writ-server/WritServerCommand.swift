import ArgumentParser
import FoundationEssentials
import Glibc
import Logging
import WritCore
import WritEngine
import WritFleetAPI
import WritServer

/// writ-server — the control plane of a Writ fleet. `writ-server serve` runs one replica;
/// `writ-server host …` are the admin's commands on the same store.
@main
struct WritServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "writ-server",
        abstract: "The control plane of a Writ fleet: one engine for every host's requests and grants.",
        version: WritVersion.current,
        subcommands: [Serve.self, HostCommand.self, GrantCommand.self, AuditCommand.self]
    )
}

/// Where the store and the CA are: the same options for every subcommand.
struct StoreOptions: ParsableArguments {
    @Option(
        help: "PostgreSQL for a fleet: postgres://USER@HOST/DATABASE (default: SQLite in --state-dir, for a trial)."
    )
    var database: String?
    @Option(help: "A file holding the database password (root's, mode 0600), instead of one in the URL.")
    var databasePasswordFile: String?
    @Option(help: "The server's state: its CA (ca/), and the SQLite store when --database is not given.")
    var stateDir = "/var/lib/writ-server"

    /// `flowMaxDuration`: a flow's longest grant under the policy in force (extensions).
    func openEngine(
        logger: Logger,
        flowMaxDuration: @escaping @Sendable (String) -> Int64? = { _ in nil }
    ) async throws -> ApprovalEngine {
        var password: String?
        if let file = databasePasswordFile {
            do {
                password = String(try FleetFiles.readSecret(file).split(whereSeparator: \.isNewline).first ?? "")
            } catch {
                fail("\(error)")
            }
        }
        // The CA lives here whatever the store (and the SQLite store when no database is named).
        try? FleetFiles.makeDirectory(stateDir)
        do {
            let store = try await ServerStore.open(
                database: database,
                password: password,
                stateDirectory: stateDir,
                logger: logger
            )
            return ApprovalEngine(store: store, flowMaxDuration: flowMaxDuration)
        } catch {
            fail("cannot open the store: \(error)")
        }
    }
}

extension StoreOptions {
    /// An admin command's work on the store: opened, `body` run, closed whatever happens; an
    /// error is the command's one line and exit 1.
    func withEngine<T>(_ body: (ApprovalEngine) async throws -> T) async throws -> T {
        bootstrapLogging(level: "warning")
        let engine = try await openEngine(logger: Logger(label: "writ-server"))
        do {
            let value = try await body(engine)
            await engine.store.close()
            return value
        } catch {
            await engine.store.close()
            fail("\(error)")
        }
    }
}

func fail(_ message: String, code: Int32 = 1) -> Never {
    let line = "writ-server: \(message)\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    exit(code)
}

func bootstrapLogging(level: String) {
    LoggingSystem.bootstrap { label in
        var h = StreamLogHandler.standardError(label: label)
        h.logLevel = Logger.Level(rawValue: level) ?? .info
        return h
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve the fleet API over HTTPS (one replica).")

    @OptionGroup var store: StoreOptions
    @Option(help: "Address and port to listen on (port 0: any free port, printed at start).")
    var listen = "0.0.0.0:8443"
    @Option(help: "A name agents reach this replica by (repeatable): its TLS certificate's names.")
    var name: [String] = []
    @Option(help: "How long agents' certificates last (agents renew at half).")
    var agentCertificateLifetime = "24h"
    @Option(help: "Long-polls pending at once, at most.") var maxWaiters = 50_000
    @Option(help: "Log level: trace, debug, info, notice, warning, error.") var logLevel = "info"
    @Option(
        help:
            "The fleet's policy (writd's format; check it with writ policy validate). Read again when it changes, or on SIGHUP; a file that fails keeps the last good policy."
    )
    var policy = "/etc/writ/fleet-policy.yaml"
    @Option(
        help:
            "The fleet's integrations (writd's integrations.yaml format; PagerDuty is used, Slack stays with each host's writd). Owned by root or this server's account, not readable by others. Read again when it changes, or on SIGHUP."
    )
    var integrations = "/etc/writ/fleet-integrations.yaml"

    func run() async throws {
        bootstrapLogging(level: logLevel)
        let logger = Logger(label: "writ-server")
        var configuration = ServerConfiguration()
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
            (0...65535).contains(port)
        else { fail("--listen takes ADDRESS:PORT, such as 0.0.0.0:8443", code: 64) }
        var address = String(listen[..<colon])
        if address.hasPrefix("[") && address.hasSuffix("]") { address = String(address.dropFirst().dropLast()) }
        configuration.address = address
        configuration.port = port
        guard let lifetime = try? DurationText.parse(agentCertificateLifetime), lifetime >= 120, lifetime <= 30 * 86400
        else {
            fail("--agent-certificate-lifetime takes 2m to 30d, such as 24h", code: 64)
        }
        configuration.agentCertificateLifetime = lifetime
        configuration.maxWaiters = max(1, maxWaiters)
        var names = name
        if names.isEmpty {
            names = [FleetFiles.hostname(), "localhost", "127.0.0.1", "::1"]
            if !["0.0.0.0", "::", "127.0.0.1", "localhost"].contains(configuration.address) {
                names.append(configuration.address)
            }
        }
        configuration.names = names
        let policy = ServerPolicy(path: policy, logger: logger)
        policy.reload(force: true)
        let integrations = ServerIntegrations(path: integrations, logger: logger)
        integrations.reload(force: true)
        let engine = try await store.openEngine(logger: logger) { flow in
            policy.current?.policy.flow(named: flow)?.maxDuration
        }
        let ca: FleetCA
        do {
            ca = try FleetCA.loadOrCreate(directory: store.stateDir + "/ca")
        } catch {
            fail("\(error)")
        }
        // One descriptor per agent's connection: raise the soft limit to the hard one.
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        let server = FleetServer(
            engine: engine,
            ca: ca,
            policy: policy,
            integrations: integrations,
            configuration: configuration,
            logger: logger
        )
        let announce = "as \(names.joined(separator: ", ")); CA sha256 \(FleetPKI.fingerprint(ca.certificate))"
        try await server.run { [address = configuration.address] port in
            logger.notice("listening on \(address):\(port) \(announce)")
            // On stdout too, for whoever started it with port 0 (tests, scripts).
            let line = "listening on \(address):\(port)\n"
            _ = line.withCString { write(1, $0, strlen($0)) }
        }
        // Closing the pool waits for its connections; one to a database that went away may not
        // answer: the exit does not wait for it past a few seconds.
        let closing = Task { await engine.store.close() }
        if !(await finished(closing, within: .seconds(3))) {
            logger.warning("the store's connections did not close within 3 s; exiting without them")
        }
    }
}

struct HostCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "host",
        abstract: "Enroll, disable and enable the fleet's hosts.",
        subcommands: [Enroll.self, Disable.self, Enable.self]
    )

    /// The admin running the command, as the audit names them.
    static func admin() -> Principal {
        let user = getpwuid(getuid()).map { String(cString: $0.pointee.pw_name) } ?? "uid \(getuid())"
        return Principal(user: user, route: .host(FleetFiles.hostname()))
    }

    struct Enroll: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a one-time token that enrolls HOST, and the command to run on it."
        )
        @OptionGroup var store: StoreOptions
        @Argument(help: "The host's name (lower case, as DNS has it).") var host: String
        @Option(help: "How long the token works (at most 7d).") var lifetime = "1h"
        @Option(help: "The server's URL as the host reaches it.") var url: String?

        func run() async throws {
            guard let seconds = try? DurationText.parse(lifetime) else {
                fail("--lifetime takes a duration such as 1h", code: 64)
            }
            try await store.withEngine { engine in
                let ca = try FleetCA.loadOrCreate(directory: store.stateDir + "/ca")
                let made = try await engine.createEnrollment(host: host, lifetime: seconds, by: HostCommand.admin())
                let server = url ?? "https://\(FleetFiles.hostname()):8443"
                print("token for \(host), valid until \(made.expiresAt) (Unix time), once:")
                print("  \(made.token)")
                print("on \(host), as root:")
                // The token on standard input: a command line is visible to every local user.
                print(
                    "  echo \(made.token) | writd enroll --server \(server) --token-file - --ca-sha256 \(FleetPKI.fingerprint(ca.certificate))"
                )
            }
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Refuse HOST at once: its agent's routes, its unused tokens, and enrolling again."
        )
        @OptionGroup var store: StoreOptions
        @Argument var host: String
        func run() async throws { try await setHost(store, host, enabled: false) }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Serve HOST again (it keeps its key).")
        @OptionGroup var store: StoreOptions
        @Argument var host: String
        func run() async throws { try await setHost(store, host, enabled: true) }
    }
}

func setHost(_ store: StoreOptions, _ host: String, enabled: Bool) async throws {
    let h = try await store.withEngine { try await $0.setHost(host, enabled: enabled, by: HostCommand.admin()) }
    print("\(h.name) is \(h.enabled ? "enabled" : "disabled")")
}

struct GrantCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grant",
        abstract: "Add or revoke a grant by hand, as an admin of the fleet (every host it covers gets it).",
        subcommands: [Add.self, Revoke.self]
    )

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Grant USER sudo or login on the hosts --host covers."
        )
        @OptionGroup var store: StoreOptions
        @Option(help: "The account.") var user: String
        @Option(help: "sudo or login.") var capability = "sudo"
        @Option(help: "The hosts it covers (a pattern: web-*, db-01, *).") var host: String
        @Option(help: "The account sudo runs as.") var runas = "root"
        @Option(name: .customLong("for"), help: "How long, such as 30m (at most 31d).") var duration: String
        @Option(help: "Why: the audit log records it.") var reason: String

        func run() async throws {
            guard let seconds = try? DurationText.parse(duration) else {
                fail("--for takes a duration such as 30m", code: 64)
            }
            let g = try await store.withEngine { engine in
                try await engine.addGrant(
                    user: user,
                    capability: capability,
                    host: host,
                    runas: runas,
                    duration: seconds,
                    reason: reason,
                    by: HostCommand.admin()
                )
            }
            print(g.id)
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "End grant ID now, on every host that has it.")
        @OptionGroup var store: StoreOptions
        @Argument var id: String
        @Option(help: "Why: the audit log records it.") var reason = ""

        func run() async throws {
            let g = try await store.withEngine {
                try await $0.revoke(grant: id, by: HostCommand.admin(), reason: reason)
            }
            print("\(g.id) revoked")
        }
    }
}
