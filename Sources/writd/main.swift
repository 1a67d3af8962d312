import ArgumentParser
import Glibc
import Logging
import NIOPosix
import ServiceLifecycle
import WritAgent
import WritAudit
import WritCore
import WritDaemon
import WritFleetAPI
import WritHooks
import WritProcesses
import WritProtocol

/// writd — the Writ host daemon. `writd` (or `writd run`) runs it in the foreground (systemd
/// `Type=simple`, containers, tests), logging to standard error; SIGTERM/SIGINT shut it down
/// gracefully and SIGHUP reloads the policy. `writd start|stop|reload|restart` manage a writd
/// in the background where systemd does not run it.
@main
struct Writd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "writd",
        abstract: "The Writ host daemon: requests, approvals, expiry, ended sessions, audit.",
        version: WritVersion.current,
        subcommands: [Run.self, Enroll.self, Start.self, Stop.self, Reload.self, Restart.self],
        defaultSubcommand: Run.self
    )
}

/// The pid file that belongs to a socket: `/run/writ/writd.sock` → `/run/writ/writd.pid`, so
/// every writd (tests run several) has its own, and `--socket` alone names an instance.
func pidFilePath(socket: String) -> String {
    (socket.hasSuffix(".sock") ? String(socket.dropLast(5)) : socket) + ".pid"
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run writd in the foreground (the default; what systemd's unit runs)."
    )

    @Option(help: "The grant store.") var store = DaemonConfiguration().storePath
    @Option(help: "writd's own state database.") var state = DaemonConfiguration().statePath
    @Option(name: .customLong("audit-log"), help: "The hash-chained audit log.") var auditLog = DaemonConfiguration()
        .auditPath
    @Option(help: "Rotate the audit log when it grows past this many MiB (0: never); the chain goes on.")
    var auditRotateMib: Int = Int(AuditLog.defaultRotateBytes >> 20)
    @Option(help: "Rotated audit files to keep.") var auditKeep = AuditLog.defaultKeep
    @Option(help: "The Unix socket writ connects to.") var socket = DaemonConfiguration().socketPath
    @Option(help: "The policy file.") var policy = DaemonConfiguration().policyPath
    @Option(help: "Seconds between SIGHUP and SIGKILL when a grant's sessions are ended.") var sessionGrace: Int = 5
    @Option(help: "Seconds before expiry to warn terminals (grants no flow configured).") var warnBefore: Int = 300
    @Option(help: "Log level: trace, debug, info, notice, warning, error.") var logLevel = "info"
    @Option(help: "Secrets and settings of the integrations (PagerDuty, Slack): root's, mode 0600.")
    var integrations = DaemonConfiguration().integrationsPath
    @Option(help: "The directory holding writ_hook.py, put on policy hooks' PYTHONPATH.")
    var hookLibrary = HookRunner.installedLibraryPath
    @Option(
        name: .customLong("server"),
        help:
            "Run as a fleet's agent: writ-server's URL (repeat for each replica; tried in turn). Needs writd enroll first."
    )
    var servers: [String] = []
    @Option(help: "The agent's credentials (writd enroll writes them).") var agentDir = FleetConfiguration
        .defaultDirectory
    @Option(
        help:
            "Strict mode: refuse new use of the server's grants once it has not answered for this long (at least 1m, e.g. 5m)."
    )
    var strictAfter: String?
    @Option(
        help:
            "Seconds between the heartbeats the agent's long-poll asks writ-server for, 1 to 30 (0: none). Three missed: the connection is taken for lost and the agent connects again. Each costs the server a small write."
    )
    var heartbeat = FleetClient.defaultHeartbeat

    func run() async throws {
        guard heartbeat == 0 || FleetHeartbeat.allowed.contains(heartbeat) else {
            FileHandleStderr.write("writd: --heartbeat takes 1 to 30 seconds, or 0 for none\n")
            throw ExitCode(64)
        }
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
        // One writd per socket: a second one would fight over the store and the socket.
        let pidLock: DaemonPidFile.Lock
        do {
            var dir = pidFilePath(socket: socket)
            while let last = dir.last, last != "/" { dir.removeLast() }
            if mkdir(dir, 0o755) == 0 { chmod(dir, 0o755) }  // the socket's directory: others must reach it
            pidLock = try DaemonPidFile.acquire(pidFilePath(socket: socket))
        } catch {
            FileHandleStderr.write("writd: cannot start: \(error)\n")
            throw ExitCode(1)
        }
        defer { pidLock.release() }
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = Logger.Level(rawValue: logLevel) ?? .info
            return h
        }
        let logger = Logger(label: "writd")
        if !SyslogSocket.isListening() { logger.warning("\(SyslogSocket.missing)") }
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
        config.auditRotateBytes = auditRotateMib > 0 ? Int64(auditRotateMib) << 20 : nil
        config.auditKeep = max(1, auditKeep)
        config.fleetServers = servers
        config.fleetDirectory = agentDir
        if !servers.isEmpty {
            do {
                guard let credentials = try AgentCredentials.load(directory: agentDir) else {
                    FileHandleStderr.write(
                        "writd: --server needs an enrolled host and \(agentDir) holds no credentials: run writd enroll --server URL --token TOKEN --ca-sha256 HASH\n"
                    )
                    throw ExitCode(1)
                }
                logger.notice("fleet agent of \(servers.joined(separator: ", ")) as host \(credentials.host)")
                if !HostIdentity(nodename: config.hostName).matches(credentials.host) {
                    logger.warning(
                        "enrolled as \(credentials.host), but this machine is \(config.hostName): grants for \(credentials.host) that name it will not match here"
                    )
                }
            } catch let error as FleetFiles.Failure {
                FileHandleStderr.write("writd: cannot read the agent's credentials: \(error)\n")
                throw ExitCode(1)
            }
        }
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
        var fleet = FleetConfiguration(servers: servers, directory: agentDir)
        fleet.auditPath = auditLog
        fleet.heartbeat = heartbeat == 0 ? nil : heartbeat
        if let strictAfter {
            guard let limit = try? DurationText.parse(strictAfter), limit >= 60, !servers.isEmpty else {
                FileHandleStderr.write("writd: --strict-after takes 1m or more, such as 5m, and needs --server\n")
                throw ExitCode(64)
            }
            fleet.strictAfter = limit
        }
        let services: [any Service] =
            [
                ExpiryService(engine: engine, timer: timer),
                SocketServer(path: socket, engine: engine, logger: logger, group: group),
                ReloadService(engine: engine, logger: logger),
                SlackService(engine: engine, logger: logger),
            ]
            + (servers.isEmpty
                ? []
                : [
                    FleetService(
                        engine: engine,
                        configuration: fleet,
                        logger: logger
                    )
                ])
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

// MARK: writd enroll

struct Enroll: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Enroll this host in a Writ fleet with a one-time token (writ-server host enroll prints the command).",
        discussion: """
            Reads the server's CA and accepts it only when its SHA-256 is --ca-sha256; then makes a new key
            (kept in --agent-dir, root-only), sends the token and a certificate request, and stores the
            certificate the server signs. Then run writd with --server URL.
            """
    )
    @Option(help: "writ-server's URL, https://HOST:PORT.") var server: String
    @Option(help: "The one-time token (visible to local users in the process list: prefer --token-file).")
    var token: String?
    @Option(help: "A file holding the one-time token, or - for standard input.") var tokenFile: String?
    @Option(help: "The SHA-256 of the server's CA, as writ-server host enroll printed it.") var caSha256: String
    @Option(help: "Where the credentials go.") var agentDir = FleetConfiguration.defaultDirectory

    func run() async throws {
        guard getuid() == 0 else {
            FileHandleStderr.write("writd enroll: must run as root (the key is root's)\n")
            throw ExitCode(1)
        }
        umask(0o077)
        var secret = token ?? ""
        if let tokenFile {
            var text = ""
            if tokenFile == "-" {
                text = readLine(strippingNewline: true) ?? ""
            } else {
                do { text = try FleetFiles.read(tokenFile, requirePrivate: false) } catch {
                    FileHandleStderr.write("writd enroll: \(error)\n")
                    throw ExitCode(1)
                }
            }
            secret = String(text.split(whereSeparator: \.isNewline).first ?? "")
        }
        guard !secret.isEmpty, (token == nil) != (tokenFile == nil) else {
            FileHandleStderr.write(
                "writd enroll: give the token once: --token-file FILE (or - for standard input), or --token\n"
            )
            throw ExitCode(64)
        }
        do {
            let credentials = try await FleetClient.enroll(
                server: server,
                token: secret,
                caSHA256: caSha256,
                localName: HostName.current()
            )
            try credentials.save(directory: agentDir)
            print("enrolled as \(credentials.host) with \(server); credentials in \(agentDir)")
            print("next: run writd with --server \(server)")
        } catch let error as AgentError {
            FileHandleStderr.write("writd enroll: \(error)\n")
            throw ExitCode(1)
        } catch let error as FleetFiles.Failure {
            FileHandleStderr.write("writd enroll: cannot save the credentials: \(error)\n")
            throw ExitCode(1)
        }
    }
}

