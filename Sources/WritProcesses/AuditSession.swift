import Glibc

/// The kernel's audit session of a process (`/proc/PID/sessionid`). pam_loginuid sets it when a
/// login (sshd, login) writes the login uid; every process the login starts inherits it, through
/// `setsid`, double forks, `nohup`, `screen` and `tmux`, and `sudo -b` keeps it. Changing it needs
/// CAP_AUDIT_CONTROL, which a user does not have (root does: a root shell can leave it).
public enum AuditSession {
    /// What the kernel shows for a process no login set one for.
    public static let unset: UInt32 = 0xFFFF_FFFF

    /// The audit session of `pid`; nil when it is unset or the process is gone.
    public static func id(of pid: Int32) -> UInt32? {
        guard pid > 0,
            let bytes = try? FileDescriptor.open("/proc/\(pid)/sessionid", flags: O_RDONLY).readToEnd(limit: 32)
        else { return nil }
        return parse(bytes)
    }

    /// The login uid of `pid` (`/proc/PID/loginuid`); nil when unset or the process is gone.
    public static func loginUID(of pid: Int32) -> UInt32? {
        guard pid > 0,
            let bytes = try? FileDescriptor.open("/proc/\(pid)/loginuid", flags: O_RDONLY).readToEnd(limit: 32)
        else { return nil }
        return parse(bytes)
    }

    /// This process's own audit session (writd started from an admin's login shell has one):
    /// never ended by writd.
    static let own: UInt32? = id(of: getpid())

    static func parse(_ bytes: [UInt8]) -> UInt32? {
        var digits = bytes[...]
        while let last = digits.last, last == 0x0A || last == 0x20 { digits = digits.dropLast() }
        guard let value = StatRecord.unsigned(digits), let id = UInt32(exactly: value), id != unset else { return nil }
        return id
    }
}

/// Processes that belong to a grant's sessions beyond the process trees writd was told about: the
/// members of one audit session, optionally only those running as one user and started no earlier
/// than a given moment.
public struct SessionScope: Hashable, Sendable {
    /// The audit session (`AuditSession`).
    public var auditSession: UInt32
    /// Only processes whose effective uid is this one (a sudo grant: its run-as user); nil: every
    /// process of the session (a login grant: the whole login).
    public var owner: UInt32?
    /// Only processes started at or after this (clock ticks since boot, as in /proc/PID/stat): a
    /// sudo grant takes what was started under sudo, not the login that ran sudo.
    public var notBefore: UInt64

    public init(auditSession: UInt32, owner: UInt32?, notBefore: UInt64) {
        self.auditSession = auditSession
        self.owner = owner
        self.notBefore = notBefore
    }

    /// Whether `record` is in this scope (reading its session id and owner from /proc).
    func contains(_ record: StatRecord, proc: borrowing FileDescriptor) -> Bool {
        guard record.identity.startTime >= notBefore,
            let bytes = try? proc.open(relative: "\(record.identity.pid)/sessionid", flags: O_RDONLY)
                .readToEnd(limit: 32),
            AuditSession.parse(bytes) == auditSession
        else { return false }
        guard let owner else { return true }
        // The real uid: what sudo sets to the run-as user. A setuid program the user runs (su,
        // passwd) keeps the user's real uid, and a process that turned dumping off (ssh-agent)
        // is still the user's here, whoever /proc/PID belongs to.
        guard
            let status = try? proc.open(relative: "\(record.identity.pid)/status", flags: O_RDONLY)
                .readToEnd(limit: ProcessTable.statusLimit),
            let uids = parseUIDs(status: status)
        else { return false }
        return uids.real == owner
    }
}
