import ArgumentParser
import Glibc
import WritCore
import WritProtocol

/// `writ flows`: what I may ask for on this host, under the policy writd has in force.
struct FlowsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flows",
        abstract: "The flows you may request on this host: what each grants, for how long, who approves."
    )
    @Flag(help: "Print JSON for scripts.") var json = false
    @OptionGroup var socketOptions: SocketOptions

    func run() throws {
        let flows = try Daemon.call(try Daemon.connect(socketOptions.socket), WireRequest(op: .flows)).flows ?? []
        if json {
            print(JSONOut.encode(flows))
            return
        }
        guard !flows.isEmpty else {
            print("no flow lets you request anything on this host — ask an admin to add you to a flow's requesters")
            return
        }
        print(
            Table.render(
                ["FLOW", "GRANTS", "FOR", "APPROVED BY", "REASON", "DESCRIPTION"],
                flows.map { f in
                    [
                        LogText.escape(f.name, limit: 32),
                        scope(f),
                        "\(DurationText.format(f.defaultDuration)) (max \(DurationText.format(f.maxDuration)))",
                        approval(f),
                        f.reasonRequired
                            ? (f.reasonPattern.map { "required, \(LogText.escape($0, limit: 40))" } ?? "required")
                            : "optional",
                        LogText.escape(f.description, limit: 60),
                    ]
                },
                useColor: isatty(1) != 0
            )
        )
        print("ask with: writ request sudo|login --flow NAME --for DURATION --reason \"…\"")
    }

    func scope(_ f: FlowView) -> String {
        guard f.capability == "sudo" else { return "login" }
        let commands = f.commands.map(commandList) ?? "any command"
        return "sudo as \(LogText.escape(f.runas, limit: 32)): \(commands)"
    }

    func approval(_ f: FlowView) -> String {
        var parts: [String] = []
        let people =
            f.approvers.isEmpty ? "nobody" : f.approvers.map { LogText.escape($0, limit: 32) }.joined(separator: ", ")
        parts.append("\(f.approvals) of \(people)" + (f.steps > 1 ? " (+\(f.steps - 1) more step(s))" : ""))
        parts += f.automatic.map { LogText.escape($0, limit: 60) }
        return parts.joined(separator: "; ")
    }
}
