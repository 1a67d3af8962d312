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
    /// Variables sudo's `env_reset` keeps that only name things (a terminal type, a locale, the
    /// host, colours) — its `env_keep` defaults HOSTNAME, LS_COLORS, COLORS and its `env_check`
    /// defaults TERM, COLORTERM, LANG, LANGUAGE, LINGUAS, LC_* (TZ and PATH have rules of their
    /// own): each may hold only the characters such a name is written with (`Charset`), so no
    /// path (`/`, `..`), no `%` and no shell metacharacter but the `;` a colour list needs.
    static let plainText: [String: Charset] = [
        "TERM": .name, "COLORTERM": .name, "HOSTNAME": .name,
        "LANG": .locale, "LANGUAGE": .localeList, "LINGUAS": .localeList,
        "COLORS": .colors, "LS_COLORS": .colors,
    ]

    /// The characters a plain variable may hold.
    enum Charset {
        /// Letters, digits, `.`, `_`, `-`, `+` (xterm-256color, truecolor, host.example).
        case name
        /// A locale: letters, digits, `.`, `_`, `-`, `@` (en_US.UTF-8, de_DE@euro).
        case locale
        /// Locales separated by `:` or spaces (LANGUAGE=de:en, LINGUAS="de fr").
        case localeList
        /// A dircolors list: letters, digits, `=`, `:`, `;`, `*`, `.`, `_`, `-`, `~`, `#`, `+`.
        case colors

        func allows(_ byte: UInt8) -> Bool {
            switch byte {
            case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x2E, 0x5F, 0x2D: return true  // 0-9 A-Z a-z . _ -
            case 0x2B: return self == .name || self == .colors  // +
            case 0x40: return self == .locale || self == .localeList  // @
            case 0x3A: return self == .localeList || self == .colors  // :
            case 0x20: return self == .localeList  // space
            case 0x3D, 0x3B, 0x2A, 0x7E, 0x23: return self == .colors  // = ; * ~ #
            default: return false
            }
        }
    }
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
            } else if let charset = plainText[key] ?? (isLocaleCategory(name) ? .locale : nil) {
                if value.contains("/") || value.contains("%") || hasDotDot(value) {
                    return "\(key) names a path"
                }
                if !value.utf8.allSatisfy(charset.allows) {
                    return "\(key) holds a character a \(key) value is not written with"
                }
            } else if name == "TZ" {
                if hasDotDot(value) { return "TZ names a path" }
                // A zone name, a file under the zone directory, or a POSIX rule (EST5EDT,M3.2.0).
                let zoneByte: (UInt8) -> Bool = {
                    Charset.name.allows($0) || $0 == 0x2F || $0 == 0x3A || $0 == 0x2C  // / : ,
                }
                if !value.utf8.allSatisfy(zoneByte) { return "TZ holds a character a TZ value is not written with" }
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
