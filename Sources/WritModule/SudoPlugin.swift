import CWritHost
import WritCore
import WritStore

#if canImport(Glibc)
import Glibc
#else
import CLibc  // Embedded Swift build of the module: no Glibc overlay
#endif

// sudo_writ.so: the approval plugin (`writ_approval`) and the audit plugin (`writ_audit`). The
// plugin structs live in CShims/CWritHost/host.c; their functions call the @_cdecl functions here.

/// What sudo told the plugin at open(), kept for check(), accept() and close().
struct SudoInvocation {
    var user: String
    var uid: UInt32
    var options: ModuleOptions
    var optionsProblem: String?

    init(
        userInfo: UnsafePointer<UnsafeMutablePointer<CChar>?>?,
        pluginOptions: UnsafePointer<UnsafeMutablePointer<CChar>?>?
    ) {
        let info = CStrings.keyValues(userInfo)
        // sudo fills user_info from getuid() and its own passwd lookup, not from the environment.
        uid = info["uid"].flatMap { UInt32($0) } ?? UInt32.max
        user = info["user"] ?? ""
        (options, optionsProblem) = ModuleOptions.parsePluginLine(CStrings.array(pluginOptions))
    }
}

/// The state sudo's plugin API forces on a plugin: open() and check()/accept()/close() are
/// separate calls. Safe without locks because sudo is single-threaded and calls plugin functions
/// one at a time; nothing here is touched from PAM (the PAM entry points keep no state).
nonisolated(unsafe) var approvalInvocation: SudoInvocation? = nil
nonisolated(unsafe) var auditInvocation: SudoInvocation? = nil
/// The grant that allowed this sudo run, for the audit records.
nonisolated(unsafe) var allowingGrant: String? = nil
/// One sudo run is one record in writd's audit log, not one per plugin that accepted it. sudo
/// calls the audit plugin's accept() for its policy plugin and again for every approval plugin,
/// and the PAM session hook in sudo's stack would report the same run once more. So: when
/// sudo.conf loads writ_approval, its accept is the one reported (it knows the grant); otherwise
/// the policy plugin's. The PAM session hook stays quiet in a sudo that opened writ_audit, and an
/// exit is reported only for a run whose accept was.
nonisolated(unsafe) var auditPluginOpened = false
nonisolated(unsafe) var approvalConfigured = false
nonisolated(unsafe) var acceptReported = false
/// writ_approval found the user outside its managed group: the run is not reported to writd (it
/// would be tracked under whatever grant the user happens to hold) nor logged as Writ's.
nonisolated(unsafe) var approvalNotManaged = false

/// `errstr` must stay valid until close(): static strings only.
func setErrstr(_ errstr: UnsafeMutablePointer<UnsafePointer<CChar>?>?, _ text: StaticString) {
    errstr?.pointee = UnsafeRawPointer(text.utf8Start).assumingMemoryBound(to: CChar.self)
}

func sudoLog(_ priority: Int32, _ message: String) {
    writ_syslog(priority, "sudo_writ: " + message)
}

@_cdecl("writ_swift_approval_open")
func approvalOpen(
    _ settings: UnsafePointer<UnsafeMutablePointer<CChar>?>?,
    _ userInfo: UnsafePointer<UnsafeMutablePointer<CChar>?>?,
    _ pluginOptions: UnsafePointer<UnsafeMutablePointer<CChar>?>?,
    _ errstr: UnsafeMutablePointer<UnsafePointer<CChar>?>?
) -> Int32 {
    approvalInvocation = SudoInvocation(userInfo: userInfo, pluginOptions: pluginOptions)
    allowingGrant = nil
    approvalNotManaged = false
    return 1
}

/// `sudo -V`: the plugins' version, a static C string (NUL-terminated: a StaticString literal).
@_cdecl("writ_swift_version")
func writVersion() -> UnsafePointer<CChar> {
    UnsafeRawPointer(WritVersion.literal.utf8Start).assumingMemoryBound(to: CChar.self)
}

@_cdecl("writ_swift_approval_close")
func approvalClose() {
    approvalInvocation = nil
}

@_cdecl("writ_swift_approval_check")
func approvalCheck(
    _ commandInfo: UnsafePointer<UnsafeMutablePointer<CChar>?>?,
    _ runArgv: UnsafePointer<UnsafeMutablePointer<CChar>?>?,
    _ runEnvp: UnsafePointer<UnsafeMutablePointer<CChar>?>?,
    _ errstr: UnsafeMutablePointer<UnsafePointer<CChar>?>?
) -> Int32 {
    guard let invocation = approvalInvocation else {
        sudoLog(LOG_ERR, "check() without open(); denying (fail closed)")
        setErrstr(errstr, "writ: internal error")
        return 0
    }
    let info = CStrings.keyValues(commandInfo)
    let (argv, argvValid) = CStrings.validatedArray(runArgv)
    let decision = SudoApproval(
        invocation: invocation,
        commandInfo: info,
        argv: argv,
        argvIsValidText: argvValid,
        environment: { CStrings.validatedArray(runEnvp) }
    ).decide()
    switch decision {
    case .allow(let grant):
        allowingGrant = grant
        return 1
    case .deny(let userLine):
        _ = writ_sudo_error(userLine)
        setErrstr(errstr, "denied by writ: no matching grant")
        return 0
    case .failOpen:
        return 1
    case .notManaged:
        approvalNotManaged = true
        return 1
    }
}

