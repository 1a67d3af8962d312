import ArgumentParser
import Glibc
import Logging
import NIOPosix
import ServiceLifecycle
import WritDaemon

/// writd — the Writ host daemon. Runs in the foreground (systemd `Type=simple`, containers,
/// tests); logs to standard error. SIGTERM/SIGINT shut it down gracefully; SIGHUP reloads the
/// policy.
@main
struct Writd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "writd",
        abstract: "The Writ host daemon: requests, approvals, expiry, ended sessions, audit.",
        version: Engine.version
    )

    @Option(help: "The grant store.") var store = DaemonConfiguration().storePath
    @Option(help: "writd's own state database.") var state = DaemonConfiguration().statePath
    @Option(name: .customLong("audit-log"), help: "The hash-chained audit log.") var auditLog = DaemonConfiguration()
        .auditPath
    @Option(help: "The Unix socket writ connects to.") var socket = DaemonConfiguration().socketPath
    @Option(help: "The policy file.") var policy = DaemonConfiguration().policyPath
    @Option(help: "Seconds between SIGHUP and SIGKILL when a grant's sessions are ended.") var sessionGrace: Int = 5
    @Option(help: "Seconds before expiry to warn terminals (grants no flow configured).") var warnBefore: Int = 300
    @Option(help: "Log level: trace, debug, info, notice, warning, error.") var logLevel = "info"
    @Option(help: "Secrets and settings of the integrations (PagerDuty, Slack): root's, mode 0600.")
    var integrations = DaemonConfiguration().integrationsPath
    @Option(help: "The directory holding writ_hook.py, put on policy hooks' PYTHONPATH.")
    var hookLibrary = DaemonConfiguration().hookLibraryPath ?? "/usr/local/lib/writ/python"

    func run() async throws {
        guard getuid() == 0 else {
            FileHandleStderr.write("writd: must run as root (it is the only writer of the grant store)\n")
            throw ExitCode(1)
        }
        for (name, path) in [
            ("--store", store), ("--state", state), ("--audit-log", auditLog), ("--socket", socket),
            ("--policy", policy), ("--integrations", integrations),
        ]
        where !path.hasPrefix("/") {
            FileHandleStderr.write("writd: \(name) \(path) is not an absolute path\n")
            throw ExitCode(64)
        }
        umask(0o077)
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = Logger.Level(rawValue: logLevel) ?? .info
            return h
        }
        let logger = Logger(label: "writd")
        var config = DaemonConfiguration()
        config.storePath = store
        config.statePath = state
        config.auditPath = auditLog
        config.socketPath = socket
        config.policyPath = policy
        config.sessionGrace = .seconds(max(0, sessionGrace))
        config.defaultWarnBefore = Int64(max(0, warnBefore))
        config.hookLibraryPath = hookLibrary
        config.integrationsPath = integrations
        let timer: WallClockTimer
        let engine: Engine
        do {
            timer = try WallClockTimer()
            engine = try Engine(config: config, logger: logger, timer: timer)
        } catch {
            FileHandleStderr.write("writd: cannot start: \(error)\n")
            throw ExitCode(1)
        }
        // Descriptors: one per client connection (capped per user), SQLite's journals, /proc reads
        // and pidfds while ending sessions. Raise the soft limit to the hard one.
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        // Recovery (queued audit records, expiries that fell due while down) completes before the
        // socket accepts anyone.
        await engine.start()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let services: [any Service] = [
            ExpiryService(engine: engine, timer: timer),
            SocketServer(path: socket, engine: engine, logger: logger, group: group),
            ReloadService(engine: engine, logger: logger),
            SlackService(engine: engine, logger: logger),
        ]
        let serviceGroup = ServiceGroup(
            configuration: .init(
                services: services.map { .init(service: $0) },
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await serviceGroup.run()
        try await group.shutdownGracefully()
        logger.notice("stopped")
    }
}

enum FileHandleStderr {
    static func write(_ s: String) {
        let bytes = Array(s.utf8)
        _ = bytes.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }
}
