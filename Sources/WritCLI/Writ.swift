import ArgumentParser
import FoundationEssentials
import Glibc
import WritAudit
import WritCore
import WritStore

/// `writ` — the command line for engineers, approvers and admins.
///
/// Exit codes: 0 success; 1 the operation failed (message on stderr); 64 bad usage.
@main
struct Writ: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "writ",
        abstract: "Just-in-time sudo and login grants for this host.",
        discussion: """
            Engineers ask for time-boxed sudo or login grants (writ flows, writ request), approvers \
            decide (writ requests, writ approve), and the host enforces them: pam_writ.so and the sudo \
            plugins check the grant store, writd ends grants and their sessions on time and keeps a \
            hash-chained audit log. Admins check who is gated with writ doctor. See writ-policy(5), \
            writd(8), pam_writ(8), sudo_writ(8).
            """,
        version: WritVersion.current,
        subcommands: [
            RequestCommand.self, FlowsCommand.self, StatusCommand.self, RequestsCommand.self, ApproveCommand.self,
            DenyCommand.self,
            CancelCommand.self, RevokeCommand.self, ExtendCommand.self, AuditCommand.self, PolicyCommand.self,
            DoctorCommand.self, GrantCommand.self, StoreCommand.self,
        ]
    )

    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as CLIError {
            printError(error.message)
            Glibc.exit(error.exitCode)
        } catch let error as StoreError {
            printError(error.description)
            Glibc.exit(1)
        } catch {
            exit(withError: error)
        }
    }
}

/// Writes `writ: MESSAGE` and a newline to standard error (write(2): no stdio state involved).
func printError(_ message: String) {
    let line = Array(("writ: " + message + "\n").utf8)
    var offset = 0
    while offset < line.count {
        let n = line[offset...].withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return }
        offset += n
    }
}

/// An error the CLI reports as one line: what happened and what to do.
struct CLIError: Error {
    var message: String
    var exitCode: Int32 = 1

    init(_ message: String, exitCode: Int32 = 1) {
        self.message = message
        self.exitCode = exitCode
    }
}

/// Options every store-touching command takes.
struct StoreOptions: ParsableArguments {
    @Option(help: "Path of the grant store.")
    var store: String = StoreFile.defaultPath

    func validatedPath() throws -> String {
        guard store.hasPrefix("/") else { throw CLIError("--store \(store) is not an absolute path", exitCode: 64) }
        return store
    }
}

/// Where audit records go.
struct AuditOptions: ParsableArguments {
    @Option(name: .customLong("audit-log"), help: "Path of the hash-chained audit log.")
    var auditLog: String = AuditLog.defaultPath

    func log() throws -> AuditLog {
        guard auditLog.hasPrefix("/") else {
            throw CLIError("--audit-log \(auditLog) is not an absolute path", exitCode: 64)
        }
        // writd rotates by size and deletes by its own --audit-keep; the CLI does neither.
        return AuditLog(path: auditLog, rotateBytes: nil, keep: nil)
    }
}

/// Appends an audit record for a change already made; a failure is reported, not hidden.
func audit(_ log: AuditLog, _ event: AuditEvent, after done: String) throws {
    do {
        try log.append(event)
    } catch {
        throw CLIError("\(done), but the audit log could not be written: \(error.description)")
    }
}

/// Refuses early, naming what the command reads (`the grant store`, `the audit log`) and that it
/// is root's.
func requireRoot(_ what: String, reads: String = "the grant store") throws {
    guard getuid() == 0 else {
        throw CLIError("\(what) needs root: \(reads) belongs to root — ask an admin to run it")
    }
}

func currentTime() -> Int64 { Int64(Date().timeIntervalSince1970) }
