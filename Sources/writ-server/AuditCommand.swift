import ArgumentParser
import Glibc
import WritAudit
import WritCore
import WritEngine
import WritExpr

/// The fleet's audit, on the server's store: the server's own chain (requests, decisions,
/// grants) and every host's chain as its agent uploaded it (sudo runs, sessions ended).
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Show or check the fleet's audit records.",
        subcommands: [Show.self, Verify.self],
        defaultSubcommand: Show.self
    )

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print audit records of the server and the hosts, oldest first (the newest --limit)."
        )
        @OptionGroup var store: StoreOptions
        @Option(help: "A host: its own records, and the server's about requests and grants for it or through it.")
        var host: String?
        @Option(help: "Records whose actor, requester or grant holder is this user.") var user: String?
        @Option(help: "Records of this flow.") var flow: String?
        @Option(help: "Records from this long ago (2h, 1d) or from these UTC seconds.") var since: String?
        @Option(help: "Records up to this long ago, or up to these UTC seconds.") var until: String?
        @Option(help: "At most this many records, the newest (1 to 10000).") var limit = 1000
        @Flag(help: "Print the raw JSON lines, each after its chain's name and a tab.") var json = false

        func run() async throws {
            let filter = FleetAuditFilter(
                host: host,
                user: user,
                flow: flow,
                since: try since.map { try Self.moment($0, "--since") },
                until: try until.map { try Self.moment($0, "--until") }
            )
            let records = try await store.withEngine { try await $0.fleetAudit(filter, limit: limit) }
            for r in records {
                let chain = r.host ?? "server"
                if json {
                    print("\(chain)\t\(r.line)")
                    continue
                }
                guard let fields = AuditLine.flatFields(r.line) else { continue }
                func field(_ name: String) -> String { fields.first { $0.0 == name }?.1 ?? "?" }
                let skip: Set<String> = ["seq", "prev", "time", "event", "actor", "id"]
                let details = fields.filter { !skip.contains($0.0) }.map {
                    "\($0.0)=\(LogText.escape($0.1, limit: 80))"
                }
                print(
                    [
                        Calendar.rfc3339(r.time), LogText.escape(chain, limit: 64), LogText.escape(field("seq")),
                        LogText.escape(field("event"), limit: 64),
                        LogText.escape(field("actor"), limit: 32), details.joined(separator: " "),
                    ].joined(separator: "  ")
                )
            }
        }

        /// A duration ago, or Unix seconds.
        static func moment(_ text: String, _ option: String) throws -> Int64 {
            if let epoch = Int64(text) { return epoch }
            guard let seconds = try? DurationText.parse(text) else {
                fail("\(option) takes a duration such as 2h, or UTC seconds", code: 64)
            }
            return Int64(Glibc.time(nil)) - seconds
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the server's chain and each host's uploaded chain.",
            discussion: """
                Prints each chain's records and head. A host's head here is the anchor outside the \
                host: writ audit verify on the host compares its own log with it. Exit status 1 \
                when a chain is broken.
                """
        )
        @OptionGroup var store: StoreOptions
        @Option(help: "Only this host's chain.") var host: String?

        func run() async throws {
            let checks = try await store.withEngine { try await $0.verifyFleetAudit(host: host) }
            if let host, checks.isEmpty { fail("no audit records of \(host) on this server", code: 1) }
            var broken = false
            for check in checks {
                let chain = check.host.map { "host \($0)" } ?? "the server's chain"
                switch check.verdict {
                case .intact(let records, let seq, let head):
                    print("\(chain): \(records) records, chain intact; head record \(seq) hash \(head)")
                case .broken(let line, let reason):
                    broken = true
                    print("\(chain): broken at its record \(line): \(reason)")
                }
            }
            if broken { throw ExitCode(1) }
        }
    }
}
