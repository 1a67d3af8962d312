/// A hook as the policy file names it: which program, how long it may take, and its settings.
/// Plain data: WritHooks runs it.
public struct HookSpec: Sendable, Equatable {
    /// Variables `environment` cannot set: the ones the hook runner sets itself, and the ones
    /// that would change what runs (the policy parser refuses them; the runner checks again).
    public static let reservedNames: Set<String> = [
        "LD_PRELOAD", "LD_LIBRARY_PATH",
        "PATH", "LANG", "HOME", "USER", "LOGNAME", "SHELL", "WRIT_HOOK_EVENT", "WRIT_HOOK_VERSION", "PYTHONPATH",
        "PYTHONDONTWRITEBYTECODE", "PYTHONNOUSERSITE",
    ]

    /// The executable's absolute path. It and every directory above it must be root's and not
    /// writable by group or others (checked at each run).
    public var path: String
    /// How long the hook may run before its process group is killed.
    public var timeoutMilliseconds: Int
    /// Extra environment variables the admin set in the policy file (`WEBHOOK_URL`, …). Names are
    /// `[A-Z_][A-Z0-9_]*` and cannot replace the fixed ones (`PATH`, `HOME`, `WRIT_HOOK_EVENT`, …).
    /// Values may be secrets: they never appear in error messages.
    public var environment: [String: String]

    /// A hook at `path`; five seconds and no extra variables unless given.
    public init(path: String, timeoutMilliseconds: Int = 5000, environment: [String: String] = [:]) {
        self.path = path
        self.timeoutMilliseconds = timeoutMilliseconds
        self.environment = environment
    }
}
