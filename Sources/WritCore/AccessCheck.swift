/// What is being asked at login or sudo time.
public struct AccessQuery: Sendable {
    public var user: String
    public var uid: UInt32
    public var capability: Capability
    public var host: HostIdentity
    /// The target user for sudo, when the caller knows it (the sudo plugin does, PAM does not).
    public var runas: String?
    /// The resolved command and its arguments (without argv[0]), when the caller knows them.
    public var command: (path: String, arguments: [String])?
    /// For sudo: whether the command would run with the target user's own primary group (no
    /// `-g`). A grant for one run-as user does not extend to other groups.
    public var runasGroupIsPrimary: Bool
    /// For sudo: why the command's environment or setting is unsafe for a command-limited grant
    /// (variables a user could use to run other code: LD_PRELOAD, a PATH with writable
    /// directories, -E), or nil when it is safe. Command-limited grants require nil.
    public var commandEnvironmentProblem: String?
    /// For sudo: false when the command or an argument is not valid UTF-8, which could not be
    /// compared faithfully. Command-limited grants require true.
    public var commandIsValidText: Bool
    /// For sudo: false when the program sudo will run can be changed by someone other than root
    /// (its file, or a directory or symlink on its path). Command-limited grants require true:
    /// otherwise "this program" means whatever that someone puts there.
    public var commandProgramIsRootOnly: Bool
    /// Whether grants scoped to a run-as user or to commands may satisfy this query although it
    /// carries neither. True only for the sudo PAM stage when the sudo plugin is configured to
    /// enforce the scope right after it; never for the plugin's own check.
    public var scopeEnforcedLater: Bool
    /// Current wall-clock time, UTC seconds.
    public var now: Int64

    public init(
        user: String,
        uid: UInt32,
        capability: Capability,
        host: HostIdentity,
        runas: String? = nil,
        command: (path: String, arguments: [String])? = nil,
        scopeEnforcedLater: Bool = false,
        runasGroupIsPrimary: Bool = true,
        commandEnvironmentProblem: String? = nil,
        commandIsValidText: Bool = true,
        commandProgramIsRootOnly: Bool = true,
        now: Int64
    ) {
        self.commandProgramIsRootOnly = commandProgramIsRootOnly
        self.runasGroupIsPrimary = runasGroupIsPrimary
        self.commandEnvironmentProblem = commandEnvironmentProblem
        self.commandIsValidText = commandIsValidText
        self.user = user
        self.uid = uid
        self.capability = capability
        self.host = host
        self.runas = runas
        self.command = command
        self.scopeEnforcedLater = scopeEnforcedLater
        self.now = now
    }
}

/// The outcome of a check.
public enum AccessDecision: Sendable, Equatable {
    case allow(grantID: String)
    case deny(Denial)
}

/// Why access was refused, most specific first. Every case renders as one line that says what to
/// do next.
public enum Denial: Sendable, Equatable {
    case noGrant
    case notYetValid(startsIn: Int64)
    case otherHost
    case scopeNeedsPlugin
    case runasNotAllowed(allowed: [String])
    case groupNotAllowed
    case commandNotAllowed
    case programNotProtected
    case environmentNotAllowed(String)

    var rank: Int {
        switch self {
        case .noGrant: 0
        case .notYetValid: 1
        case .otherHost: 2
        case .scopeNeedsPlugin: 3
        case .runasNotAllowed: 4
        case .groupNotAllowed: 5
        case .commandNotAllowed: 6
        case .programNotProtected: 7
        case .environmentNotAllowed: 8
        }
    }

    /// A short, stable code for logs.
    public var code: String {
        switch self {
        case .noGrant: "no_grant"
        case .notYetValid: "not_yet_valid"
        case .otherHost: "other_host"
        case .scopeNeedsPlugin: "scope_needs_plugin"
        case .runasNotAllowed: "runas_not_allowed"
        case .groupNotAllowed: "group_not_allowed"
        case .commandNotAllowed: "command_not_allowed"
        case .programNotProtected: "program_not_protected"
        case .environmentNotAllowed: "environment_not_allowed"
        }
    }

