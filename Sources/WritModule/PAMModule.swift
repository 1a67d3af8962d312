import CWritHost
import WritCore
import WritStore

#if canImport(Glibc)
import Glibc
#else
import CLibc  // Embedded Swift build of the module: no Glibc overlay
#endif

// pam_writ.so: the PAM entry points. `account` is the gate; `session` reports opened and closed
// sessions to writd (best effort) so it can end them when their grant ends; `auth` and
// `setcred` have nothing to do. No Foundation, no threads, no global state: every call stands
// alone.

@_cdecl("pam_sm_acct_mgmt")
public func pam_sm_acct_mgmt(
    _ pamh: OpaquePointer,
    _ flags: Int32,
    _ argc: Int32,
    _ argv: UnsafeMutablePointer<UnsafePointer<CChar>?>?
) -> Int32 {
    PAMAccount(pamh: pamh, argc: argc, argv: argv).run()
}

@_cdecl("pam_sm_authenticate")
public func pam_sm_authenticate(
    _ pamh: OpaquePointer,
    _ flags: Int32,
    _ argc: Int32,
    _ argv: UnsafeMutablePointer<UnsafePointer<CChar>?>?
) -> Int32 { PAM_IGNORE }

@_cdecl("pam_sm_setcred")
public func pam_sm_setcred(
    _ pamh: OpaquePointer,
    _ flags: Int32,
    _ argc: Int32,
    _ argv: UnsafeMutablePointer<UnsafePointer<CChar>?>?
) -> Int32 { PAM_IGNORE }

@_cdecl("pam_sm_open_session")
public func pam_sm_open_session(
    _ pamh: OpaquePointer,
    _ flags: Int32,
    _ argc: Int32,
    _ argv: UnsafeMutablePointer<UnsafePointer<CChar>?>?
) -> Int32 { PAMAccount(pamh: pamh, argc: argc, argv: argv).reportSession(open: true) }

@_cdecl("pam_sm_close_session")
public func pam_sm_close_session(
    _ pamh: OpaquePointer,
    _ flags: Int32,
    _ argc: Int32,
    _ argv: UnsafeMutablePointer<UnsafePointer<CChar>?>?
) -> Int32 { PAMAccount(pamh: pamh, argc: argc, argv: argv).reportSession(open: false) }

/// One `pam_acct_mgmt` call.
struct PAMAccount {
    let pamh: OpaquePointer
    let words: [String]

    init(pamh: OpaquePointer, argc: Int32, argv: UnsafeMutablePointer<UnsafePointer<CChar>?>?) {
        self.pamh = pamh
        var words: [String] = []
        if let argv {
            for i in 0..<Int(max(argc, 0)) {
                if let p = argv[i] { words.append(String(cString: p)) }
            }
        }
        self.words = words
    }

    func log(_ priority: Int32, _ message: String) {
        writ_pam_syslog(pamh, priority, "writ: " + message)
    }

    func tell(_ message: String) {
        // Shown even under PAM_SILENT, which sudo always passes: without this line a denied user
        // sees only sudo's misleading "a password is required". One line, denials only.
        _ = writ_pam_error(pamh, message)
    }

    func item(_ type: Int32) -> String? { rawItem(type).map { String(cString: $0) } }

    /// `pam_get_item` for a string item, as the raw C string.
    func rawItem(_ type: Int32) -> UnsafePointer<CChar>? {
        var raw: UnsafeRawPointer? = nil
        guard pam_get_item(pamh, type, &raw) == PAM_SUCCESS, let raw else { return nil }
        let p = raw.assumingMemoryBound(to: CChar.self)
        return p.pointee == 0 ? nil : p
    }

    func run() -> Int32 {
        let service = item(PAM_SERVICE) ?? ""
        let sudoService = service == "sudo" || service == "sudo-i"
        // Parsed first: which user to check depends on the capability. A problem denies below,
        // once root (never denied) has been told apart.
        let (options, problem) = ModuleOptions.parse(words)
        let capability = options.capability ?? (sudoService ? .sudo : .login)
        var userPtr: UnsafePointer<CChar>? = nil
        guard pam_get_user(pamh, &userPtr, nil) == PAM_SUCCESS, let pamUser = userPtr else {
            log(LOG_ERR, "cannot determine the user")
            return PAM_USER_UNKNOWN
        }
        switch subject(pamUser: pamUser, capability: capability, sudoService: sudoService, service: service) {
        case .user(let user):
            return check(user: user, options: options, problem: problem, capability: capability, service: service)
        case .result(let code):
            return code
        }
    }

    /// The session hook: tells writd which process opened (or closed) a session for whom, so that
    /// the session can be ended with its grant. Never affects the session: always PAM_IGNORE.
    func reportSession(open: Bool) -> Int32 {
        let service = item(PAM_SERVICE) ?? ""
        let sudoService = service == "sudo" || service == "sudo-i"
        let (options, _) = ModuleOptions.parse(words)
        let capability = options.capability ?? (sudoService ? .sudo : .login)
        // The grant holder: under sudo the invoking user (PAM_RUSER), elsewhere the PAM user.
        guard let user = capability == .sudo ? item(PAM_RUSER) : item(PAM_USER), user != "root" else {
            return PAM_IGNORE
        }
        // writ_audit in this same sudo reports the run already: one event, one record.
        if sudoService && auditPluginOpened { return PAM_IGNORE }
        // Users outside the managed group are not Writ's: their sessions are not reported either.
        if options.managedGroup != nil, let record = HostFacts.user(named: user),
            case .unmanaged = options.scope(for: record, log: log)
        {
            return PAM_IGNORE
        }
        let delivered = WritdReport.send(
            .init(
                event: open ? "session_open" : "session_close",
                user: user,
                service: service,
                capability: capability,
                tty: item(PAM_TTY)
            )
        )
        if !delivered && options.debug {
            log(LOG_DEBUG, "writd did not take the session report for \(LogText.escape(user, limit: 64))")
        }
        return PAM_IGNORE
    }

