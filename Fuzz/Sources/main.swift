// writ-fuzz: one coverage-guided fuzzer per parser of what an attacker or a careless admin
// writes. `writ-fuzz TARGET [libFuzzer options] [CORPUS…]`; scripts/fuzz.sh builds it with
// libFuzzer and AddressSanitizer and runs every target. A plain build (no libFuzzer) replays the
// files and directories named once each: the corpus as a regression run.
//
// A target returns normally for every input; a crash, a trap, a leak of a sanitizer's notice or
// a broken property (`must`) is a finding. Its input goes to Fuzz/Corpus/TARGET once fixed.
import CWritFuzz
import FoundationEssentials
import NIOHTTP1
import WritAudit
import WritCore
import WritExpr
import WritHooks
import WritIntegrations
import WritPolicy
import WritProtocol
import WritSlack
import WritStore

#if canImport(Glibc)
import Glibc
#endif

/// One line on standard error.
func complain(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

/// A property every input must keep; a broken one stops the fuzzer with the input saved.
func must(_ condition: Bool, _ what: @autoclosure () -> String) {
    if !condition {
        complain("writ-fuzz: property broken: \(what())")
        abort()
    }
}

/// The input as text: parsers of files and network bodies get the bytes as UTF-8, repaired.
func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

/// The input cut at its first `separator`: (before, after).
func cut(_ bytes: [UInt8], at separator: UInt8 = 0x0a) -> ([UInt8], [UInt8]) {
    guard let i = bytes.firstIndex(of: separator) else { return (bytes, []) }
    return (Array(bytes[..<i]), Array(bytes[(i + 1)...]))
}

enum Targets {
    /// writd's socket: the input as a byte stream through the server's FrameReader, whole and in
    /// chunks (sizes from the input itself), which must give the same frames; each frame's body,
    /// and the whole input, decoded as a request (the server's own decoder), which must survive a
    /// round trip through the encoder unchanged.
    static func wire(_ bytes: [UInt8]) {
        let whole = frames(bytes, chunks: [bytes.count])
        let chunked = frames(bytes, chunks: bytes.prefix(8).map { Int($0 % 7) + 1 })
        // The same frames however the bytes arrive, unless one way held too much at once (the
        // server cuts that client off).
        if whole.end != "overfull" && chunked.end != "overfull" {
            must(chunked.frames == whole.frames && chunked.end == whole.end, "chunking changed the frames")
        }
        for body in whole.frames.prefix(4) { request(body) }
        request(bytes)
    }

    /// The frames `reader` yields for `bytes` fed in pieces of `chunks` sizes (cycled), and
    /// where it stopped: at the end, at a frame over the limit, or at an overfull buffer.
    static func frames(_ bytes: [UInt8], chunks: [Int]) -> (frames: [[UInt8]], end: String) {
        var reader = FrameReader(maxBody: 1024)
        var out: [[UInt8]] = []
        var offset = 0
        var turn = 0
        while offset < bytes.count {
            let size = max(1, chunks[turn % chunks.count])
            turn += 1
            let piece = bytes[offset..<min(bytes.count, offset + size)]
            offset += piece.count
            guard reader.append(piece) else { return (out, "overfull") }
            drain: while true {
                switch reader.next() {
                case .frame(let body): out.append(body)
                case .needMore: break drain
                case .tooLarge(let n): return (out, "too large \(n)")
                }
            }
        }
        return (out, "end")
    }

    static func request(_ bytes: [UInt8]) {
        guard let request = Wire.request(from: bytes) else { return }
        guard let encoded = try? Wire.encoder().encode(request) else {
            must(false, "a decoded request does not encode")
            return
        }
        let again = Wire.request(from: Array(encoded))
        must(again == request, "a request changed on a round trip: \(request) → \(String(describing: again))")
    }

    static let now: Int64 = 1_780_000_000

    /// The policy file, then every flow decided for a few requests; the tests file and
    /// integrations.yaml parsers on the same text.
    static func policy(_ bytes: [UInt8]) {
        _ = try? PolicyCases.parse(text(bytes), file: "fuzz.tests.yaml")
        _ = try? IntegrationSettings.parse(text(bytes), file: "integrations.yaml")
        guard let policy = try? Policy.parse(bytes: bytes, file: "policy.yaml") else { return }
        for flow in policy.flows.prefix(8) {
            // As a requester the flow names (and as root), on a host it covers, for what it allows,
            // so evaluation reaches its rules and steps.
            let named = flow.requesters.users.first { $0 != "*" } ?? "alice"
            let host = (flow.hosts.first ?? "web-1").replacingOccurrences(of: "*", with: "x")
            let commands =
                flow.commands.map { Array($0.prefix(1)) }
                ?? (flow.capability == .sudo ? ["/usr/bin/systemctl restart nginx"] : nil)
            for user in [named, "root"] {
                let input = RequestInput(
                    user: user,
                    unixGroups: Set(flow.requesters.unixGroups.prefix(2) + ["ops"]),
                    capability: flow.capability,
                    flow: flow.name,
                    host: host,
                    runas: flow.runas,
                    commands: commands,
                    duration: 1800,
                    reason: "INC-4521 disk full",
                    now: now,
                    fields: ["ticket": "INC-4521"],
                    context: ["on_call": .bool(true), "oncall": .map(["level": .int(1)])]
                )
                _ = policy.evaluate(input)
            }
        }
    }

    /// A `when:` condition (up to the first NUL: it may span lines) compiled against the policy's
    /// declarations, then evaluated with the rest of the input as the reason and, when it is a
    /// JSON object, as `context`.
    static func condition(_ bytes: [UInt8]) {
        let (source, rest) = cut(bytes, at: 0)
        guard let expression = try? Expression.compile(text(source), declarations: Conditions.declarations) else {
            return
        }
        // The variables as the policy builds them for a request (Conditions.variables), with
        // `context` as writd fills it from JSON (Value(json)) plus an on-call time.
        var context: [String: Value] = ["checked_at": .timestamp(now)]
        if case .success(.object(let object)) = JSONValue.parse(rest) {
            context.merge(object.mapValues(Value.init)) { _, new in new }
        }
        guard let flow = conditionPolicy?.flows.first else { return }
        let input = RequestInput(
            user: "alice",
            unixGroups: ["ops"],
            capability: .sudo,
            host: "web-1",
            reason: text(rest),
            now: now,
            fields: ["ticket": text(rest)],
            context: context
        )
        let variables = Conditions.variables(
            input,
            flow: flow,
            duration: 1800,
            runas: "root",
            commands: [text(rest)],
            utcOffset: 3600
        )
        _ = expression.evaluate(variables)
    }

    /// A policy with one sudo flow, for `Conditions.variables`.
    static let conditionPolicy = try? Policy.parse(
        """
        version: 1
        flows:
          - name: ops
            capability: sudo
            requesters: {users: [alice]}
            approvers: {users: [bob]}
        """,
        file: "fuzz.yaml"
    )

    /// The regular expression compiler (up to the first NUL) and its matcher (the rest), within
    /// the work `reason_pattern` gets (Policy.reasonPatternWork), on at most a reason's length.
    static func regex(_ bytes: [UInt8]) {
        let (pattern, subject) = cut(bytes, at: 0)
        guard let regex = try? LinearRegex(text(pattern)) else { return }
        let reason = String(String.UnicodeScalarView(text(subject).unicodeScalars.prefix(Policy.reasonLimit)))
        _ = regex.firstMatch(in: reason, workLimit: Policy.reasonPatternWork)
    }

    /// A hook's standard output.
    static func hook(_ bytes: [UInt8]) {
        _ = HookDecision.parse(bytes)
        if case .success(let value) = JSONValue.parse(bytes) {
            // What writd writes to Slack (SlackWireFormat.json) is JSON again.
            let written = SlackWireFormat.json(value)
            must((try? JSONValue.parse(Array(written.utf8)).get()) != nil, "Slack's JSON of a value does not parse")
        }
    }

    static let secret = "8f742231b10e8888abcd99yyyzzz85a5"

    /// Slack: an HTTP-mode request to one of the three routes, signed correctly or with the
    /// input's own headers, through the receiver's whole decision; a Socket Mode frame; a form.
    static func slack(_ bytes: [UInt8]) {
        guard let mode = bytes.first else { return }
        let rest = Array(bytes.dropFirst())
        let route = SlackHTTPRoute.allCases[Int(mode % 3)]
        var headers = HTTPHeaders()
        let body: [UInt8]
        if mode & 0x80 == 0 {
            // Signed with the secret, so the parsers behind the signature are reached.
            body = rest
            let timestamp = String(now - Int64(mode & 0x3f))
            headers.add(name: "X-Slack-Request-Timestamp", value: timestamp)
            headers.add(
                name: "X-Slack-Signature",
                value: SlackSignature.sign(secret: secret, timestamp: timestamp, body: body)
            )
        } else {
            // The input's own headers (first two lines), for the signature check itself.
            let (signature, after) = cut(rest)
            let (timestamp, tail) = cut(after)
            headers.add(name: "X-Slack-Signature", value: text(signature))
            headers.add(name: "X-Slack-Request-Timestamp", value: text(timestamp))
            body = tail
        }
        let replays = SlackReplayGuard(capacity: 4)
        func decide() -> SlackHTTPDecision {
            SlackHTTPDecision.decide(
                route: route,
                headers: headers,
                body: body,
                secret: secret,
                now: now,
                replays: replays
            )
        }
        let first = decide()
        if first.status == .ok && first.refusal == nil {
            // The same signed request again is a replay: answered, and never passed on twice.
            must(decide().inbound == nil, "a replayed Slack request was passed on")
        }
        if case .envelope(let envelope) = SocketModeMessage.parse(rest) { _ = envelope.inbound }
        _ = SlackWireFormat.parseForm(rest)
    }

    /// PagerDuty's answers: each page type, every on-call entry converted; the API URL parser
    /// on the first line.
    static func pagerduty(_ bytes: [UInt8]) {
        let (url, _) = cut(bytes)
        _ = PagerDutyURL.base(text(url))
        _ = try? PagerDutyWire.decode(PagerDutyWire.UsersPage.self, path: "/users", body: bytes)
        _ = try? PagerDutyWire.decode(PagerDutyWire.Abilities.self, path: "/abilities", body: bytes)
        _ = try? PagerDutyWire.decode(PagerDutyWire.ErrorBody.self, path: "/oncalls", body: bytes)
        if let page = try? PagerDutyWire.decode(PagerDutyWire.OnCallsPage.self, path: "/oncalls", body: bytes) {
            for (index, entry) in page.oncalls.prefix(100).enumerated() {
                _ = try? PagerDutyClient.onCall(entry, at: index)
            }
        }
    }

    /// The audit verifier over the input's lines (as the log reader splits them: the newline
    /// ends a record), and the field reader `writ audit` filters with.
    static func audit(_ bytes: [UInt8]) {
        var lines = bytes.split(separator: 0x0a, omittingEmptySubsequences: false).map { text(Array($0)) }
        if bytes.last == 0x0a { lines.removeLast() }
        _ = AuditChain.verify(lines)
        _ = AuditChain.verify(lines, after: (seq: 3, hash: String(repeating: "0", count: 64)))
        for line in lines.prefix(16) {
            _ = AuditLine.field("actor", in: line)
            _ = AuditLine.field("seq", in: line)
        }
    }

    /// WritCore's small languages: durations, command patterns and lists, globs, host names,
    /// e-mail addresses, the sudo environment check; module options (PAM and sudo.conf lines).
    static func core(_ bytes: [UInt8]) {
        let (first, rest) = cut(bytes)
        let line = text(first)
        _ = try? DurationText.parse(line)
        _ = try? CommandPattern(parsing: line)
        _ = try? CommandList.decode(text(rest))
        _ = Glob.matches(line, text(rest))
        _ = HostIdentity(nodename: text(rest)).matches(line)
        if let folded = EmailAddress.folded(line) {
            // Folding is ASCII only (a look-alike never maps onto another address) and settles.
            must(folded.utf8.allSatisfy { $0 < 0x80 }, "a folded address holds non-ASCII bytes")
            must(EmailAddress.folded(folded) == folded, "folding an address twice changes it")
        }

        let words = text(rest).split(separator: " ").map(String.init)
        _ = ModuleOptions.parse(words)
        _ = ModuleOptions.parsePluginLine(words)
    }

    static func pam(_ bytes: [UInt8]) { _ = bytes.withUnsafeBufferPointer { writ_fuzz_pam($0.baseAddress, $0.count) } }

    /// The grant store the PAM and sudo targets decide against (only inside scripts/fuzz.sh's
    /// namespace, where /var/lib is a tmpfs): grants for daemon, bin and sys — unlimited sudo,
    /// command-limited sudo, login, and an expired and a revoked one — so the decision is reached.
    static func seedStore() {
        let path = StoreFile.defaultPath
        guard access(path, F_OK) != 0 else { return }
        mkdir("/var/lib/writ", 0o700)
        func uid(_ name: String) -> UInt32 { getpwnam(name).map { UInt32($0.pointee.pw_uid) } ?? 65_534 }
        let t = Int64(time(nil))
        let year: Int64 = 365 * 86_400
        func grant(
            _ user: String,
            _ capability: Capability,
            commands: [String]? = nil,
            ends: Int64 = t + 10 * year
        )
            -> Grant
        {
            Grant(
                id: GrantID.generate(),
                user: user,
                uid: uid(user),
                capability: capability,
                commands: commands.map { $0.compactMap { try? CommandPattern(parsing: $0) } },
                notBefore: t - 60,
                expiresAt: ends,
                reason: "fuzz",
                approvedBy: "root",
                createdAt: t - 60
            )
        }
        do {
            let store = try GrantStore.create(path: path)
            try store.addAll([
                grant("daemon", .sudo), grant("daemon", .login),
                grant("bin", .sudo, commands: ["/usr/bin/systemctl restart nginx", "/usr/bin/id *", "/bin/true"]),
                grant("sys", .login), grant("sys", .sudo, ends: t - 1),
            ])
            var revoked = grant("postgres", .sudo)
            revoked.revokedAt = t - 10
            revoked.revokedBy = "root"
            try store.add(revoked)
        } catch {
            complain("writ-fuzz: could not seed \(path): \(error)")
            exit(2)
        }
    }
    static func sudo(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBufferPointer { writ_fuzz_sudo($0.baseAddress, $0.count) }
    }

    static let all: [String: @Sendable ([UInt8]) -> Void] = [
        "wire": wire, "policy": policy, "condition": condition, "regex": regex, "hook": hook, "slack": slack,
        "pagerduty": pagerduty, "audit": audit, "core": core, "pam": pam, "sudo": sudo,
    ]
}

// MARK: - main

nonisolated(unsafe) var selected: ([UInt8]) -> Void = { _ in }

// Not CommandLine: WritModule's host.c brings the modules' private environ (an empty one), and
// the Swift runtime finds argv through environ. The C side keeps what main was given.
let arguments: [String] = {
    var count: Int32 = 0
    guard let vector = writ_fuzz_arguments(&count) else { return [] }
    return (0..<Int(count)).compactMap { vector[$0].map { String(cString: $0) } }
}()
// The target is the first argument, or the program's name after "writ-fuzz-" (scripts/fuzz.sh
// runs it through such symlinks: libFuzzer re-executes argv[0] with its own options to merge).
let invokedAs = arguments.first.map { $0.split(separator: "/").last.map(String.init) ?? $0 } ?? ""
let named = invokedAs.hasPrefix("writ-fuzz-") ? String(invokedAs.dropFirst("writ-fuzz-".count)) : nil
let targetName = named ?? (arguments.count >= 2 ? arguments[1] : "")
guard let target = Targets.all[targetName] else {
    complain("usage: writ-fuzz TARGET [libFuzzer options] [CORPUS…]")
    complain("targets: \(Targets.all.keys.sorted().joined(separator: ", "))")
    exit(2)
}
if ["pam", "sudo"].contains(targetName) && writ_fuzz_sandboxed() == 0 {
    complain(
        "writ-fuzz: the \(targetName) target reports to writd and reads the grant store: run it through "
            + "scripts/fuzz.sh (a private mount namespace with an empty /run and a tmpfs on /var/lib)"
    )
    exit(2)
}
if ["pam", "sudo"].contains(targetName) { Targets.seedStore() }
selected = target

// libFuzzer sees the program name and its own options, not the target name.
let driverArguments = named != nil ? arguments : [arguments[0]] + arguments.dropFirst(2)
var cArguments: [UnsafeMutablePointer<CChar>?] = driverArguments.map { strdup($0) } + [nil]
var argc = Int32(driverArguments.count)
let status = cArguments.withUnsafeMutableBufferPointer { buffer -> Int32 in
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = buffer.baseAddress
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        selected(size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
        return 0
    }
}
exit(status)
