/// The environment a command-limited sudo grant tolerates.
///
/// A grant for `/usr/bin/systemctl restart nginx` means that program with those arguments — not
/// whatever code `LD_PRELOAD`, `PYTHONPATH`, a `HOME` with the user's dotfiles, a locale or time
/// zone file the user wrote, or a `PATH` through the user's own directory would make it run. With
/// sudoers' usual `ALL` rule a user may set variables (`sudo VAR=x cmd`, `-E`, `--preserve-env`),
/// so the check looks at the environment the command will actually get (`run_envp`) and accepts
/// only what sudo's `env_reset` would leave there, with the values it would give them.
public enum CommandEnvironment {
    /// Variables whose value sudo derives from the passwd entries (target or invoking user): they
    /// must have exactly the expected value.
    static let derived: Set<String> = [
        "HOME", "SHELL", "USER", "LOGNAME", "MAIL", "SUDO_USER", "SUDO_UID", "SUDO_GID", "SUDO_HOME",
    ]
    /// Variables that only name things (a terminal type, a locale, colours): no path may hide in
    /// them, so no `/`, `%` or `..`.
    static let plainText: Set<String> = [
        "TERM", "COLORTERM", "LANG", "LANGUAGE", "LINGUAS", "USERNAME", "HOSTNAME", "COLORS", "LS_COLORS",
    ]
    static let zoneinfo = "/usr/share/zoneinfo/"

    /// Why `entries` (`NAME=value` strings) are unsafe for a command-limited grant, or nil.
    /// - Parameters:
    ///   - expected: the values sudo derives for the `derived` names (`HOME` of the target user,
    ///     `SUDO_USER` of the invoking user, …); a name may be listed with several values.
    ///   - isSecureDirectory: whether a directory can be changed by root alone; every `PATH` entry
    ///     must be one.
    public static func problem(
        _ entries: [String],
        expected: [(name: String, value: String)],
        isSecureDirectory: (String) -> Bool
    ) -> String? {
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
            let key = String(name)
            if name == "SUDO_COMMAND" { continue }  // what sudo ran, for the record
            if derived.contains(key) {
                let ok = expected.contains { $0.name == key && $0.value.utf8.elementsEqual(value.utf8) }
                if !ok { return "\(key) is not the value sudo sets" }
            } else if plainText.contains(key) || isLocaleCategory(name) {
                if value.contains("/") || value.contains("%") || hasDotDot(value) {
                    return "\(key) names a path"
                }
            } else if name == "TZ" {
                if hasDotDot(value) { return "TZ names a path" }
                let path = value.hasPrefix(":") ? value.dropFirst() : value
                if path.hasPrefix("/") && !path.hasPrefix(zoneinfo) { return "TZ names a file outside \(zoneinfo)" }
            } else if name == "PATH" {
                for dir in value.split(separator: ":", omittingEmptySubsequences: false) {
                    guard dir.hasPrefix("/"), isSecureDirectory(String(dir)) else {
                        return "PATH entry \"\(dir)\" is not a directory only root can change"
                    }
                }
            } else {
                return "variable \(name) is set"
            }
        }
        return nil
    }

    static func hasDotDot(_ value: Substring) -> Bool {
        let bytes = Array(value.utf8)
        return bytes.indices.dropLast().contains { bytes[$0] == 0x2E && bytes[$0 + 1] == 0x2E }
    }

    /// `LC_` followed by upper-case letters and underscores (LC_ALL, LC_TIME, …).
    static func isLocaleCategory(_ name: Substring) -> Bool {
        name.hasPrefix("LC_") && name.count > 3 && name.utf8.allSatisfy { $0 == 0x5F || ($0 >= 0x41 && $0 <= 0x5A) }
    }
}
