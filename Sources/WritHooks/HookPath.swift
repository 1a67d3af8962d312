import Glibc

/// The checks on a hook's path (and on the Python library directory) before each run.
///
/// Like WritStore's `RootOnlyPath`: the path is resolved component by component the way the
/// kernel will, and every directory and symlink it passes through, and the file itself, must be
/// owned by a trusted user and not writable by group or others — so nobody else can swap the
/// program between the check and execve. Trusted is root; when writd does not run as root (tests,
/// a developer's machine), its own uid as well. A sticky directory (/tmp) is accepted as a parent,
/// since no one but an entry's owner may rename that entry, and the entries below are checked.
/// Unlike `RootOnlyPath`, which answers yes or no, each refusal here says what is wrong and
/// how to fix it, for `HookFailure.notRunnable`.
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

    struct Resolved {
        var path: String
        var status: stat
    }

    /// Resolves `path` through trusted directories and symlinks to its final entry (not a
    /// symlink), which must be owned by a trusted user too; its type is the caller's to check.
    static func resolve(_ path: String) -> Result<Resolved, HookFailure> {
        var proc = stat()
        let procDevice: UInt64? = stat("/proc", &proc) == 0 ? UInt64(proc.st_dev) : nil
        var root = stat()
        guard lstat("/", &root) == 0 else { return .failure(.notRunnable("cannot examine /: \(errorText(errno))")) }
        if let refusal = directoryRefusal("/", root) { return .failure(.notRunnable(refusal)) }

        var pending = components(path)
        var resolved: [String] = []
        var last = root
        var links = 0
        while !pending.isEmpty {
            let component = pending.removeFirst()
            if component.isEmpty || component == "." { continue }
            if component == ".." {
                if !resolved.isEmpty { resolved.removeLast() }
                continue
            }
            let candidate = "/" + (resolved + [component]).joined(separator: "/")
            let shown = HookText.escape(candidate)
            var st = stat()
            guard lstat(candidate, &st) == 0 else {
                let error = errno
                if error == ENOENT {
                    return .failure(
                        .notRunnable(
                            "\(shown) does not exist; install the hook there (owned by root, mode 0755) or fix the "
                                + "path in the policy"
                        )
                    )
                }
                return .failure(.notRunnable("cannot examine \(shown): \(errorText(error))"))
            }
            if let procDevice, UInt64(st.st_dev) == procDevice {
                return .failure(.notRunnable("\(shown) is in /proc; install the hook in a root-owned directory"))
            }
            guard trusted(st.st_uid) else { return .failure(.notRunnable(untrustedOwner(shown, st.st_uid))) }
            switch st.st_mode & mode_t(S_IFMT) {
            case mode_t(S_IFLNK):
                links += 1
                guard links <= 40, let target = readLink(candidate) else {
                    return .failure(.notRunnable("\(shown): too many symbolic links, or an unreadable one"))
                }
                if target.hasPrefix("/") { resolved.removeAll() }
                pending = components(target) + pending
            case mode_t(S_IFDIR):
                if let refusal = directoryRefusal(shown, st) { return .failure(.notRunnable(refusal)) }
                resolved.append(component)
                last = st
            default:
                guard pending.allSatisfy({ $0.isEmpty || $0 == "." }) else {
                    return .failure(.notRunnable("\(shown) is not a directory; fix the path in the policy"))
                }
                return .success(Resolved(path: candidate, status: st))
            }
        }
        return .success(Resolved(path: "/" + resolved.joined(separator: "/"), status: last))
    }

    /// Why a directory on the way is not safe, or nil: it must not be writable by group or
    /// others, unless it has the sticky bit.
    static func directoryRefusal(_ shown: String, _ st: stat) -> String? {
        if st.st_mode & 0o022 != 0 && st.st_mode & mode_t(S_ISVTX) == 0 {
            return "directory \(shown) is writable by group or others; run: chmod go-w \(shown)"
        }
        return nil
    }

    static func components(_ path: String) -> [String] {
        path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
    }

    /// `readlink(2)`; nil when the target is not valid UTF-8 or longer than PATH_MAX.
    static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4097)
        let n = buffer.withUnsafeMutableBufferPointer { readlink(path, $0.baseAddress!, 4096) }
        guard n > 0, n < 4096 else { return nil }
        buffer[n] = 0
        return buffer.withUnsafeBufferPointer { String(validatingCString: $0.baseAddress!) }
    }

    static func errorText(_ error: Int32) -> String {
        String(cString: strerror(error))
    }
}
