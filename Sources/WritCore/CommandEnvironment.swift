/// The environment a command-limited sudo grant tolerates.
///
/// A grant for `/usr/bin/systemctl restart nginx` means that program with those arguments — not
/// whatever code `LD_PRELOAD`, `PYTHONPATH`, `BASH_ENV` or a `PATH` through the user's own
/// directory would make it run. With sudoers' usual `ALL` rule a user may set variables
/// (`sudo VAR=x cmd`, `-E`, `--preserve-env`), so the check looks at the environment the command
/// will actually get (`run_envp`) and accepts only what sudo's `env_reset` leaves there.
public enum CommandEnvironment {
    /// Variables sudo's env_reset keeps or sets, which change no program's code path.
    static let allowed: Set<String> = [
        "PATH", "HOME", "LOGNAME", "USER", "USERNAME", "MAIL", "SHELL", "TERM", "COLORTERM", "DISPLAY",
        "XAUTHORITY", "HOSTNAME", "LANG", "LANGUAGE", "LINGUAS", "TZ", "COLORS", "LS_COLORS", "SUDO_USER",
        "SUDO_UID", "SUDO_GID", "SUDO_COMMAND", "SUDO_HOME",
    ]

    /// Why `entries` (`NAME=value` strings) are unsafe for a command-limited grant, or nil.
    /// - Parameter isSecureDirectory: whether a directory can be changed only by root; every
    ///   `PATH` entry must be one.
    public static func problem(_ entries: [String], isSecureDirectory: (String) -> Bool) -> String? {
        for entry in entries {
            let name: Substring
            let value: Substring
            if let eq = entry.firstIndex(of: "=") {
                name = entry[..<eq]
                value = entry[entry.index(after: eq)...]
            } else {
                name = entry[...]
                value = ""
            }
            if name.hasPrefix("LC_") && name.utf8.allSatisfy({ $0 == 0x5F || ($0 >= 0x41 && $0 <= 0x5A) }) {
                continue
            }
            guard allowed.contains(String(name)) else { return "variable \(name) is set" }
            if name == "PATH" {
                for dir in value.split(separator: ":", omittingEmptySubsequences: false) {
                    guard dir.hasPrefix("/"), isSecureDirectory(String(dir)) else {
                        return "PATH entry \"\(dir)\" is not a directory only root can change"
                    }
                }
            }
        }
        return nil
    }
}
