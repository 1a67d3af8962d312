import Glibc
import WritCore
import WritPolicy
import WritProcesses
import WritStore

/// Where Writ is wired in to gate access, read from the files sudo and PAM read: the account
/// lines of the PAM services (one level of `@include`, which is how pam-auth-update's
/// common-account reaches them) and the `writ_approval` line of sudo.conf.
struct Gate {
    /// "pam sshd", "sudo plugin".
    var name: String
    var capability: Capability
    var managedGroup: String?
    /// The PAM control word ("required"); nil for the sudo plugin.
    var control: String?
    /// The account lines before pam_writ.so (PAM gates only), for "can anything skip it".
    var before: [String] = []
    /// Options the module or plugin refuses: it then denies everyone it gates.
    var problem: String?
    /// Whether grants limited to commands or a run-as user get through this gate: always for the
    /// plugin and logins; for sudo's PAM line only with sudo_plugin and a writ_approval line.
    var scopedGrantsPass = true
}

enum Enforcement {
    /// The PAM services doctor reads: where sudo and logins are decided on Debian.
    static let pamServices = ["sudo", "sudo-i", "sshd", "login", "su"]

    /// The account stack of one PAM service, includes expanded one level; nil when the file is
    /// missing.
    static func accountLines(service: String, pamDir: String) -> [String]? {
        guard let text = try? readText(pamDir + "/" + service) else { return nil }
        var lines: [String] = []
        for raw in text.split(separator: "\n") {
            let line = raw.trimmingCharacters()
            if line.hasPrefix("#") || line.isEmpty { continue }
            let words = pamWords(line)
            if words.first == "@include", words.count > 1 {
                let included = (try? readText(pamDir + "/" + words[1])) ?? ""
                lines += included.split(separator: "\n").map { $0.trimmingCharacters() }.filter {
                    $0.hasPrefix("account") || $0.hasPrefix("-account")
                }
            } else if words.first == "account" || words.first == "-account" {
                lines.append(line)
            }
        }
        return lines
    }