/// One approval check: the invoking user, the run-as user and the exact command against the
/// store's grants.
struct SudoApproval {
    enum Outcome {
        case allow(grant: String?)
        case deny(userLine: String)
        case failOpen
        /// Outside the managed group: not Writ's to decide, nor to track or audit.
        case notManaged
    }

    let invocation: SudoInvocation
    let commandInfo: KeyValues
    let argv: [String]
    let argvIsValidText: Bool
    /// The command's environment (`run_envp`) and whether all of it was valid UTF-8, read only
    /// when a command-limited grant needs it.
    let environment: () -> ([String], Bool)

    func decide() -> Outcome {
        let options = invocation.options
        if invocation.uid == 0 { return .allow(grant: nil) }  // root is never denied
        if let problem = invocation.optionsProblem {
            sudoLog(LOG_ERR, "bad plugin options in sudo.conf: \(problem); denying (fail closed)")
            return .deny(
                userLine:
                    "writ: sudo is misconfigured on this host — ask an admin to check the writ_approval line in /etc/sudo.conf"
            )
        }
        // Identify the user by uid as sudo determined it, and the target by the uid sudo will use.
        guard let user = HostFacts.user(uid: invocation.uid) else {
            sudoLog(LOG_ERR, "cannot look up uid \(invocation.uid); denying")
            return .deny(userLine: "writ: cannot identify you (uid \(invocation.uid)) — contact an admin")
        }
        let name = LogText.escape(user.name, limit: 64)
        switch options.scope(for: user, log: sudoLog) {
        case .managed: break
        case .unmanaged:
            // Outside the managed group the plugin stays out of the decision: sudoers decides alone.
            return .notManaged
        case .groupMissing(let group):
            if options.failMode == .open {
                sudoLog(
                    LOG_ALERT,
                    "managed_group \(LogText.escape(group)) does not exist; failmode=open lets \(name) through"
                )
                return .failOpen
            }
            sudoLog(
                LOG_ERR,
                "managed_group \(LogText.escape(group)) does not exist; denying sudo for \(name) (fail closed)"
            )
            return .deny(
                userLine:
                    "writ: sudo is misconfigured on this host — ask an admin to check managed_group= on the writ_approval line in /etc/sudo.conf"
            )
        }
        let runasUID = (commandInfo["runas_euid"] ?? commandInfo["runas_uid"]).flatMap { UInt32($0) }
        guard let runasUID, let target = HostFacts.user(uid: runasUID) else {
            sudoLog(LOG_ERR, "no known run-as user in command_info for \(name); denying")
            return .deny(userLine: "writ: cannot determine the run-as user — contact an admin")
        }
        let runas = target.name
        // `sudo -u postgres -g root`: the run-as group must be the target's own.
        let runasGID = (commandInfo["runas_egid"] ?? commandInfo["runas_gid"]).flatMap { UInt32($0) }
        let groupIsPrimary = runasGID.map { $0 == target.gid } ?? true
        let commandIsValidText = commandInfo.isValidText("command")
        guard let command = commandInfo["command"], command.hasPrefix("/") else {
            sudoLog(LOG_ERR, "no command in command_info for \(name); denying")
            return .deny(userLine: "writ: cannot determine the command — contact an admin")
        }
        let now = HostFacts.now()
        let candidates: [Grant]
        do {
            let reader = try GrantReader(path: options.storePath)
            candidates = try reader.candidates(user: user.name, capability: .sudo, now: now)
        } catch {
            if options.failMode == .open && error.mayFailOpen {
                sudoLog(
                    LOG_ALERT,
                    "store unusable (\(error.code)): \(error.description); failmode=open lets \(name) through"
                )
                return .failOpen
            }
            sudoLog(
                LOG_ERR,
                "store unusable (\(error.code)): \(error.description); denying sudo for \(name) (fail closed)"
            )
            return .deny(
                userLine:
                    "writ: access checks are unavailable on this host (grant store \(error.code)) — contact an admin"
            )
        }
        // Only a command-limited grant depends on these; checking PATH and the program's
        // directories costs syscalls.
        var environmentProblem: String? = nil
        var programIsRootOnly = true
        if candidates.contains(where: { $0.commands != nil }) {
            programIsRootOnly = RootOnlyPath.isRootOnlyProgram(command)
            environmentProblem = commandContextProblem(user: user, target: target)
        }
        let query = AccessQuery(
            user: user.name,
            uid: user.uid,
            capability: .sudo,
            host: HostFacts.host(),
            runas: runas,
            command: (command, Array(argv.dropFirst())),
            runasGroupIsPrimary: groupIsPrimary,
            commandEnvironmentProblem: environmentProblem,
            commandIsValidText: argvIsValidText && commandIsValidText,
            commandProgramIsRootOnly: programIsRootOnly,
            now: now
        )
        let cmd = LogText.escape(([command] + argv.dropFirst()).joined(separator: " "), limit: 512)
        switch AccessCheck.decide(query, candidates: candidates, samePath: HostFacts.sameProgram) {
        case .allow(let grantID):
            if options.debug {
                sudoLog(LOG_DEBUG, "allowed \(name) as \(LogText.escape(runas)): \(cmd) by grant \(grantID)")
            }
            return .allow(grant: grantID)
        case .deny(let denial):
            sudoLog(LOG_NOTICE, "denied \(name) as \(LogText.escape(runas)): \(cmd): \(denial.code)")
            return .deny(userLine: denial.message(for: query))
        }
    }