    enum Subject {
        case user(HostFacts.UserRecord)
        /// The PAM result to return when the subject cannot be told.
        case result(Int32)
    }

    /// Whose grant counts. A login grant belongs to the PAM user. A sudo grant belongs to whoever
    /// runs the command, while the PAM user is whoever authenticates: root under sudo's `rootpw`,
    /// the target under `targetpw`, the target of su. sudo, sudo-rs and su name the invoking user
    /// in PAM_RUSER; sudo's own services deny without it. Elsewhere (pkexec and others) a root PAM
    /// user says nothing about the caller of a setuid program: then the real uid does.
    func subject(pamUser: UnsafePointer<CChar>, capability: Capability, sudoService: Bool, service: String) -> Subject {
        func lookup(_ name: UnsafePointer<CChar>) -> Subject {
            guard let record = HostFacts.user(named: name) else {
                log(LOG_NOTICE, "unknown user \"\(LogText.escape(String(cString: name), limit: 64))\"")
                return .result(PAM_USER_UNKNOWN)
            }
            return .user(record)
        }
        guard capability == .sudo else { return lookup(pamUser) }
        if let ruser = rawItem(PAM_RUSER) { return lookup(ruser) }
        if sudoService {
            log(LOG_ERR, "service \(LogText.escape(service)) without PAM_RUSER: cannot tell who runs sudo; denying")
            tell("writ: cannot tell who is running sudo — contact an admin")
            return .result(PAM_PERM_DENIED)
        }
        let named = lookup(pamUser)
        guard case .user(let record) = named, record.uid == 0 else { return named }
        guard let caller = HostFacts.user(uid: getuid()) else {
            log(LOG_ERR, "cannot look up the calling uid \(getuid()); denying")
            return .result(PAM_PERM_DENIED)
        }
        return .user(caller)
    }

    func check(
        user: HostFacts.UserRecord,
        options: ModuleOptions,
        problem: String?,
        capability: Capability,
        service: String
    ) -> Int32 {
        // Root is never locked out, whatever the configuration or the store say.
        if user.uid == 0 { return PAM_SUCCESS }
        // Nor is root acting as someone: su and runuser run by root (their real uid) are root's
        // own doing, not a login by that user.
        if capability == .login && getuid() == 0 && ["su", "su-l", "runuser", "runuser-l"].contains(service) {
            return PAM_SUCCESS
        }
        if let problem {
            log(LOG_ERR, "bad module arguments: \(problem); denying \(LogText.escape(user.name)) (fail closed)")
            tell("writ: access control is misconfigured on this host — ask an admin to check the pam_writ.so line")
            return PAM_PERM_DENIED
        }
        let name = LogText.escape(user.name, limit: 64)

        switch options.scope(for: user, log: log) {
        case .managed: break
        case .unmanaged: return PAM_IGNORE
        case .groupMissing(let group):
            log(LOG_ERR, "managed_group \(LogText.escape(group)) does not exist; denying \(name) (fail closed)")
            tell("writ: access control is misconfigured on this host — ask an admin (managed_group missing)")
            return options.failMode == .open ? PAM_IGNORE : PAM_PERM_DENIED
        }

        let now = HostFacts.now()
        let candidates: [Grant]
        do {
            let reader = try GrantReader(path: options.storePath)
            candidates = try reader.candidates(user: user.name, capability: capability, now: now)
        } catch {
            if options.failMode == .open && error.mayFailOpen {
                log(
                    LOG_ALERT,
                    "store unusable (\(error.code)): \(error.description); failmode=open lets \(name) through"
                )
                return PAM_IGNORE
            }
            log(
                LOG_ERR,
                "store unusable (\(error.code)): \(error.description); denying \(capability.rawValue) for \(name) (fail closed)"
            )
            tell("writ: access checks are unavailable on this host (grant store \(error.code)) — contact an admin")
            return PAM_PERM_DENIED
        }

        var scopeLater = false
        if capability == .sudo && options.sudoPlugin {
            // The plugin checks scopes only for the users it gates: its own managed_group= (which
            // may differ from this line's) must cover this user, or a command-limited grant would
            // pass here and nothing would check the command.
            if let words = HostFacts.approvalPluginThatWillRun() {
                let (pluginOptions, problem) = ModuleOptions.parsePluginLine(words)
                if problem == nil, case .managed = pluginOptions.scope(for: user, log: log) { scopeLater = true }
            }
            if !scopeLater {
                log(
                    LOG_WARNING,
                    "sudo_plugin is set but writ_approval will not check \(name)'s command (not sudo.ws, /etc/sudo.conf does not load it, or its managed_group= leaves \(name) out): scoped grants will not satisfy the account check"
                )
            }
        }
        let query = AccessQuery(
            user: user.name,
            uid: user.uid,
            capability: capability,
            host: HostFacts.host(),
            scopeEnforcedLater: scopeLater,
            now: now
        )
        switch AccessCheck.decide(query, candidates: candidates, samePath: HostFacts.sameProgram) {
        case .allow(let grantID):
            log(
                LOG_INFO,
                "allowed \(capability.rawValue) for \(name) (service \(LogText.escape(service))) by grant \(LogText.escape(grantID))"
            )
            return PAM_SUCCESS
        case .deny(let denial):
            log(
                LOG_NOTICE,
                "denied \(capability.rawValue) for \(name) (service \(LogText.escape(service))): \(denial.code)"
            )
            tell(denial.message(for: query))
            return PAM_PERM_DENIED
        }
    }
}
