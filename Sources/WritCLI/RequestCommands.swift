import ArgumentParser
import FoundationEssentials
import Glibc
import WritCore
import WritProtocol

/// `writ request sudo|login`: files a request with writd and follows it until it is decided.
struct RequestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "request",
        abstract: "Ask for a time-boxed sudo or login grant on this host.",
        discussion: """
            The request goes to the approvers of the first flow in the policy that fits (or --flow). \
            writ prints the request id at once, then waits and shows its status until it is decided; \
            Ctrl-C stops waiting and leaves the \
            request pending. Exit status: 0 approved, 1 denied, expired, cancelled or refused, 2 still \
            pending (--no-wait, or interrupted).
            """
    )

    @Argument(help: "What to ask for: sudo or login.") var capability: String
    @Option(help: "The policy flow to use (default: the first that fits).") var flow: String?
    @Option(help: "The host (standalone writd: this host only).") var host: String?
    @Option(help: "The user to run commands as (sudo).") var runas: String?
    @Option(name: .customLong("command"), help: "A command to allow, \"PATH [ARGS]\" (repeatable).")
    var commands: [String] = []
    @Option(name: .customLong("for"), parsing: .unconditional, help: "How long: 30m, 2h, 1h30m (default: the flow's).")
    var duration: String?
    @Option(help: "Why (a ticket or incident id, if the flow asks for one).") var reason: String = ""
    @Option(
        name: .customLong("field"),
        help: "NAME=VALUE the policy's conditions and hooks can read, e.g. ticket=INC-4521 (repeatable)."
    )
    var fields: [String] = []
    @Flag(name: .customLong("no-wait"), help: "Return as soon as the request is filed.") var noWait = false
    @Flag(help: "Print the request as JSON.") var json = false
    @OptionGroup var socketOptions: SocketOptions

    func run() throws {
        guard Capability(rawValue: capability) != nil else {
            throw CLIError("unknown capability \"\(LogText.escape(capability))\": use sudo or login", exitCode: 64)
        }
        var r = WireRequest(op: .request)
        r.capability = capability
        r.flow = flow
        r.host = host
        r.runas = runas
        r.commands = commands.isEmpty ? nil : commands
        r.duration = try duration.map(parseDuration)
        r.reason = reason
        if !fields.isEmpty {
            r.fields = try fields.map { text in
                guard let eq = text.firstIndex(of: "=") else {
                    throw CLIError(
                        "--field \(LogText.escape(text)) needs NAME=VALUE, e.g. --field ticket=INC-4521",
                        exitCode: 64
                    )
                }
                return RequestField(name: String(text[..<eq]), value: String(text[text.index(after: eq)...]))
            }
        }
        let client = try Daemon.connect(socketOptions.socket)
        let filed = try Daemon.call(client, r).request
        guard let filed else { throw CLIError("writd filed the request but did not describe it") }
        try follow(filed, client: client, noWait: noWait, json: json)
    }
}

func parseDuration(_ text: String) throws -> Int64 {
    do { return try DurationText.parse(text) } catch { throw CLIError(error.description, exitCode: 64) }
}

/// Shows a request's status until it is decided (or at once with `noWait`), then what the user
/// can now do. Exit status follows the outcome.
func follow(_ first: RequestView, client: WritClient, noWait: Bool, json: Bool) throws {
    var request = first
    let tty = isatty(1) != 0 && !json
    if request.state == "pending" && !noWait {
        Interrupt.install(
            "\nwrit: stopped waiting; request \(request.id) is still pending. Follow it with: writ status — cancel it with: writ cancel \(request.id)\n"
        )
        // The id goes out at once, whatever stdout is (a pipe, tee, a file): a script or a person
        // who stops waiting must still know what was filed. With --json, stdout carries only the
        // final JSON, so the line goes to stderr.
        let filed = "request \(request.id) filed: \(grantScope(request)) — waiting for \(approvalsLine(request))\n"
        _ = Array(filed.utf8).withUnsafeBytes { write(json ? 2 : 1, $0.baseAddress, $0.count) }
        while request.state == "pending" {
            if tty {
                StatusLine.show(
                    "\(Style.yellow("pending")) \(request.id): \(approvalsLine(request)) — Ctrl-C to stop waiting"
                )
            }
            usleep(500_000)
            var get = WireRequest(op: .get)
            get.id = request.id
            if let next = try Daemon.call(client, get).request { request = next }
        }
        if tty { StatusLine.clear() }
        Interrupt.restore()
    }
    if json {
        print(JSONOut.encode(request))
    } else {
        print(outcomeLine(request))
    }
    switch request.state {
    case "approved": return
    case "pending": throw ExitCode(2)
    default: throw ExitCode(1)
    }
}

