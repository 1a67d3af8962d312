import ArgumentParser
import CWritSystem
import FoundationEssentials
import Glibc
import WritCore
import WritPolicy
import WritProcesses
import WritProtocol
import WritStore

/// `writ doctor`: what would lock people out or let them in, each finding with what to do.
struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check this host's Writ set-up: who is gated, PAM and sudo wiring, files, writd, policy, clock.",
        discussion:
            "Exit status: 0 nothing failed (warnings allowed), 1 at least one check failed. Run as root for every check."
    )
    @Option(help: "The policy file.") var policy = "/etc/writ/policy.yaml"
    @Option(help: "The PAM configuration directory.") var pamDir = "/etc/pam.d"
    @Option(help: "sudo's front-end configuration.") var sudoConf = "/etc/sudo.conf"
    @Option(help: "The installed PAM module.") var module = "/usr/lib/x86_64-linux-gnu/security/pam_writ.so"
    @Flag(help: "Print the findings as JSON.") var json = false
    @Flag(
        name: .customLong("enforcement"),
        help: "Only what is enforced and who is gated (exit 1 when a gate would lock out everyone it gates)."
    )
    var enforcementOnly = false
    @Option(
        name: .customLong("for-user"),
        help: "Also say whether this user is gated and can get a grant (FAIL when gated and cannot)."
    )
    var forUser: String?
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var socketOptions: SocketOptions

    struct Finding: Encodable {
        var level: String  // ok | warn | fail
        var check: String
        var detail: String
    }

    func run() throws {
        var findings: [Finding] = []
        func add(_ level: String, _ check: String, _ detail: String) {
            findings.append(Finding(level: level, check: check, detail: detail))
        }

        enforcementFindings(add)
        if enforcementOnly { return try report(findings) }

        // Module files: root-owned and not writable by others, or anyone could become root.
        for path in [module, "/usr/libexec/sudo/sudo_writ.so"] {
            var st = stat()
            if stat(path, &st) != 0 {
                add(path == module ? "fail" : "warn", "file \(path)", "missing — run scripts/install.sh")
            } else if st.st_uid != 0 || st.st_mode & 0o022 != 0 {
                add(
                    "fail",
                    "file \(path)",
                    "owned by uid \(st.st_uid), mode \(String(st.st_mode & 0o7777, radix: 8)): anyone who can change it can become root — chown root:root and chmod 0644"
                )
            } else {
                add("ok", "file \(path)", "root-owned, not writable by others")
            }
        }

        // The store, checked the way the modules check it.
        if getuid() == 0 {
            do {
                _ = try GrantReader(path: storeOptions.store)
                add("ok", "store", "\(storeOptions.store) passes the modules' checks")
            } catch {
                add(
                    "fail",
                    "store",
                    "\(error.description) — every managed sudo and login is denied until this is fixed"
                )
            }
        } else {
            add("warn", "store", "run writ doctor as root to check \(storeOptions.store)")
        }

        // writd.
        var daemon: DaemonView? = nil
        do {
            let client = try WritClient(socketPath: socketOptions.socket, timeoutSeconds: 5)
            daemon = try client.call(WireRequest(op: .ping)).daemon
        } catch let e as WritClient.ConnectError {
            add(
                "fail",
                "writd",
                "\(e.description) — grants still work, but nothing expires on time, sessions are not ended and requests cannot be made"
            )
        } catch {
            add("fail", "writd", "\(error) — \(DaemonControl.hint("restart"))")
        }
        if let d = daemon {
            add(
                "ok",
                "writd",
                "running (pid \(d.pid), version \(d.version)), \(d.activeGrants) watched grant(s), \(d.pendingRequests) pending request(s)"
            )
            if d.policyVersion.isEmpty {
                add(
                    "fail",
                    "policy (writd)",
                    "writd has no policy: requests are refused — fix \(d.policyPath), then \(DaemonControl.command("reload"))"
                )
            } else if let err = d.policyError {
                add(
                    "warn",
                    "policy (writd)",
                    "the last reload failed, writd keeps policy \(d.policyVersion.prefix(12)): \(LogText.escape(String(err.split(separator: "\n").first ?? ""), limit: 300))"
                )
            } else {
                add("ok", "policy (writd)", "policy \(d.policyVersion.prefix(12)) in force")
            }
            // Root sees the integrations: whether each is configured, and whether it answered.
            for line in d.integrations ?? [] {
                let bad = ["not loaded", "unreachable", "failed", "stopped", " off"].contains { line.contains($0) }
                let level = bad ? "fail" : line.hasPrefix("slack outbox:") ? "warn" : "ok"
                add(level, "integrations", LogText.escape(line, limit: 300))
            }
        }

        // The policy file on disk (may differ from what writd has loaded).
        do {
            let p = try Policy.load(path: policy)
            add("ok", "policy file", "\(policy): valid, \(p.flows.count) flow(s)")
        } catch {
            add(
                "fail",
                "policy file",
                "\(error.issues.first?.description ?? "invalid") — check with: writ policy validate \(policy)"
            )
        }

        if SyslogSocket.isListening() {
            add("ok", "syslog", "\(SyslogSocket.path) receives authpriv lines and the audit head hashes")
        } else {
            add("warn", "syslog", SyslogSocket.missing)
        }

        // The clock: grants end at a UTC second, so a wrong clock moves every expiry.
        if writ_clock_unsynchronised() != 0 {
            add(
                "warn",
                "clock",
                "the system clock is not synchronised (NTP): expiries are only as right as the clock — enable systemd-timesyncd or chrony"
            )
        } else {
            add("ok", "clock", "synchronised")
        }

        // Root is never restricted by pam_writ.so (uid 0 rule); check root still has a way in.
        if getuid() == 0, let shadow = try? readText("/etc/shadow"),
            let line = shadow.split(separator: "\n").first(where: { $0.hasPrefix("root:") })
        {
            let hash = line.split(separator: ":", omittingEmptySubsequences: false).dropFirst().first ?? ""
            let keys = access("/root/.ssh/authorized_keys", R_OK) == 0
            if (hash.hasPrefix("!") || hash.hasPrefix("*")) && !keys {
                add(
                    "warn",
                    "root access",
                    "root has no password and no SSH key: if sudo breaks, only the console's recovery mode gets in — keep a break-glass path"
                )
            } else {
                add("ok", "root access", "pam_writ.so never denies uid 0, and root has a password or an SSH key")
            }
        }

        try report(findings)
    }

    func report(_ findings: [Finding]) throws {
        if json {
            print(JSONOut.encode(findings))
        } else {
            let color = isatty(1) != 0
            for f in findings {
                let tag =
                    switch f.level {
                    case "ok": Style.green("ok  ")
                    case "warn": Style.yellow("warn")
                    default: Style.red("FAIL")
                    }
                print("\(color ? tag : f.level.uppercased().padding(4))  \(f.check.padding(22))  \(f.detail)")
            }
        }
        if findings.contains(where: { $0.level == "fail" }) { throw ExitCode(1) }
    }
}

