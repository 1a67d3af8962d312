import ArgumentParser
import CWritSystem
import FoundationEssentials
import Glibc
import WritCore
import WritPolicy
import WritProtocol
import WritStore

/// `writ doctor`: what would lock people out or let them in, each finding with what to do.
struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check this host's Writ set-up: PAM and sudo wiring, files, writd, policy, clock.",
        discussion:
            "Exit status: 0 nothing failed (warnings allowed), 1 at least one check failed. Run as root for every check."
    )
    @Option(help: "The policy file.") var policy = "/etc/writ/policy.yaml"
    @Option(help: "The PAM configuration directory.") var pamDir = "/etc/pam.d"
    @Option(help: "sudo's front-end configuration.") var sudoConf = "/etc/sudo.conf"
    @Option(help: "The installed PAM module.") var module = "/usr/lib/x86_64-linux-gnu/security/pam_writ.so"
    @Flag(help: "Print the findings as JSON.") var json = false
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

        // The PAM stacks: is the account check there, and can nothing before it skip it?
        var wired = 0
        for service in ["sudo", "sudo-i", "sshd", "login"] {
            let path = pamDir + "/" + service
            guard let text = try? readText(path) else { continue }
            let account = text.split(separator: "\n").map { $0.trimmingCharacters() }.filter {
                !$0.hasPrefix("#") && ($0.hasPrefix("account") || $0.hasPrefix("@include"))
            }
            guard let at = account.firstIndex(where: { $0.contains("pam_writ.so") }) else {
                add(
                    "warn",
                    "pam \(service)",
                    "no pam_writ.so account line: \(service) is not gated by Writ — add one (see pam.d/\(service) in the Writ source)"
                )
                continue
            }
            let line = account[at].split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            let control = line.count > 1 ? line[1] : ""
            wired += 1
            if control != "required" && control != "requisite" {
                add(
                    "fail",
                    "pam \(service)",
                    "pam_writ.so is '\(control)' in the account stack: a denial would not stop \(service) — make it 'required'"
                )
            } else if let skip = account[..<at].first(where: {
                $0.contains("sufficient") || $0.contains("success=done")
            }) {
                add(
                    "fail",
                    "pam \(service)",
                    "'\(skip)' comes before pam_writ.so and can let users in without a grant — move pam_writ.so above it"
                )
            } else {
                add("ok", "pam \(service)", "pam_writ.so is required in the account stack")
            }
            if service.hasPrefix("sudo") && !text.contains("session") { continue }
            if !text.split(separator: "\n").contains(where: { $0.hasPrefix("session") && $0.contains("pam_writ.so") }) {
                add(
                    "warn",
                    "pam \(service) session",
                    "no pam_writ.so session line: sessions opened under a grant cannot be ended at expiry — add 'session optional pam_writ.so …'"
                )
            }
        }
        if wired == 0 { add("warn", "pam", "no PAM service uses pam_writ.so yet: nothing is enforced") }

        // sudo.conf: the approval plugin, if configured, must be the installed one.
        if let conf = try? readText(sudoConf) {
            let plugins = conf.split(separator: "\n").filter { $0.hasPrefix("Plugin") }
            if plugins.contains(where: { $0.contains("writ_approval") }) {
                add("ok", "sudo.conf", "writ_approval is loaded (runas and command scopes are enforced)")
                if !plugins.contains(where: { $0.contains("writ_audit") }) {
                    add(
                        "warn",
                        "sudo.conf",
                        "writ_audit is not loaded: sudo sessions are not reported to writd — add 'Plugin writ_audit sudo_writ.so'"
                    )
                }
            } else {
                add(
                    "warn",
                    "sudo.conf",
                    "writ_approval is not loaded: command-limited grants cannot be used through the PAM module alone"
                )
            }
        }

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
            add("fail", "writd", "\(error) — restart it: systemctl restart writd")
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
                    "writd has no policy: requests are refused — fix \(d.policyPath) and run: systemctl reload writd"
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