func approvalsLine(_ r: RequestView) -> String {
    let left = DurationText.format(max(0, r.pendingUntil - Clock.now()))
    // With steps: the step it waits for, and who may approve that one.
    if let steps = r.steps, steps.count > 1, let i = r.currentStep, i < steps.count {
        let step = steps[i]
        let names = step.approvers.map { LogText.escape($0, limit: 64) }.joined(separator: ", ")
        var text =
            "step \(i + 1)/\(steps.count) \(LogText.escape(step.name, limit: 40)): \(step.approvals.count)/\(step.required) "
            + "approvals from \(names.isEmpty ? "nobody yet" : names)"
        if let at = step.escalatesAt { text += ", escalates in \(DurationText.format(max(0, at - Clock.now())))" }
        return text + "; expires unanswered in \(left)"
    }
    let names =
        r.approvers.isEmpty
        ? "nobody can approve it" : r.approvers.map { LogText.escape($0, limit: 64) }.joined(separator: ", ")
    return "\(r.approvals.count)/\(r.requiredApprovals) approvals from \(names); expires unanswered in \(left)"
}

/// Exactly what a request grants, for the requester and for approvers before and after they
/// approve: a command-limited request must not read like full root.
func grantScope(_ r: RequestView) -> String {
    let host = LogText.escape(r.host, limit: 64)
    let what: String
    if r.capability == "sudo" {
        let commands = r.commands.map { "only " + commandList($0) } ?? "any command"
        what = "sudo as \(LogText.escape(r.runas, limit: 32)) on \(host), \(commands)"
    } else {
        what = "login on \(host)"
    }
    if r.kind == "extend" {
        return "\(DurationText.format(r.duration)) more on grant \(r.extendsGrant ?? "?") (\(what))"
    }
    return "\(what), for \(DurationText.format(r.duration))"
}

/// Commands as one unambiguous list, never cut: `"/usr/bin/id -u", "/usr/bin/uptime"` (each
/// quoted, its own quotes escaped), so one command with arguments never reads as two.
func commandList(_ commands: [String]) -> String {
    commands.map { "\"" + LogText.escape($0, limit: 4096).replacingQuotes() + "\"" }.joined(separator: ", ")
}

extension String {
    fileprivate func replacingQuotes() -> String {
        var out = ""
        for ch in self { out += ch == "\"" ? "\\\"" : String(ch) }
        return out
    }
}

/// The WHAT column: capability, run-as user and every command (approvers decide on this).
func scopeCell(_ r: RequestView) -> String {
    let base: String
    if r.capability == "sudo" {
        let commands = r.commands.map(commandList) ?? "any command"
        base = "sudo as \(LogText.escape(r.runas, limit: 32)): \(commands)"
    } else {
        base = "login"
    }
    return r.kind == "extend" ? "extend \(r.extendsGrant ?? "?"): \(base)" : base
}

