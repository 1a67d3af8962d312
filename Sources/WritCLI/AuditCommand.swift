import ArgumentParser
import WritAudit

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Check the hash-chained audit log.",
        subcommands: [Verify.self]
    )

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check that no audit record was edited, dropped, inserted or reordered.",
            discussion: """
                Prints the number of records and the hash of the last one. A chain cannot show that
                its newest records were cut off or rewritten together: compare the head with a copy
                kept elsewhere. Exit status 1 names the first line where the chain breaks.
                """
        )
        @OptionGroup var auditOptions: AuditOptions

        func run() throws {
            let log = try auditOptions.log()
            try requireRoot("writ audit verify")
            switch AuditChain.verify(try log.lines()) {
            case .intact(let records, let seq, let head):
                print("audit log \(log.path): \(records) records, chain intact; head record \(seq) hash \(head)")
            case .broken(let line, let reason):
                throw CLIError("audit log \(log.path) is broken at line \(line): \(reason)")
            }
        }
    }
}