func readText(_ path: String) throws -> String {
    guard let f = fopen(path, "r") else { throw CLIError("cannot read \(path)") }
    defer { fclose(f) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&buf, 1, buf.count, f)
        if n == 0 { break }
        out += buf[0..<n]
        if out.count > 4 << 20 { break }
    }
    return String(decoding: out, as: UTF8.self)
}

extension StringProtocol {
    func trimmingCharacters() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s = s.dropFirst() }
        while let l = s.last, l.isWhitespace { s = s.dropLast() }
        return String(s)
    }

    func padding(_ width: Int) -> String {
        count >= width ? String(self) : String(self) + String(repeating: " ", count: width - count)
    }
}

extension DoctorCommand {
    /// What is enforced, for whom, and who of them can get through: one finding per gate (a PAM
    /// account line, the sudo plugin), plus the wiring faults that would let users skip one.
    func enforcementFindings(_ add: (String, String, String) -> Void) {
        var gates: [Gate] = []
        for service in Enforcement.pamServices {
            guard let lines = Enforcement.accountLines(service: service, pamDir: pamDir) else { continue }
            guard let gate = Enforcement.pamGate(service: service, lines: lines) else {
                if service != "su" {
                    add("ok", "pam \(service)", "not gated by Writ (no pam_writ.so account line applies to it)")
                }
                continue
            }
            gates.append(gate)
            if let control = gate.control, control != "required" && control != "requisite" {
                add(
                    "fail",
                    gate.name,
                    "pam_writ.so is '\(control)' in the account stack: a denial would not stop \(service) — make it 'required'"
                )
            } else if let skip = Enforcement.bypass(service: service, before: gate.before) {
                add(
                    "fail",
                    gate.name,
                    "'\(skip)' comes before pam_writ.so and can let users in without a grant — move pam_writ.so above it"
                )
            }
            sessionFinding(service: service, add)
        }
        if let conf = try? readText(sudoConf) {
            if let gate = Enforcement.pluginGate(sudoConf: conf) {
                // The PAM line leaves scopes to the plugin only for users the plugin gates too.
                for i in gates.indices where gates[i].capability == .sudo && gates[i].scopedGrantsPass {
                    if gates[i].managedGroup != gate.managedGroup && gate.managedGroup != nil {
                        add(
                            "warn",
                            gates[i].name,
                            "sudo_plugin with managed_group=\(gates[i].managedGroup ?? "(none)") but writ_approval has managed_group=\(gate.managedGroup ?? "(none)"): command-limited grants of users outside the plugin's group are refused here — use the same group on both lines"
                        )
                    }
                }
                gates.append(gate)
                if Enforcement.pluginLines(sudoConf: conf)["writ_audit"] == nil {
                    add(
                        "warn",
                        "sudo.conf",
                        "writ_audit is not loaded: sudo sessions are not reported to writd — add 'Plugin writ_audit sudo_writ.so'"
                    )
                }
            } else if gates.contains(where: { $0.capability == .sudo }) {
                for i in gates.indices where gates[i].capability == .sudo { gates[i].scopedGrantsPass = false }
                add(
                    "warn",
                    "sudo.conf",
                    "writ_approval is not loaded: command-limited grants cannot be used through the PAM module alone"
                )
            }
        }
        guard !gates.isEmpty else {
            add(
                "warn",
                "enforcement",
                "nothing is enforced: no PAM service and no sudo plugin uses Writ — sudo and logins work as before for everyone"
            )
            return
        }
        var loaded: Policy? = nil
        var problem: String? = nil
        do { loaded = try Policy.load(path: policy) } catch { problem = error.issues.first?.description ?? "invalid" }
        let host = HostName.current()
        for gate in gates {
            let (level, text) = Enforcement.describe(
                gate,
                policy: loaded,
                policyProblem: problem,
                policyPath: policy,
                host: host
            )
            add(level, gate.name, text)
            if let user = forUser, !user.isEmpty,
                let (level, text) = Enforcement.userFinding(user, gate: gate, policy: loaded, host: host)
            {
                add(level, gate.name, text)
            }
        }
    }

    func sessionFinding(service: String, _ add: (String, String, String) -> Void) {
        guard let text = try? readText(pamDir + "/" + service) else { return }
        if service.hasPrefix("sudo") && !text.contains("session") { return }
        if !text.split(separator: "\n").contains(where: { $0.hasPrefix("session") && $0.contains("pam_writ.so") }) {
            add(
                "warn",
                "pam \(service) session",
                "no pam_writ.so session line: sessions opened under a grant cannot be ended at expiry — add 'session optional pam_writ.so …'"
            )
        }
    }
}