// MARK: writd start|stop|reload|restart — without systemd

/// Where systemd runs writd, its unit is the one manager: two would start two daemons.
func refuseUnderSystemd(_ verb: String, force: Bool) throws {
    if DaemonControl.systemdRuns && !force {
        FileHandleStderr.write("writd: systemd runs this host: use systemctl \(verb) writd (or --force)\n")
        throw ExitCode(1)
    }
}

struct ControlOptions: ParsableArguments {
    @Option(help: "The socket of the writd to manage (its pid file is beside it).")
    var socket = DaemonConfiguration().socketPath
    @Flag(help: "Act even where systemd runs this host.") var force = false
    var pidFile: String { pidFilePath(socket: socket) }
}

struct Start: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start writd in the background (hosts without systemd).",
        discussion: "Arguments after -- go to writd run, e.g. writd start -- --log-level debug."
    )
    @OptionGroup var control: ControlOptions
    @Option(help: "Where writd's log goes.") var logFile = "/var/log/writ/writd.log"
    @Argument(parsing: .postTerminator, help: "Options for writd run.") var runArguments: [String] = []

    func run() throws {
        try refuseUnderSystemd("start", force: control.force)
        if let pid = DaemonPidFile.holder(control.pidFile) {
            print("writd is already running (pid \(pid))")
            return
        }
        _ = try Run.parse(runArguments + ["--socket", control.socket])  // errors now, not in a log
        let pid = try spawnDaemon(
            arguments: ["run"] + runArguments + ["--socket", control.socket],
            logFile: logFile
        )
        // Up when it holds its pid file and listens; down if it exited first.
        for _ in 0..<200 {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                FileHandleStderr.write("writd: exited at start (status \(status)); see \(logFile)\n")
                throw ExitCode(1)
            }
            if DaemonPidFile.holder(control.pidFile) == pid && access(control.socket, F_OK) == 0 {
                print("writd started (pid \(pid)), log \(logFile)")
                return
            }
            usleep(50_000)
        }
        FileHandleStderr.write("writd: not answering after 10 s (pid \(pid)); see \(logFile)\n")
        throw ExitCode(1)
    }

    /// posix_spawn of this same executable in a new session, stdin from /dev/null, output appended
    /// to the log (root's, 0600).
    func spawnDaemon(arguments: [String], logFile: String) throws -> pid_t {
        var logDir = logFile
        while let last = logDir.last, last != "/" { logDir.removeLast() }
        mkdir(logDir, 0o700)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logFile, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        // A new session (no controlling terminal), no blocked signals, default dispositions: the
        // daemon must not inherit a caller's SIGTERM mask or ignored SIGHUP (nohup).
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attr, &none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setflags(&attr, Int16(0x80 | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))  // 0x80: SETSID
        let argv = (["writd"] + arguments).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, "/proc/self/exe", &actions, &attr, argv, [nil])
        guard rc == 0 else {
            FileHandleStderr.write("writd: cannot start: \(String(cString: strerror(rc)))\n")
            throw ExitCode(1)
        }
        return pid
    }
}