    /// What would let a command-limited grant run more than its command: sudoedit, a chroot, or
    /// an environment beyond what sudo's env_reset leaves (`CommandEnvironment`); nil if none.
    func commandContextProblem(user: HostFacts.UserRecord, target: HostFacts.UserRecord) -> String? {
        if commandInfo["sudoedit"] == "true" { return "sudoedit (-e) runs an editor the user chooses" }
        if commandInfo["chroot"] != nil { return "a chroot is requested" }
        let (envp, envpValid) = environment()
        guard envpValid else { return "a variable is not valid UTF-8" }
        return CommandEnvironment.problem(
            envp,
            expected: [
                ("HOME", target.home), ("SHELL", target.shell), ("USER", target.name), ("LOGNAME", target.name),
                ("MAIL", "/var/mail/" + target.name), ("MAIL", "/var/spool/mail/" + target.name),
                ("SUDO_USER", user.name), ("SUDO_UID", String(user.uid)), ("SUDO_GID", String(user.gid)),
                ("SUDO_HOME", user.home),
            ],
            isSecureDirectory: { RootOnlyPath.resolveDirectory($0) != nil }
        )
    }
}

// MARK: audit plugin

@_cdecl("writ_swift_audit_open")
func auditOpen(
    _ settings: UnsafePointer<UnsafeMutablePointer<CChar>?>?,
    _ userInfo: UnsafePointer<UnsafeMutablePointer<CChar>?>?,
    _ pluginOptions: UnsafePointer<UnsafeMutablePointer<CChar>?>?,
    _ errstr: UnsafeMutablePointer<UnsafePointer<CChar>?>?
) -> Int32 {
    auditInvocation = SudoInvocation(userInfo: userInfo, pluginOptions: pluginOptions)
    auditPluginOpened = true
    approvalConfigured = HostFacts.sudoConfLoadsApprovalPlugin()
    acceptReported = false
    return 1
}

func auditWho() -> String {
    guard let inv = auditInvocation else { return "user=?" }
    return "user=\(LogText.escape(inv.user, limit: 64)) uid=\(inv.uid)"
}

/// What sudo is about to run, read once from command_info and run_argv for both the syslog
/// record and the report to writd.
struct SudoCommandLine {
    var runas: String
    var command: String

    init(_ commandInfo: UnsafePointer<UnsafeMutablePointer<CChar>?>?, argv: [String]) {
        let info = CStrings.keyValues(commandInfo)
        runas = info["runas_user"] ?? info["runas_uid"].map { "uid:" + $0 } ?? "?"
        command = ([info["command"] ?? "?"] + argv.dropFirst()).joined(separator: " ")
    }

    var logText: String {
        "runas=\(LogText.escape(runas, limit: 64)) command=\"\(LogText.escape(command, limit: 1024))\""
    }
}

