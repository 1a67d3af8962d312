import ArgumentParser
import Glibc
import WritAudit
import WritCore
import WritPolicy
import WritProtocol
import WritStore

struct GrantCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grant",
        abstract: "Add, list and revoke grants directly in the store (root; the break-glass path).",
        subcommands: [Add.self, List.self, Revoke.self]
    )

    /// Longest grant the admin path issues. Longer standing access is what Writ exists to avoid.
    static let maximumDuration: Int64 = 31 * 86400

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Grant a user sudo or login on this host for a limited time. Prints the grant id."
        )

        @Option(help: "The user to grant (must exist on this host).")
        var user: String

        @Option(help: "What the grant allows: sudo or login.")
        var capability: String

        @Option(
            name: .customLong("for"),
            parsing: .unconditional,
            help: "How long the grant lasts: 90s, 30m, 4h, 1h30m, 2d (at most 31d)."
        )
        var duration: String

        @Option(help: "Host name pattern the grant covers (glob, matched against the short name and the FQDN).")
        var host: String = "*"

        @Option(help: "User sudo may run commands as (glob; * for any). sudo grants only.")
        var runas: String = "root"

        @Option(
            name: .customLong("command"),
            help: ArgumentHelp(
                "Allowed command, \"PATH [ARGS]\" (repeatable). PATH alone allows any arguments; PATH \"\" none.",
                valueName: "command"
            )
        )
        var commands: [String] = []

        @Option(help: "Why the grant exists (ticket, incident): required, kept in the audit log.")
        var reason: String

        @Option(name: .customLong("starts-in"), help: "Delay before the grant becomes valid (default: now).")
        var startsIn: String?

        @OptionGroup var storeOptions: StoreOptions
        @OptionGroup var auditOptions: AuditOptions
        @OptionGroup var socketOptions: SocketOptions

        func run() throws {
            let path = try storeOptions.validatedPath()
            let log = try auditOptions.log()
            try requireRoot("writ grant add")
            let grant = try makeGrant(now: currentTime())
            // writd is the store's only writer while it runs; it also watches the grant's expiry.
            if let client = try Daemon.connectIfServing(store: path, socket: socketOptions.socket) {
                var r = WireRequest(op: .grantAdd)
                r.user = grant.user
                r.capability = grant.capability.rawValue
                r.host = grant.host
                r.runas = grant.runas
                r.commands = grant.commands?.map(\.description)
                r.duration = grant.expiresAt - grant.notBefore
                r.startsIn = grant.notBefore - grant.createdAt
                r.reason = grant.reason
                print(try Daemon.call(client, r).grant?.id ?? "?")
                return
            }
            let store = try GrantStore.create(path: path)
            try store.add(grant)
            print(grant.id)
            var fields: [AuditEvent.Field] = [
                .init("grant", grant.id), .init("user", grant.user), .init("uid", String(grant.uid)),
                .init("capability", grant.capability.rawValue), .init("host", grant.host), .init("runas", grant.runas),
                .init("not_before", String(grant.notBefore)), .init("expires_at", String(grant.expiresAt)),
                .init("reason", grant.reason),
            ]
            if let commands = grant.commands {
                fields.append(.init("commands", commands.map(\.description).joined(separator: "; ")))
            }
            try audit(
                log,
                AuditEvent(time: grant.createdAt, event: "grant.add", actor: grant.approvedBy, fields: fields),
                after: "grant \(grant.id) was added"
            )
        }

        /// Validates every argument before the store is touched, so bad input changes nothing.
        func makeGrant(now: Int64) throws -> Grant {
            guard let cap = Capability(rawValue: capability) else {
                throw CLIError("unknown capability \"\(LogText.escape(capability))\": use sudo or login", exitCode: 64)
            }
            guard let account = lookupUser(user) else {
                throw CLIError(
                    "no such user \"\(LogText.escape(user))\" on this host — check the name (getent passwd \(LogText.escape(user)))"
                )
            }
            if account.uid == 0 {
                throw CLIError(
                    "\(LogText.escape(user)) is uid 0, which Writ never restricts: a grant would mean nothing"
                )
            }
            let why = reason.trimmingCharacters()
            guard !why.isEmpty else {
                throw CLIError("--reason is empty: say why root grants access (a ticket, an incident)", exitCode: 64)
            }
            guard why.count <= Policy.reasonLimit else {
                throw CLIError(
                    "the reason is \(why.count) characters, over the limit of \(Policy.reasonLimit) — shorten it",
                    exitCode: 64
                )
            }
            let seconds: Int64
            do { seconds = try DurationText.parse(duration) } catch { throw CLIError(error.description, exitCode: 64) }
            guard seconds > 0 else { throw CLIError("duration must be longer than 0s", exitCode: 64) }
            guard seconds <= GrantCommand.maximumDuration else {
                throw CLIError(
                    "duration \(duration) is longer than the maximum of 31d: grant less, and extend when needed",
                    exitCode: 64
                )
            }
            var delay: Int64 = 0
            if let startsIn {
                do { delay = try DurationText.parse(startsIn) } catch {
                    throw CLIError(error.description, exitCode: 64)
                }
                guard delay <= GrantCommand.maximumDuration else {
                    throw CLIError("--starts-in is longer than 31d", exitCode: 64)
                }
            }
            try validatePattern(host, what: "host")
            var patterns: [CommandPattern]? = nil
            if !commands.isEmpty {
                guard cap == .sudo else { throw CLIError("--command applies to sudo grants only", exitCode: 64) }
                patterns = try commands.map { (line: String) throws -> CommandPattern in
                    var pattern: CommandPattern
                    do throws(CommandPatternError) {
                        pattern = try CommandPattern(parsing: line)
                    } catch {
                        throw CLIError(error.description, exitCode: 64)
                    }
                    pattern.path = try canonicalProgramPath(pattern.path)
                    return pattern
                }
            }
            if runas != "root" {
                guard cap == .sudo else { throw CLIError("--runas applies to sudo grants only", exitCode: 64) }
                try validatePattern(runas, what: "runas")
                if !runas.contains(where: { $0 == "*" || $0 == "?" }) && lookupUser(runas) == nil {
                    throw CLIError("no such run-as user \"\(LogText.escape(runas))\" on this host")
                }
            }
            guard reason.utf8.count <= 1024 else { throw CLIError("--reason is longer than 1024 bytes", exitCode: 64) }
            return Grant(
                id: GrantID.generate(),
                user: account.name,
                uid: account.uid,
                capability: cap,
                host: host,
                runas: runas,
                commands: patterns,
                notBefore: now + delay,
                expiresAt: now + delay + seconds,
                reason: reason.trimmingCharacters(),
                approvedBy: "cli:\(lookupUser(uid: getuid())?.name ?? "uid \(getuid())")",
                createdAt: now
            )
        }

        func validatePattern(_ value: String, what: String) throws {
            let allowed = value.utf8.allSatisfy {
                ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A)
                    || [UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "*"), UInt8(ascii: "?")]
                        .contains($0)
            }
            guard !value.isEmpty, value.utf8.count <= 253, allowed else {
                throw CLIError(
                    "--\(what) \"\(LogText.escape(value))\" is not a valid pattern: letters, digits, . - _ and the globs * ?",
                    exitCode: 64
                )
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List active and upcoming grants (--all: history too)."
        )

        @Flag(help: "Include expired and revoked grants.")
        var all = false

        @Flag(help: "Print JSON for scripts.")
        var json = false

        @OptionGroup var storeOptions: StoreOptions

        func run() throws {
            let path = try storeOptions.validatedPath()
            try requireRoot("writ grant list")
            let now = currentTime()
            let store = try GrantStore(path: path)
            let grants = try store.list(includeEnded: all, now: now)
            if json {
                print(GrantJSON.encode(grants, now: now))
            } else {
                print(GrantTable.render(grants, now: now, useColor: isatty(1) != 0))
            }
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a grant now.")

        @Argument(help: "The grant id (from writ grant list).")
        var id: String

        @OptionGroup var storeOptions: StoreOptions
        @OptionGroup var auditOptions: AuditOptions
        @OptionGroup var socketOptions: SocketOptions

        func run() throws {
            let path = try storeOptions.validatedPath()
            let log = try auditOptions.log()
            try requireRoot("writ grant revoke")
            if let client = try Daemon.connectIfServing(store: path, socket: socketOptions.socket) {
                var r = WireRequest(op: .grantRevoke)
                r.id = id
                let g = try Daemon.call(client, r).grant
                print("revoked \(id) (\(g?.capability ?? "?") for \(LogText.escape(g?.user ?? "?")))")
                return
            }
            let store = try GrantStore(path: path)
            let by = "cli:\(lookupUser(uid: getuid())?.name ?? "uid \(getuid())")"
            let now = currentTime()
            let (grant, revoked) = try store.revoke(id: id, by: by, now: now)
            if revoked {
                print("revoked \(grant.id) (\(grant.capability.rawValue) for \(LogText.escape(grant.user)))")
                try audit(
                    log,
                    AuditEvent(
                        time: now,
                        event: "grant.revoke",
                        actor: by,
                        fields: [
                            .init("grant", grant.id), .init("user", grant.user),
                            .init("capability", grant.capability.rawValue),
                        ]
                    ),
                    after: "grant \(grant.id) was revoked"
                )
            } else {
                throw CLIError(
                    "grant \(id) has already ended (\(grant.state(at: currentTime()).rawValue)): nothing to revoke"
                )
            }
        }
    }
}

