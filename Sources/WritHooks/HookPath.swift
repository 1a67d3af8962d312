import Glibc
import WritStore

/// The checks on a hook's path (and on the Python library directory) before each run.
///
/// The path is resolved by WritStore's `RootOnlyPath.resolve`, the one resolver: component by
/// component the way the kernel will, every directory and symlink it passes through, and the file
/// itself, owned by a trusted user and not writable by group or others — so nobody else can swap
/// the program between the check and execve. Trusted is root; when writd does not run as root
/// (tests, a developer's machine), its own uid as well. A sticky directory (/tmp) is accepted as
/// a parent, since no one but an entry's owner may rename that entry, and the entries below are
/// checked. Each refusal here says what is wrong and how to fix it, for
/// `HookFailure.notRunnable`.
enum HookPath {
    /// The resolved path of a hook executable (symlinks followed), or why it must not run.
    static func checkProgram(_ path: String) -> Result<String, HookFailure> {
        guard path.hasPrefix("/") else {
            return .failure(
                .notRunnable(
                    "hook path '\(HookText.escape(path))' is not absolute; name the executable by its full path "
                        + "(e.g. /etc/writ/hooks/check.py)"
                )
            )
        }
        let resolved: Resolved
        switch resolve(path) {
        case .success(let r): resolved = r
        case .failure(let failure): return .failure(failure)
        }
        let shown = HookText.escape(resolved.path)
        let mode = resolved.status.st_mode
        guard mode & mode_t(S_IFMT) == mode_t(S_IFREG) else {
            return .failure(.notRunnable("\(shown) is not a regular file; point the policy at the hook's executable"))
        }
        if mode & 0o022 != 0 {
            return .failure(
                .notRunnable("\(shown) is writable by group or others; run: chmod go-w \(shown)")
            )
        }
        if mode & 0o111 == 0 {
            return .failure(.notRunnable("\(shown) is not executable; run: chmod 0755 \(shown)"))
        }
        return .success(resolved.path)
    }

    /// The resolved path of a directory that only trusted users can change (the Python library
    /// directory), or why it must not be used.
    static func checkDirectory(_ path: String, what: String) -> Result<String, HookFailure> {
        guard path.hasPrefix("/") else {
            return .failure(.notRunnable("\(what) '\(HookText.escape(path))' is not absolute; give its full path"))
        }
        switch resolve(path) {
        case .success(let resolved):
            guard resolved.status.st_mode & mode_t(S_IFMT) == mode_t(S_IFDIR) else {
                return .failure(.notRunnable("\(what) \(HookText.escape(resolved.path)) is not a directory"))
            }
            return .success(resolved.path)
        case .failure(let failure):
            return .failure(failure)
        }
    }

    /// Whether nothing is at `path` (following symlinks): ENOENT or ENOTDIR.
    static func isMissing(_ path: String) -> Bool {
        var st = stat()
        guard stat(path, &st) != 0 else { return false }
        return errno == ENOENT || errno == ENOTDIR
    }

    /// Checks one regular file in a checked directory when it exists (writ_hook.py): owned by a
    /// trusted user and not writable by group or others. nil when fine or absent.
    static func checkOptionalFile(_ path: String) -> HookFailure? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        let shown = HookText.escape(path)
        if !trusted(st.st_uid) { return .notRunnable(untrustedOwner(shown, st.st_uid)) }
        if st.st_mode & mode_t(S_IFMT) != mode_t(S_IFREG) {
            return .notRunnable("\(shown) is not a regular file; install writ_hook.py as a plain file")
        }
        if st.st_mode & 0o022 != 0 {
            return .notRunnable("\(shown) is writable by group or others; run: chmod go-w \(shown)")
        }
        return nil
    }

    /// Whether `uid` may own what a hook's path passes through.
    static func trusted(_ uid: uid_t) -> Bool {
        uid == 0 || uid == geteuid()
    }

    static func untrustedOwner(_ shown: String, _ uid: uid_t) -> String {
        let who = geteuid() == 0 ? "root" : "root or uid \(geteuid()) (writd's own)"
        return "\(shown) is owned by uid \(uid), not \(who); run: chown root: \(shown)"
    }

    typealias Resolved = RootOnlyPath.Resolved

    /// Resolves `path` through trusted directories and symlinks to its final entry (not a
    /// symlink), which must be owned by a trusted user too; its type is the caller's to check.
    /// WritStore's `RootOnlyPath.resolve` does the walk; this says what each refusal means for
    /// a hook and how to fix it.
    static func resolve(_ path: String) -> Result<Resolved, HookFailure> {
        let me = geteuid()
        switch RootOnlyPath.resolve(path, alsoTrusting: me == 0 ? nil : me, allowSticky: true) {
        case .success(let resolved):
            return .success(resolved)
        case .failure(let refusal):
            return .failure(.notRunnable(explain(refusal, path)))
        }
    }

    static func explain(_ refusal: RootOnlyPath.Refusal, _ path: String) -> String {
        switch refusal {
        case .notAbsolute:
            return "'\(HookText.escape(path))' is not absolute; give its full path"
        case .cannotExamine(let at, let error) where error == ENOENT:
            return "\(HookText.escape(at)) does not exist; install the hook there (owned by root, mode 0755) or fix "
                + "the path in the policy"
        case .cannotExamine(let at, let error):
            return "cannot examine \(HookText.escape(at)): \(errorText(error))"
        case .inProcfs(let at):
            return "\(HookText.escape(at)) is in /proc; install the hook in a root-owned directory"
        case .untrustedOwner(let at, let uid):
            return untrustedOwner(HookText.escape(at), uid_t(uid))
        case .writableDirectory(let at):
            let shown = HookText.escape(at)
            return "directory \(shown) is writable by group or others; run: chmod go-w \(shown)"
        case .tooManyLinks(let at):
            return "\(HookText.escape(at)): too many symbolic links, or an unreadable one"
        case .notADirectory(let at):
            return "\(HookText.escape(at)) is not a directory; fix the path in the policy"
        }
    }

    static func errorText(_ error: Int32) -> String {
        String(cString: strerror(error))
    }
}
