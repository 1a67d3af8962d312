import WritCore

/// Options from the PAM stanza or the sudo.conf `Plugin` line. Both are root-owned files; nothing
/// here comes from the invoking user. One parser for the module, the plugin and `writ doctor`, so
/// what doctor says about a line is what the module will do with it.
package struct ModuleOptions {
    package enum FailMode: String {
        case closed, open
    }

    package var capability: Capability?
    package var storePath = StoreFile.defaultPath
    package var failMode = FailMode.closed
    package var managedGroup: String?
    package var debug = false
    /// PAM in sudo's stack only: the sudo_writ approval plugin enforces run-as and command scopes.
    package var sudoPlugin = false

    /// Parses `name=value` words; returns the first problem as text.
    package init() {}

    package static func parse(_ words: [String]) -> (ModuleOptions, problem: String?) {
        var o = ModuleOptions()
        for word in words {
            let (key, value): (Substring, Substring?) = {
                if let eq = word.firstIndex(of: "=") {
                    return (word[..<eq], word[word.index(after: eq)...])
                }
                return (word[...], nil)
            }()
            switch (key, value) {
            case ("capability", let v?):
                guard let c = Capability(rawValue: String(v)) else {
                    return (o, "unknown capability=\(v) (use login or sudo)")
                }
                o.capability = c
            case ("store", let v?):
                guard v.hasPrefix("/") else { return (o, "store=\(v) is not an absolute path") }
                o.storePath = String(v)
            case ("failmode", let v?):
                guard let f = FailMode(rawValue: String(v)) else {
                    return (o, "unknown failmode=\(v) (use closed or open)")
                }
                o.failMode = f
            case ("managed_group", let v?):
                guard !v.isEmpty else { return (o, "managed_group= is empty") }
                o.managedGroup = String(v)
            case ("debug", nil):
                o.debug = true
            case ("sudo_plugin", nil):
                o.sudoPlugin = true
            default:
                return (o, "unknown option \"\(LogText.escape(word, limit: 64))\"")
            }
        }
        return (o, nil)
    }

    /// Parses the words of a sudo.conf `Plugin` line (writ_approval or writ_audit): the same
    /// options, and those that mean nothing there refused. An option accepted and ignored would
    /// gate people the admin meant to leave alone.
    package static func parsePluginLine(_ words: [String]) -> (ModuleOptions, problem: String?) {
        let (options, problem) = parse(words)
        if let problem { return (options, problem) }
        if let capability = options.capability, capability != .sudo {
            return (options, "capability=\(capability.rawValue) makes no sense for the sudo plugin")
        }
        if options.sudoPlugin {
            return (options, "sudo_plugin is a pam_writ.so option (the PAM line in sudo's stack), not a Plugin option")
        }
        return (options, nil)
    }
}
