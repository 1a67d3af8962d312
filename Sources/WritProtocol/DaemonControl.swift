import Glibc

/// How writd is started, stopped and reloaded on this host, for the hints the CLI prints: the
/// systemd unit where systemd runs, `writd start|stop|reload` elsewhere (containers, hosts
/// without systemd). Only root can do either, so other users are told to ask an admin.
public enum DaemonControl {
    /// `systemctl VERB writd` or `writd VERB`, as this host runs writd.
    public static func command(_ verb: String) -> String {
        systemdRuns ? "systemctl \(verb) writd" : "writd \(verb)"
    }

    /// What to do, phrased for the caller: the command for root, "ask an admin" for others.
    public static func hint(_ verb: String) -> String {
        getuid() == 0 ? "\(verb) it: \(command(verb))" : "ask an admin to \(verb) it (\(command(verb)))"
    }

    /// sd_booted(3): systemd is the init system when this directory exists.
    public static var systemdRuns: Bool {
        var st = stat()
        return lstat("/run/systemd/system", &st) == 0 && st.st_mode & S_IFMT == S_IFDIR
    }
}