func outcomeLine(_ r: RequestView) -> String {
    switch r.state {
    case "approved":
        let by =
            r.decidedVia.map { "automatically (\(LogText.escape($0, limit: 120)))" }
            ?? r.autoRule.map { "automatically (rule \(LogText.escape($0, limit: 64)))" }
            ?? "by \(LogText.escape(r.decidedBy ?? "?", limit: 64))"
        let grant = r.grantId ?? "?"
        let verb = r.capability == "sudo" ? "you can now use sudo" : "you can now log in"
        return "\(Style.green("approved")) \(r.id) \(by): \(verb) (\(grantScope(r))) — grant \(grant)"
    case "denied":
        let by = r.decidedVia ?? r.decidedBy ?? "?"
        return
            "\(Style.red("denied")) \(r.id) by \(LogText.escape(by, limit: 120)): \(LogText.escape(r.decisionNote ?? "", limit: 200))"
    case "expired":
        return
            "\(Style.red("expired")) \(r.id): nobody answered in time — file a new request, or ask an approver directly"
    case "cancelled":
        return "cancelled \(r.id)"
    default:
        return "\(Style.yellow(r.state)) \(r.id) (\(grantScope(r))): \(approvalsLine(r)) — follow it with: writ status"
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Your grants, with the time they have left, and your requests."
    )
    @Flag(help: "Print JSON for scripts.") var json = false
    @OptionGroup var socketOptions: SocketOptions

    func run() throws {
        let client = try Daemon.connect(socketOptions.socket)
        let resp = try Daemon.call(client, WireRequest(op: .status))
        let grants = resp.grants ?? []
        let requests = resp.requests ?? []
        if json {
            print(JSONOut.encode(StatusJSON(grants: grants, requests: requests)))
            return
        }
        let now = Clock.now()
        let color = isatty(1) != 0
        if grants.isEmpty {
            print("no active grants")
        } else {
            print(
                Table.render(
                    ["GRANT", "CAP", "HOST", "RUNAS", "LEFT", "COMMANDS", "REASON"],
                    grants.map {
                        [
                            $0.id, $0.capability, $0.host, $0.runas,
                            $0.state == "pending"
                                ? "starts in \(DurationText.format($0.notBefore - now))"
                                : "\(DurationText.format(max(0, $0.expiresAt - now))) left",
                            $0.commands.map { LogText.escape($0.joined(separator: "; "), limit: 120) } ?? "any",
                            LogText.escape($0.reason, limit: 50),
                        ]
                    },
                    useColor: color
                )
            )
        }
        if !requests.isEmpty {
            print("")
            print(requestTable(requests, now: now, color: color))
        }
    }
}

/// "1/2", and the step a pending multi-step request waits for: "1/2 security".
func approvalsCell(_ r: RequestView) -> String {
    let count = "\(r.approvals.count)/\(r.requiredApprovals)"
    guard r.state == "pending", let steps = r.steps, steps.count > 1, let i = r.currentStep, i < steps.count else {
        return count
    }
    return "\(count) \(LogText.escape(steps[i].name, limit: 24))"
}

struct StatusJSON: Encodable {
    var grants: [GrantView]
    var requests: [RequestView]
}

func requestTable(_ requests: [RequestView], now: Int64, color: Bool) -> String {
    Table.render(
        ["REQUEST", "BY", "WHAT", "HOST", "FLOW", "FOR", "STATE", "APPROVALS", "WHEN", "REASON"],
        requests.map {
            [
                $0.id, LogText.escape($0.requester, limit: 32), scopeCell($0), LogText.escape($0.host, limit: 40),
                LogText.escape($0.flow, limit: 32),
                DurationText.format($0.duration), $0.state, approvalsCell($0),
                $0.state == "pending"
                    ? "expires in \(DurationText.format(max(0, $0.pendingUntil - now)))"
                    : "\(DurationText.format(max(0, now - ($0.decidedAt ?? $0.createdAt)))) ago",
                LogText.escape($0.reason, limit: 50),
            ]
        },
        useColor: color
    )
}

struct RequestsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "requests",
        abstract: "Requests you may approve (pending ones; --all: the last 7 days)."
    )
    @Flag(help: "Include decided requests of the last 7 days.") var all = false
    @Flag(help: "Print JSON for scripts.") var json = false
    @OptionGroup var socketOptions: SocketOptions

    func run() throws {
        let client = try Daemon.connect(socketOptions.socket)
        var r = WireRequest(op: .requests)
        r.pendingOnly = !all
        let requests = try Daemon.call(client, r).requests ?? []
        if json {
            print(JSONOut.encode(requests))
        } else if requests.isEmpty {
            print(all ? "no requests you may approve in the last 7 days" : "no pending requests you may approve")
        } else {
            print(requestTable(requests, now: Clock.now(), color: isatty(1) != 0))
        }
    }
}

struct ApproveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "approve", abstract: "Approve a request.")
    @Argument(help: "The request id (see: writ requests).") var id: String
    @Option(help: "A note kept in the audit log.") var comment: String = ""
    @OptionGroup var socketOptions: SocketOptions

    func run() throws {
        var r = WireRequest(op: .approve)
        r.id = id
        r.comment = comment
        let view = try Daemon.call(try Daemon.connect(socketOptions.socket), r).request
        guard let view else { return }
        let who = LogText.escape(view.requester, limit: 64)
        if view.state == "approved" {
            print("approved \(view.id): \(who) has \(grantScope(view)) (grant \(view.grantId ?? "?"))")
        } else {
            print("approval recorded for \(view.id) (\(who) asks for \(grantScope(view))): \(approvalsLine(view))")
        }
    }
}

