import ArgumentParser
import Glibc
import WritAudit
import WritCore
import WritExpr
import WritProtocol

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Show or check the hash-chained audit log.",
        subcommands: [Show.self, Verify.self, Rotate.self],
        defaultSubcommand: Show.self
    )

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show",
            abstract: "Print audit records (root: all; others: the records about them)."
        )
        @Option(help: "Only records newer than this: a duration (2h, 1d) or UTC seconds.") var since: String?
        @Option(help: "Only records about this user (root).") var user: String?
        @Flag(help: "Print the raw JSON lines.") var json = false
        @OptionGroup var socketOptions: SocketOptions

        func run() throws {
            var r = WireRequest(op: .audit)
            r.user = user
            if let since {
                if let epoch = Int64(since) {
                    r.since = epoch
                } else {
                    r.since = Clock.now() - (try parseDuration(since))
                }
            }
            let response = try Daemon.call(try Daemon.connect(socketOptions.socket), r)
            let lines = response.audit ?? []
            if let message = response.message { printError(message) }
            if json {
                for line in lines { print(line) }
                return
            }
            // The policy's 64-hex hash is the same on most rows: shown short, and only when it
            // changes (`--json` keeps every field whole).
            var lastPolicy: String? = nil
            print(
                Table.render(
                    ["SEQ", "TIME (UTC)", "EVENT", "ACTOR", "DETAILS"],
                    lines.compactMap { line -> [String]? in
                        guard let f = AuditLine.flatFields(line) else { return nil }
                        let skip: Set<String> = ["seq", "prev", "time", "event", "actor", "id"]
                        let details = f.filter { !skip.contains($0.0) }.compactMap { key, value -> String? in
                            if key == "policy_version" {
                                defer { lastPolicy = value }
                                return value == lastPolicy ? nil : "policy=\(LogText.escape(String(value.prefix(12))))"
                            }
                            return "\(key)=\(LogText.escape(value, limit: 80))"
                        }
                        return [
                            f.first { $0.0 == "seq" }?.1 ?? "?",
                            UTCTime.format(Int64(f.first { $0.0 == "time" }?.1 ?? "") ?? 0),
                            f.first { $0.0 == "event" }?.1 ?? "?",
                            LogText.escape(f.first { $0.0 == "actor" }?.1 ?? "?", limit: 32),
                            details.joined(separator: " "),
                        ]
                    },
                    useColor: isatty(1) != 0
                )
            )
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check that no audit record was edited, dropped, inserted or reordered.",
            discussion: """
                Prints the number of records and the hash of the last one. A chain cannot show that \
                its newest records were cut off or rewritten together: compare the head with a copy \
                kept elsewhere. Exit status 1 names the first line where the chain breaks.
                """
        )
        @OptionGroup var auditOptions: AuditOptions
        @OptionGroup var socketOptions: SocketOptions
        @Option(help: "Where writd enroll left this host's fleet credentials (writd --agent-dir).")
        var agentDir = "/var/lib/writ/agent"

        func run() throws {
            let log = try auditOptions.log()
            try requireRoot("writ audit verify", reads: "the audit log")
            let report = try log.verifyAll()
            let rotated = report.files.count - 1
            let scope = rotated == 0 ? "" : " and \(rotated) rotated file(s)"
            switch report.verdict {
            case .intact(let records, let seq, let head):
                let kept =
                    report.firstSeq > 1
                    ? " (records \(report.firstSeq)…\(seq); the files before are not here: deleted by --audit-keep, or removed)"
                    : ""
                print(
                    "audit log \(log.path)\(scope): \(records) records, chain intact\(kept); head record \(seq) hash \(head)"
                )
                try AuditCommand.compare(log, localHead: seq, socket: socketOptions.socket, agentDir: agentDir)
            case .broken(let line, let reason):
                throw CLIError("audit log \(report.brokenFile ?? log.path) is broken at line \(line): \(reason)")
            }
        }
    }

    /// On a fleet's agent: the log against the server's copy of this host's chain head, which
    /// shows what a chain alone cannot (its newest records cut off or rewritten together).
    /// Silent on a standalone host; on an enrolled one with writd stopped, says it could not.
    static func compare(_ log: AuditLog, localHead: Int64, socket: String, agentDir: String) throws {
        guard let client = try Daemon.connectIfRunning(socket) else {
            // Enrolled (writd enroll left its certificate): the comparison needs writd's link.
            if access(agentDir + "/cert.pem", F_OK) == 0 {
                print(
                    "not compared with the server's copy of this host's chain: writd is not running (start it, then run writ audit verify again)"
                )
            }
            return
        }
        var r = WireRequest(op: .audit)
        r.detail = "server_head"
        let response: WireResponse
        do { response = try client.call(r) } catch { throw CLIError(error.message) }
        if response.error?.code == "not_enrolled" { return }
        if let e = response.error { throw CLIError("cannot compare with the server: \(e.message)") }
        let head = response.audit ?? []
        guard let seq = head.first.flatMap({ Int64($0) }), seq > 0, head.count == 2 else {
            print("the server holds none of this host's records yet")
            return
        }
        var localHead = localHead
        if seq > localHead {
            // writd may have appended and uploaded since the log was read: read it again.
            if case .intact(_, let now, _) = try log.verifyAll().verdict { localHead = now }
        }
        guard seq <= localHead else {
            throw CLIError(
                "the server holds this host's records up to \(seq), but this log ends at \(localHead): records were cut off here"
            )
        }
        let line = try log.records(after: seq - 1, maxRecords: 1, maxBytes: 1 << 20).lines.first
        guard let line, AuditLine.chainFields(line)?.seq == seq else {
            print("the server's head is record \(seq), which is no longer here (rotated files removed): not compared")
            return
        }
        guard AuditChain.hash(line) == head[1] else {
            throw CLIError(
                "record \(seq) here is not the one the server holds (hash \(head[1])): this log was rewritten"
            )
        }
        print(
            "matches the server's copy of this host's chain up to record \(seq)"
                + (localHead > seq ? "; records \(seq + 1)…\(localHead) not uploaded yet" : "")
        )
    }

    struct Rotate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start a new audit file now; the chain goes on in it (writd also rotates by size).",
            discussion: """
                The current file becomes audit.jsonl.N (N: its last record) and the new file's first \
                record links to it. writ audit verify checks the files as one chain. With --keep N, only \
                the N newest rotated files are kept.
                """
        )
        @Option(help: "Rotated files to keep; older ones are deleted (default: keep all).") var keep: Int?
        @OptionGroup var auditOptions: AuditOptions

        func run() throws {
            var log = try auditOptions.log()
            try requireRoot("writ audit rotate", reads: "the audit log")
            if let keep, keep < 1 { throw CLIError("--keep must be at least 1", exitCode: 64) }
            log.keep = keep
            if let rotated = try log.rotate(time: currentTime()) {
                print("rotated: \(rotated); \(log.path) goes on with the next record")
            } else {
                print("nothing to rotate: \(log.path) is empty")
            }
        }
    }
}

/// `2026-11-25 14:03:07` in UTC: RFC 3339 (WritExpr's `Calendar`) with a space and no `Z`.
enum UTCTime {
    static func format(_ t: Int64) -> String {
        String(Calendar.rfc3339(t).dropLast().map { $0 == "T" ? " " : $0 })
    }
}