@_cdecl("writ_swift_audit_accept")
func auditAccept(
    _ pluginName: UnsafePointer<CChar>?,
    _ pluginType: UInt32,
    _ commandInfo: UnsafePointer<UnsafeMutablePointer<CChar>?>?,
    _ runArgv: UnsafePointer<UnsafeMutablePointer<CChar>?>?,
    _ errstr: UnsafeMutablePointer<UnsafePointer<CChar>?>?
) -> Int32 {
    let name = pluginName.map { String(cString: $0) } ?? "?"
    // A writ_audit line with options it does not know is refused like writ_approval's: an option
    // accepted and ignored is a promise nobody keeps. Root is never refused.
    if let inv = auditInvocation, inv.uid != 0, let problem = inv.optionsProblem {
        sudoLog(LOG_ERR, "bad writ_audit options in sudo.conf: \(problem); denying (fail closed)")
        _ = writ_sudo_error(
            "writ: sudo is misconfigured on this host — ask an admin to check the writ_audit line in /etc/sudo.conf"
        )
        return 0
    }
    let decisive = approvalConfigured ? name == "writ_approval" : pluginType == 1  // SUDO_POLICY_PLUGIN
    guard decisive, !acceptReported, !approvalNotManaged else { return 1 }
    acceptReported = true
    let grant = allowingGrant ?? "-"
    let line = SudoCommandLine(commandInfo, argv: CStrings.array(runArgv))
    sudoLog(
        LOG_INFO,
        "audit accept by=\(LogText.escape(name, limit: 64)) \(auditWho()) \(line.logText) grant=\(LogText.escape(grant))"
    )
    if let inv = auditInvocation, inv.uid != 0 {
        WritdReport.send(
            .init(
                event: "sudo_accept",
                user: inv.user,
                service: "sudo",
                capability: .sudo,
                grant: allowingGrant,
                runas: line.runas,
                command: line.command
            )
        )
    }
    return 1
}

@_cdecl("writ_swift_audit_reject")
func auditReject(
    _ pluginName: UnsafePointer<CChar>?,
    _ pluginType: UInt32,
    _ auditMsg: UnsafePointer<CChar>?,
    _ commandInfo: UnsafePointer<UnsafeMutablePointer<CChar>?>?,
    _ errstr: UnsafeMutablePointer<UnsafePointer<CChar>?>?
) -> Int32 {
    auditRecord("reject", LOG_NOTICE, pluginName, auditMsg, commandInfo)
}

@_cdecl("writ_swift_audit_error")
func auditError(
    _ pluginName: UnsafePointer<CChar>?,
    _ pluginType: UInt32,
    _ auditMsg: UnsafePointer<CChar>?,
    _ commandInfo: UnsafePointer<UnsafeMutablePointer<CChar>?>?,
    _ errstr: UnsafeMutablePointer<UnsafePointer<CChar>?>?
) -> Int32 {
    auditRecord("error", LOG_ERR, pluginName, auditMsg, commandInfo)
}

/// One reject or error record: who, what, and the plugin's reason, escaped. Returns 1: an audit
/// plugin's verdict on a refusal changes nothing, and a failure to log must not turn into one.
func auditRecord(
    _ kind: String,
    _ priority: Int32,
    _ pluginName: UnsafePointer<CChar>?,
    _ auditMsg: UnsafePointer<CChar>?,
    _ commandInfo: UnsafePointer<UnsafeMutablePointer<CChar>?>?
) -> Int32 {
    let name = pluginName.map { String(cString: $0) } ?? "?"
    let msg = auditMsg.map { String(cString: $0) } ?? ""
    let line = SudoCommandLine(commandInfo, argv: [])
    if let inv = auditInvocation, inv.uid != 0 {
        WritdReport.send(
            .init(
                event: "sudo_" + kind,
                user: inv.user,
                service: "sudo",
                capability: .sudo,
                runas: line.runas,
                command: line.command,
                detail: msg
            )
        )
    }
    sudoLog(
        priority,
        "audit \(kind) by=\(LogText.escape(name, limit: 64)) \(auditWho()) \(line.logText) reason=\"\(LogText.escape(msg, limit: 256))\""
    )
    return 1
}

@_cdecl("writ_swift_audit_close")
func auditClose(_ statusType: Int32, _ status: Int32) {
    // sudo_plugin(5): SUDO_PLUGIN_NO_STATUS 0, WAIT_STATUS 1, EXEC_ERROR 2, SUDO_ERROR 3.
    let outcome: String
    switch statusType {
    case 1:
        if status & 0x7F == 0 {
            outcome = "exit=\((status >> 8) & 0xFF)"
        } else {
            outcome = "signal=\(status & 0x7F)"
        }
    case 2: outcome = "exec_error=\(status)"
    case 3: outcome = "sudo_error=\(status)"
    default: outcome = "no_status"
    }
    if let inv = auditInvocation, acceptReported {
        sudoLog(LOG_INFO, "audit exit \(auditWho()) \(outcome) grant=\(LogText.escape(allowingGrant ?? "-"))")
        if inv.uid != 0 {
            WritdReport.send(
                .init(
                    event: "sudo_exit",
                    user: inv.user,
                    service: "sudo",
                    capability: .sudo,
                    grant: allowingGrant,
                    detail: outcome
                )
            )
        }
    }
    auditInvocation = nil
    acceptReported = false
}