struct DenyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "deny", abstract: "Deny a request.")
    @Argument(help: "The request id.") var id: String
    @Option(help: "Why (shown to the requester, kept in the audit log).") var reason: String
    @OptionGroup var socketOptions: SocketOptions

    func run() throws {
        var r = WireRequest(op: .deny)
        r.id = id
        r.reason = reason
        let view = try Daemon.call(try Daemon.connect(socketOptions.socket), r).request
        print("denied \(view?.id ?? id)")
    }
}

struct CancelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cancel", abstract: "Cancel your pending request.")
    @Argument(help: "The request id.") var id: String
    @OptionGroup var socketOptions: SocketOptions

    func run() throws {
        var r = WireRequest(op: .cancel)
        r.id = id
        _ = try Daemon.call(try Daemon.connect(socketOptions.socket), r)
        print("cancelled \(id)")
    }
}

struct RevokeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "End a grant now (yours, one you approved, or any as root); its sessions are closed."
    )
    @Argument(help: "The grant id (see: writ status).") var id: String
    @Option(help: "Why (kept in the audit log).") var reason: String = ""
    @OptionGroup var socketOptions: SocketOptions

    func run() throws {
        var r = WireRequest(op: .revoke)
        r.id = id
        r.reason = reason
        let g = try Daemon.call(try Daemon.connect(socketOptions.socket), r).grant
        print(
            "revoked \(id) (\(g?.capability ?? "?") for \(g?.user ?? "?")); sessions opened under it are being closed"
        )
    }
}

struct ExtendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extend",
        abstract: "Ask for more time on an active grant, through the flow that issued it."
    )
    @Argument(help: "The grant id (see: writ status).") var id: String
    @Option(name: .customLong("for"), parsing: .unconditional, help: "How much more time: 30m, 1h.") var duration:
        String
    @Option(help: "Why.") var reason: String = ""
    @Flag(name: .customLong("no-wait"), help: "Return as soon as the request is filed.") var noWait = false
    @Flag(help: "Print the request as JSON.") var json = false
    @OptionGroup var socketOptions: SocketOptions

    func run() throws {
        var r = WireRequest(op: .extend)
        r.id = id
        r.duration = try parseDuration(duration)
        r.reason = reason
        let client = try Daemon.connect(socketOptions.socket)
        guard let filed = try Daemon.call(client, r).request else { return }
        try follow(filed, client: client, noWait: noWait, json: json)
    }
}

enum JSONOut {
    static func encode<T: Encodable>(_ value: T) -> String {
        let e = Wire.encoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? e.encode(value) else { return "null" }
        return String(decoding: data, as: UTF8.self)
    }
}

enum Clock {
    static func now() -> Int64 { Int64(time(nil)) }
}

/// Colour only on a terminal, and never when NO_COLOR is set.
enum Style {
    static let enabled = isatty(1) != 0 && getenv("NO_COLOR") == nil
    static func green(_ s: String) -> String { enabled ? "\u{1B}[32m\(s)\u{1B}[0m" : s }
    static func red(_ s: String) -> String { enabled ? "\u{1B}[31m\(s)\u{1B}[0m" : s }
    static func yellow(_ s: String) -> String { enabled ? "\u{1B}[33m\(s)\u{1B}[0m" : s }
}

/// The live status line (terminal only): rewritten in place.
enum StatusLine {
    static func show(_ s: String) {
        let line = "\r\u{1B}[2K" + s
        _ = Array(line.utf8).withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
    }
    static func clear() { show("") }
}

/// Ctrl-C while waiting: say how to follow the request, leave it pending, exit 2.
enum Interrupt {
    nonisolated(unsafe) static var message: [UInt8] = []

    static func install(_ text: String) {
        message = Array(text.utf8)
        signal(SIGINT) { _ in
            Interrupt.message.withUnsafeBytes { _ = write(2, $0.baseAddress, $0.count) }
            _exit(2)
        }
    }

    static func restore() { signal(SIGINT, SIG_DFL) }
}