struct StoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "Create and check the grant store.",
        subcommands: [Init.self, Check.self]
    )

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the store (directory 0700, file 0600, owned by root) or migrate an existing one."
        )
        @OptionGroup var storeOptions: StoreOptions

        func run() throws {
            let path = try storeOptions.validatedPath()
            try requireRoot("writ store init")
            _ = try GrantStore.create(path: path)
            print("store ready: \(path) (schema \(StoreSchema.current))")
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the store the way pam_writ.so and sudo_writ.so do before trusting it."
        )
        @OptionGroup var storeOptions: StoreOptions

        func run() throws {
            let path = try storeOptions.validatedPath()
            try requireRoot("writ store check")
            _ = try GrantReader(path: path)
            print("store ok: \(path)")
        }
    }
}

/// The granted program's path with its directory resolved (`/bin/true` → `/usr/bin/true` on
/// merged /usr), the file name kept as typed: the modules compare names, never inodes, so
/// `/usr/bin/rbash` stays rbash and does not become bash.
func canonicalProgramPath(_ path: String) throws -> String {
    // Exit 1: the path is well formed, but this host cannot back a grant for it.
    do { return try RootOnlyPath.canonicalProgram(path) } catch { throw CLIError(error.description) }
}

struct Account {
    var name: String
    var uid: UInt32
}

func lookupUser(_ name: String) -> Account? {
    guard let pw = getpwnam(name), let n = pw.pointee.pw_name else { return nil }
    return Account(name: String(cString: n), uid: pw.pointee.pw_uid)
}

func lookupUser(uid: uid_t) -> Account? {
    guard let pw = getpwuid(uid), let n = pw.pointee.pw_name else { return nil }
    return Account(name: String(cString: n), uid: pw.pointee.pw_uid)
}
