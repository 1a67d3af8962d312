import Glibc
import WritAudit
import WritProcesses
import WritProtocol
import WritStore

/// Where writd keeps things and how it times them. Every path is absolute and root's.
public struct DaemonConfiguration: Sendable {
    public var storePath = StoreFile.defaultPath
    /// writd's own state (requests, sessions, audit outbox), attached to the grant store's
    /// connection so a decision and its grant commit in one transaction. Not in grants.db: every
    /// sudo and login parses that file's whole schema.
    public var statePath = "/var/lib/writ/writd.db"
    public var auditPath = AuditLog.defaultPath
    public var socketPath = Wire.defaultSocketPath
    public var policyPath = "/etc/writ/policy.yaml"
    /// How long a session gets between SIGHUP and SIGKILL when its grant ends.
    public var sessionGrace: Duration = .seconds(5)
    /// How long before expiry terminals are warned, for grants no flow configured.
    public var defaultWarnBefore: Int64 = 300
    /// This host's name as flows' `hosts` patterns see it.
    public var hostName: String = HostName.current()
    /// The wall clock, UTC seconds. Grants end at a UTC second, so this is time(2), not a
    /// monotonic clock; tests replace it to step time forwards and backwards.
    public var clock: @Sendable () -> Int64 = { Int64(time(nil)) }
    /// Secrets and settings of the integrations (PagerDuty); absent: none.
    public var integrationsPath = "/etc/writ/integrations.yaml"
    /// Where `writ_hook.py` is installed: put on hooks' PYTHONPATH.
    public var hookLibraryPath: String? = "/usr/local/lib/writ/python"
    /// The audit log is rotated, its chain kept, when it grows past this; nil: never.
    public var auditRotateBytes: Int64? = AuditLog.defaultRotateBytes
    /// Rotated audit files kept.
    public var auditKeep = AuditLog.defaultKeep

    /// writ-server's URLs when this host is a fleet's agent (`writd run --server`); empty:
    /// standalone, deciding here.
    public var fleetServers: [String] = []
    /// Where `writd enroll` left the agent's credentials.
    public var fleetDirectory = FleetConfiguration.defaultDirectory

    public init() {}

    /// Milliseconds on the monotonic clock, for how long things took.
    public static func monotonicMilliseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

}