struct Stop: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Stop the writd started with writd start.")
    @OptionGroup var control: ControlOptions

    func run() throws {
        try refuseUnderSystemd("stop", force: control.force)
        try stop(control)
    }
}

func stop(_ control: ControlOptions) throws {
    let outcome: DaemonPidFile.SignalOutcome
    do { outcome = try DaemonPidFile.signal(SIGTERM, path: control.pidFile) } catch {
        FileHandleStderr.write("writd: \(error)\n")
        throw ExitCode(1)
    }
    guard case .sent(let pid) = outcome else {
        print("writd is not running")
        return
    }
    for _ in 0..<700 {  // systemd's unit allows 30 s; expiry bookkeeping finishes first
        if DaemonPidFile.holder(control.pidFile) == nil {
            print("writd stopped (pid \(pid))")
            return
        }
        usleep(50_000)
    }
    FileHandleStderr.write("writd: pid \(pid) has not stopped after 35 s\n")
    throw ExitCode(1)
}

struct Reload: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Reload the policy and settings (SIGHUP to the running writd).",
        discussion: "A policy with errors leaves the last good one in force: writ doctor says which."
    )
    @OptionGroup var control: ControlOptions

    func run() throws {
        try refuseUnderSystemd("reload", force: control.force)
        do {
            switch try DaemonPidFile.signal(SIGHUP, path: control.pidFile) {
            case .sent(let pid): print("writd (pid \(pid)) is reloading; writ doctor shows the policy in force")
            case .notRunning:
                FileHandleStderr.write("writd: not running — start it: writd start\n")
                throw ExitCode(1)
            }
        } catch let error as DaemonPidFile.Failure {
            FileHandleStderr.write("writd: \(error)\n")
            throw ExitCode(1)
        }
    }
}

struct Restart: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Stop writd if it runs, then start it.")
    @OptionGroup var control: ControlOptions
    @Option(help: "Where writd's log goes.") var logFile = "/var/log/writ/writd.log"
    @Argument(parsing: .postTerminator, help: "Options for writd run.") var runArguments: [String] = []

    func run() throws {
        try refuseUnderSystemd("restart", force: control.force)
        try stop(control)
        let flags = ["--socket", control.socket, "--log-file", logFile] + (control.force ? ["--force"] : [])
        try Start.parse(flags + ["--"] + runArguments).run()
    }
}
