import ArgumentParser
import Glibc
import WritPolicy

struct PolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Check approval policy files.",
        subcommands: [Validate.self]
    )

    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a policy file; errors are printed as file:line:column: message.",
            discussion: "Exit status: 0 valid, 1 errors found. Use it in CI before a policy reaches hosts."
        )
        @Argument(help: "The policy file.") var path: String = "/etc/writ/policy.yaml"

        func run() throws {
            do {
                let policy = try Policy.load(path: path)
                print(
                    "\(path): valid, \(policy.flows.count) flow(s): \(policy.flows.map(\.name).joined(separator: ", "))"
                )
            } catch {
                print(error.description)
                throw CLIError(
                    "\(path): \(error.issues.count) error(s) — fix them, then reload writd (systemctl reload writd)"
                )
            }
        }
    }
}