    /// The one line shown to the user.
    public func message(for query: AccessQuery) -> String {
        let user = LogText.escape(query.user, limit: 64)
        let host = LogText.escape(query.host.shortName, limit: 255)
        let cap = query.capability.rawValue
        // A login grant cannot be requested on the host that refuses the login, and a standalone
        // writd takes requests for its own host only: the way in is an admin of that host.
        let next =
            query.capability == .login
            ? "ask an admin of \(host) for a login grant (writ grant add --user \(user) --capability login)"
            : "run: writ request \(cap) --reason \"…\""
        switch self {
        case .noGrant:
            return "writ: no active \(cap) grant for \(user) on \(host) — \(next)"
        case .notYetValid(let startsIn):
            return
                "writ: \(user)'s \(cap) grant on \(host) starts in \(DurationText.format(startsIn)) — wait, or \(next)"
        case .otherHost:
            let ask = query.capability == .login ? next : "run: writ request \(cap) --host \(host) --reason \"…\""
            return "writ: \(user)'s \(cap) grant does not cover \(host) — \(ask)"
        case .scopeNeedsPlugin:
            return
                "writ: \(user)'s sudo grant is limited to a run-as user or commands, which this host cannot enforce (sudo_writ plugin not enabled) — ask an admin, or run: writ request sudo --reason \"…\""
        case .runasNotAllowed(let allowed):
            let target = LogText.escape(query.runas ?? "?", limit: 64)
            let list = allowed.map { LogText.escape($0, limit: 64) }.joined(separator: ", ")
            return
                "writ: \(user)'s sudo grant allows running as \(list), not \(target) — run: writ request sudo --runas \(target) --reason \"…\""
        case .groupNotAllowed:
            return
                "writ: \(user)'s sudo grant does not cover running with another group (-g) — run the command without -g, or: writ request sudo --runas '*' --reason \"…\""
        case .commandNotAllowed:
            let cmd = LogText.escape(query.command?.path ?? "?", limit: 255)
            return
                "writ: \(user)'s sudo grant on \(host) does not allow \(cmd) — run: writ request sudo --command \"\(cmd) …\" --reason \"…\""
        case .programNotProtected:
            let cmd = LogText.escape(query.command?.path ?? "?", limit: 255)
            return
                "writ: \(cmd) can be changed by users other than root, so a command-limited grant cannot allow it — ask an admin to protect it"
        case .environmentNotAllowed(let problem):
            return
                "writ: \(user)'s sudo grant is limited to commands, which run only in sudo's clean environment (\(LogText.escape(problem, limit: 128))) — run it without setting variables or -E"
        }
    }
}

/// Decides a query against the candidate grants the store returned. Pure: the caller supplies the
/// grants and a way to compare program paths on disk.
public enum AccessCheck {
    /// - Parameters:
    ///   - candidates: grants for this user and capability that are neither revoked nor expired.
    ///     Any others are ignored here too, so a loose query cannot widen access.
    ///   - samePath: whether two absolute paths name the same program (for command scopes).
    public static func decide(
        _ query: AccessQuery,
        candidates: [Grant],
        samePath: (String, String) -> Bool = { $0 == $1 }
    ) -> AccessDecision {
        var best: Denial = .noGrant
        // Run-as users of the grants that were valid here, for the denial message.
        var runasAllowed: [String] = []
        func note(_ d: Denial) {
            switch (d, best) {
            case (.notYetValid(let a), .notYetValid(let b)):
                // Tell the user about the grant that starts soonest, whatever the store's order.
                if a < b { best = d }
            case (.runasNotAllowed, .runasNotAllowed):
                best = d  // the list only grows
            default:
                if d.rank > best.rank { best = d }
            }
        }
        for grant in candidates {
            // Belt and braces: the store query filters these too.
            guard grant.user.utf8.elementsEqual(query.user.utf8), grant.uid == query.uid,
                grant.capability == query.capability,
                grant.revokedAt == nil, query.now < grant.expiresAt
            else { continue }
            if query.now < grant.notBefore {
                note(.notYetValid(startsIn: grant.notBefore - query.now))
                continue
            }
            guard query.host.matches(grant.host) else {
                note(.otherHost)
                continue
            }
            if query.capability == .login {
                return .allow(grantID: grant.id)
            }
            // sudo: run-as and command scope.
            if let runas = query.runas {
                guard grant.runas == "*" || Glob.matches(grant.runas, runas, caseInsensitive: false) else {
                    if !runasAllowed.contains(grant.runas) { runasAllowed.append(grant.runas) }
                    note(.runasNotAllowed(allowed: runasAllowed.sorted()))
                    continue
                }
                guard query.runasGroupIsPrimary || grant.runas == "*" else {
                    note(.groupNotAllowed)
                    continue
                }
            } else if !(grant.runas == "root" || grant.runas == "*") && !query.scopeEnforcedLater {
                note(.scopeNeedsPlugin)
                continue
            }
            if let commands = grant.commands {
                if let command = query.command {
                    guard
                        commands.contains(where: {
                            $0.matches(command: command.path, arguments: command.arguments[...], samePath: samePath)
                        })
                    else {
                        note(.commandNotAllowed)
                        continue
                    }
                    guard query.commandIsValidText else {
                        note(.commandNotAllowed)
                        continue
                    }
                    guard query.commandProgramIsRootOnly else {
                        note(.programNotProtected)
                        continue
                    }
                    // A command-limited grant is only as narrow as the command's environment:
                    // LD_PRELOAD or a PATH through a user's directory turns any command into any code.
                    if let problem = query.commandEnvironmentProblem {
                        note(.environmentNotAllowed(problem))
                        continue
                    }
                } else if !query.scopeEnforcedLater {
                    note(.scopeNeedsPlugin)
                    continue
                }
            }
            return .allow(grantID: grant.id)
        }
        return .deny(best)
    }
}