    /// A PAM line's words, keeping a bracketed control (`[success=1 default=ignore]`) as one.
    static func pamWords(_ line: String) -> [String] {
        var words: [String] = []
        var current = ""
        var depth = 0
        for ch in line {
            if ch == "[" { depth += 1 }
            if ch == "]" { depth = max(0, depth - 1) }
            if (ch == " " || ch == "\t") && depth == 0 {
                if !current.isEmpty { words.append(current) }
                current = ""
            } else {
                current.append(ch)
            }
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    static func isWritModule(_ word: String) -> Bool {
        word == "pam_writ.so" || word.hasSuffix("/pam_writ.so")
    }

    static func pamGate(service: String, lines: [String]) -> Gate? {
        guard let at = lines.firstIndex(where: { pamWords($0).count > 2 && isWritModule(pamWords($0)[2]) }) else {
            return nil
        }
        if skipped(service: service, lines: lines, at: at) { return nil }
        let words = pamWords(lines[at])
        let arguments = Array(words.dropFirst(3))
        let (capability, group, problem) = options(arguments, plugin: false)
        let sudoService = service == "sudo" || service == "sudo-i"
        let resolved = capability ?? (sudoService ? .sudo : .login)
        return Gate(
            name: "pam \(service)",
            capability: resolved,
            managedGroup: group,
            control: words[1],
            before: Array(lines[..<at]),
            problem: problem,
            scopedGrantsPass: resolved == .login || arguments.contains("sudo_plugin")
        )
    }

    /// Whether a `[success=N …] pam_succeed_if.so … service in A:B` line before pam_writ.so jumps
    /// over it for this service (the Debian package's profile skips cron, atd, sudo that way).
    static func skipped(service: String, lines: [String], at: Int) -> Bool {
        for i in 0..<at {
            let words = pamWords(lines[i])
            guard words.count > 2, words[1].hasPrefix("["), words[2].hasSuffix("pam_succeed_if.so") else { continue }
            let jump = words[1].dropFirst().dropLast().split(separator: " ").compactMap { part -> Int? in
                part.hasPrefix("success=") ? Int(part.dropFirst("success=".count)) : nil
            }.first
            guard let jump, i + jump >= at else { continue }
            let args = Array(words.dropFirst(3))
            guard let s = args.firstIndex(of: "service"), s + 2 < args.count else { continue }
            let listed: [Substring]
            switch args[s + 1] {
            case "in": listed = args[s + 2].split(separator: ":")
            case "=": listed = [Substring(args[s + 2])]
            default: continue
            }
            if listed.contains(Substring(service)) { return true }
        }
        return false
    }

    /// sudo.conf's `Plugin NAME PATH OPTIONS…` lines as sudo reads them: the keyword in any case,
    /// `#` comments. Name → options (the first line for a name wins, as in sudo).
    static func pluginLines(sudoConf text: String) -> [String: [String]] {
        var out: [String: [String]] = [:]
        for raw in text.split(separator: "\n") {
            var words: [String] = []
            for word in raw.split(whereSeparator: { $0 == " " || $0 == "\t" }) {
                if word.hasPrefix("#") { break }
                words.append(String(word))
            }
            guard words.count >= 3, words[0].lowercased() == "plugin", out[words[1]] == nil else { continue }
            out[words[1]] = Array(words.dropFirst(3))
        }
        return out
    }

    /// A line before pam_writ.so that can end the account stack, or jump past pam_writ.so, without
    /// a denial: `sufficient`, a `done` for any result (pam_unix's `new_authtok_reqd=done` lets an
    /// expired password skip everything after it), or a jump as far as pam_writ.so or beyond —
    /// except a pam_succeed_if service test that does not name this service.
    static func bypass(service: String, before lines: [String]) -> String? {
        let at = lines.count
        for (i, line) in lines.enumerated() {
            let words = pamWords(line)
            guard words.count > 2 else { continue }
            let control = words[1]
            if control == "sufficient" { return line }
            guard control.hasPrefix("[") else { continue }
            let actions = control.dropFirst().dropLast().split(separator: " ").compactMap { pair in
                pair.split(separator: "=", maxSplits: 1).last.map(String.init)
            }
            if actions.contains("done") { return line }
            let reach = actions.compactMap { Int($0) }.max() ?? 0
            guard reach > 0, i + reach >= at else { continue }
            // pam_succeed_if … service in A:B jumps for those services only.
            if words[2].hasSuffix("pam_succeed_if.so"), !skipped(service: service, lines: lines + ["x"], at: at) {
                continue
            }
            return line
        }
        return nil
    }

    /// The `writ_approval` line of sudo.conf, if sudo loads it. A writ_audit line whose options the
    /// module refuses denies every sudo but root's too: that is the gate's problem then.
    static func pluginGate(sudoConf text: String) -> Gate? {
        let lines = pluginLines(sudoConf: text)
        guard let approval = lines["writ_approval"] else { return nil }
        let (_, group, problem) = options(approval, plugin: true)
        var gateProblem = problem
        if let audit = lines["writ_audit"], gateProblem == nil, let auditProblem = options(audit, plugin: true).problem
        {
            gateProblem = "on the writ_audit line: \(auditProblem)"
        }
        return Gate(name: "sudo plugin", capability: .sudo, managedGroup: group, problem: gateProblem)
    }

    /// A line's options as the module reads them (the same parser): what doctor reports is what
    /// the module will do.
    static func options(_ words: [String], plugin: Bool) -> (Capability?, group: String?, problem: String?) {
        let (o, problem) = plugin ? ModuleOptions.parsePluginLine(words) : ModuleOptions.parse(words)
        if let problem { return (nil, nil, problem) }
        return (o.capability, o.managedGroup, nil)
    }

    /// Who one gate holds and who of them could get through, as one doctor finding.
    static func describe(
        _ gate: Gate,
        policy: Policy?,
        policyProblem: String?,
        policyPath: String,
        host: String
    ) -> (String, String) {
        if let problem = gate.problem {
            return (
                "fail",
                "its options are refused (\(problem)): every \(gate.capability.rawValue) it gates is denied — fix the line"
            )
        }
        let what = gate.capability == .sudo ? "sudo" : "login"
        let gated: [String]
        let scope: String
        switch gatedUsers(gate) {
        case .missingGroup(let group):
            return (
                "fail",
                "managed_group \(group) does not exist: every non-root \(what) is denied (fail closed) — groupadd \(group), or fix the line"
            )
        case .members(let group, let list):
            gated = list
            scope = "members of \(group)"
            if gated.isEmpty {
                return ("ok", "gates \(what) for members of \(group): it has none yet — nobody is gated by this line")
            }
        case .everyone(let listed):
            gated = listed
            // Accounts NSS does not enumerate (a directory service) and system accounts are held
            // too: the list is what this host can show, never "nobody".
            scope = "every user but root"
        }
        let shown =
            gate.managedGroup == nil
            ? "\(names(gated, empty: "no account with uid ≥ 1000 listed here")); also accounts NSS does not list"
            : names(gated)
        guard let policy else {
            return (
                "fail",
                "gates \(what) for \(scope) (\(shown)), but \(policyPath) does not load "
                    + "(\(LogText.escape(policyProblem ?? "unreadable", limit: 200))): nobody can request — "
                    + "fix it (writ policy validate)"
            )
        }
        let reach = policy.reach(
            capability: gate.capability,
            host: host,
            scopedGrantsPass: gate.scopedGrantsPass,
            membersOf: UserDirectory.members(ofGroup:)
        )
        let can = gated.filter { reach[$0] != nil }
        let cannot = gated.filter { reach[$0] == nil }
        let outside = gate.managedGroup.map { "; users outside \($0) are not gated by Writ" } ?? ""
        var text = "gates \(what) for \(scope) (\(shown))"
        if can.isEmpty && (gate.managedGroup != nil || reach.isEmpty) {
            text +=
                " and nobody but root can get a \(what) grant under \(policyPath): they are locked out — add them to a \(what) flow's requesters with an approver, or roll out to a managed group first (managed_group=)"
            return ("fail", text + outside)
        }
        let reachable = gate.managedGroup == nil ? Array(reach.keys).sorted() : can
        let flows = Set(reachable.flatMap { reach[$0] ?? [] }).sorted().joined(separator: ", ")
        text += "; can get a grant: \(names(reachable)) (flows \(flows))"
        if !cannot.isEmpty {
            text += "; cannot, so only root's writ grant add lets them in: \(names(cannot))"
            return ("warn", text + outside)
        }
        return ("ok", text + outside)
    }

    enum Gated {
        case missingGroup(String)
        case members(group: String, [String])
        /// No managed group: everyone but root; the accounts with uid ≥ 1000 NSS lists.
        case everyone(listed: [String])
    }

    static func gatedUsers(_ gate: Gate) -> Gated {
        let accounts = UserDirectory.allAccounts()
        guard let group = gate.managedGroup else {
            return .everyone(listed: accounts.filter { $0.uid >= 1000 && $0.uid != 65534 }.map(\.name))
        }
        guard UserDirectory.group(named: group) != nil else { return .missingGroup(group) }
        let uid0 = Set(accounts.filter { $0.uid == 0 }.map(\.name))
        return .members(group: group, UserDirectory.members(ofGroup: group).filter { !uid0.contains($0) })
    }

    /// Whether one user (the admin running the installer, say) is held by the gate and can get a
    /// grant through it: nil when the gate does not hold them.
    static func userFinding(_ user: String, gate: Gate, policy: Policy?, host: String) -> (String, String)? {
        guard let account = UserDirectory.user(named: user), account.uid != 0 else { return nil }
        if let group = gate.managedGroup {
            guard UserDirectory.groupNames(of: account).contains(group) else { return nil }
        }
        let what = gate.capability == .sudo ? "sudo" : "login"
        let flows =
            policy?.reach(
                capability: gate.capability,
                host: host,
                scopedGrantsPass: gate.scopedGrantsPass,
                membersOf: UserDirectory.members(ofGroup:)
            )[user] ?? []
        if flows.isEmpty {
            return (
                "fail",
                "\(user) would be gated and cannot get a \(what) grant: \(user) would lose \(what) — let \(user) request (a flow's requesters) or leave \(user) out of the managed group"
            )
        }
        return ("ok", "\(user) is gated and can get a \(what) grant (flows \(flows.joined(separator: ", ")))")
    }

    static func names(_ list: [String], empty: String = "none") -> String {
        if list.isEmpty { return empty }
        let shown = list.prefix(8).map { LogText.escape($0, limit: 32) }.joined(separator: ", ")
        return list.count > 8 ? shown + " and \(list.count - 8) more" : shown
    }
}
