#if canImport(Glibc)
import Glibc
#else
import CLibc  // Embedded Swift build of the module: no Glibc overlay
#endif

/// Resolves a path the way the kernel will, refusing it unless every directory and symlink it
/// passes through — including inside symlink targets — can be changed by trusted users alone
/// (root; for hooks run by a writd that is not root, its own uid too).
///
/// That is what makes a name safe to check now and use later (sudo's exec, SQLite's open, a
/// hook's execve): nobody else can make it lead elsewhere in between. `realpath` followed by a
/// check of the result is not enough: a root-owned `/opt/app -> /home/alice/app` resolves through
/// alice's own symlink, which she can repoint after the check. procfs is refused outright:
/// `/proc/self/cwd` and its kind mean something else in every process. This is the one resolver:
/// the modules, writd, the CLI and the hook runner all use it, and each says the refusal its
/// own way.
package enum RootOnlyPath {
    /// Where resolution ended: the final entry (not a symlink) and its `lstat`.
    package struct Resolved {
        package var path: String
        package var status: stat
    }

    /// Why a path was refused; `path` is the entry where it happened.
    package enum Refusal: Error, Equatable {
        case notAbsolute
        /// `lstat` failed with `errno` (ENOENT: nothing there).
        case cannotExamine(path: String, errno: Int32)
        case inProcfs(path: String)
        case untrustedOwner(path: String, uid: UInt32)
        /// A directory writable by group or others (and not sticky, where sticky is allowed).
        case writableDirectory(path: String)
        case tooManyLinks(path: String)
        /// Something other than a directory with more of the path after it.
        case notADirectory(path: String)
    }

    /// Resolves `path` component by component to its final entry, which must be owned by a
    /// trusted user too; its type and mode are the caller's to check.
    /// - Parameter alsoTrusting: a uid trusted beside root (writd's own, when it is not root).
    /// - Parameter allowSticky: accept world-writable directories with the sticky bit (/tmp),
    ///   where no one but an entry's owner may rename that entry; every entry below is checked.
    /// - Parameter refuseProcfs: false only for paths from root-owned configuration (the store's
    ///   `store=`), where a procfs path is the admin's own doing; spares the hot path a stat.
    package static func resolve(
        _ path: String,
        alsoTrusting: UInt32? = nil,
        allowSticky: Bool = false,
        refuseProcfs: Bool = true
    ) -> Result<Resolved, Refusal> {
        guard path.hasPrefix("/") else { return .failure(.notAbsolute) }
        func trusted(_ uid: uid_t) -> Bool { uid == 0 || (alsoTrusting.map { uid == $0 } ?? false) }
        func writable(_ st: stat) -> Bool {
            st.st_mode & 0o022 != 0 && !(allowSticky && st.st_mode & mode_t(S_ISVTX) != 0)
        }
        var proc = stat()
        let procDevice: UInt64? = refuseProcfs && stat("/proc", &proc) == 0 ? UInt64(proc.st_dev) : nil
        var root = stat()
        guard lstat("/", &root) == 0 else { return .failure(.cannotExamine(path: "/", errno: errno)) }
        guard trusted(root.st_uid) else { return .failure(.untrustedOwner(path: "/", uid: UInt32(root.st_uid))) }
        if writable(root) { return .failure(.writableDirectory(path: "/")) }
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
            var st = stat()
            guard lstat(candidate, &st) == 0 else { return .failure(.cannotExamine(path: candidate, errno: errno)) }
            if let procDevice, UInt64(st.st_dev) == procDevice { return .failure(.inProcfs(path: candidate)) }
            guard trusted(st.st_uid) else { return .failure(.untrustedOwner(path: candidate, uid: UInt32(st.st_uid))) }
            switch st.st_mode & mode_t(S_IFMT) {
            case mode_t(S_IFLNK):
                links += 1
                guard links <= 40, let target = readLink(candidate) else {
                    return .failure(.tooManyLinks(path: candidate))
                }
                if target.hasPrefix("/") { resolved.removeAll() }
                pending = components(target) + pending
            case mode_t(S_IFDIR):
                if writable(st) { return .failure(.writableDirectory(path: candidate)) }
                resolved.append(component)
                last = st
            default:
                // The kernel refuses anything after a file, even "." or "..".
                guard pending.isEmpty else { return .failure(.notADirectory(path: candidate)) }
                return .success(Resolved(path: candidate, status: st))
            }
        }
        return .success(Resolved(path: "/" + resolved.joined(separator: "/"), status: last))
    }

    /// The resolved directory, or nil when `path` is not absolute, does not resolve to a
    /// directory, or passes through anything someone other than root could change.
    package static func resolveDirectory(
        _ path: String,
        allowSticky: Bool = false,
        refuseProcfs: Bool = true
    ) -> String? {
        guard case .success(let r) = resolve(path, allowSticky: allowSticky, refuseProcfs: refuseProcfs),
            r.status.st_mode & mode_t(S_IFMT) == mode_t(S_IFDIR)
        else { return nil }
        return r.path
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

    /// Whether `path` is a regular file owned by root that only root can write, in a directory
    /// that resolves through root-only entries: a program sudo may run for a command-limited grant.
    /// A root-owned symlink (`/usr/bin/rbash -> bash`) is followed the same way.
    package static func isRootOnlyProgram(_ path: String) -> Bool {
        var current = path
        for _ in 0..<40 {
            let (dir, name) = StoreFile.split(current)
            guard !name.isEmpty, name != ".", name != "..", let real = resolveDirectory(dir) else { return false }
            let full = (real == "/" ? "" : real) + "/" + name
            var st = stat()
            guard lstat(full, &st) == 0, st.st_uid == 0 else { return false }
            switch st.st_mode & mode_t(S_IFMT) {
            case mode_t(S_IFREG):
                return st.st_mode & 0o022 == 0
            case mode_t(S_IFLNK):
                guard let target = readLink(full) else { return false }
                current = target.hasPrefix("/") ? target : (real == "/" ? "" : real) + "/" + target
            default:
                return false
            }
        }
        return false
    }
}
