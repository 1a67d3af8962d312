#if canImport(Glibc)
import Glibc
#else
import CLibc  // Embedded Swift build of the module: no Glibc overlay
#endif

/// Resolves a path the way the kernel will, refusing it unless every directory and symlink it
/// passes through — including inside symlink targets — can be changed by root alone.
///
/// That is what makes a name safe to check now and use later (sudo's exec, SQLite's open): nobody
/// but root can make it lead elsewhere in between. `realpath` followed by a check of the result is
/// not enough: a root-owned `/opt/app -> /home/alice/app` resolves through alice's own symlink,
/// which she can repoint after the check. procfs is refused outright: `/proc/self/cwd` and its
/// kind mean something else in every process.
package enum RootOnlyPath {
    /// The resolved directory, or nil when `path` is not absolute, does not resolve to a
    /// directory, or passes through anything someone other than root could change.
    /// - Parameter allowSticky: accept root-owned world-writable directories with the sticky bit
    ///   (/tmp), where no one but an entry's owner may rename that entry, and every entry below is
    ///   checked to be root's.
    /// - Parameter refuseProcfs: false only for paths from root-owned configuration (the store's
    ///   `store=`), where a procfs path is the admin's own doing; spares the hot path a stat.
    package static func resolveDirectory(
        _ path: String,
        allowSticky: Bool = false,
        refuseProcfs: Bool = true
    ) -> String? {
        guard path.hasPrefix("/") else { return nil }
        var proc = stat()
        let procDevice: UInt64? = refuseProcfs && stat("/proc", &proc) == 0 ? UInt64(proc.st_dev) : nil
        var root = stat()
        guard lstat("/", &root) == 0, secureDirectory(root, allowSticky: allowSticky) else { return nil }
        var pending = components(path)
        var resolved: [String] = []
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
            guard lstat(candidate, &st) == 0, st.st_uid == 0 else { return nil }
            if let procDevice, UInt64(st.st_dev) == procDevice { return nil }
            switch st.st_mode & mode_t(S_IFMT) {
            case mode_t(S_IFLNK):
                links += 1
                guard links <= 40, let target = readLink(candidate) else { return nil }
                if target.hasPrefix("/") { resolved.removeAll() }
                pending = components(target) + pending
            case mode_t(S_IFDIR):
                guard secureDirectory(st, allowSticky: allowSticky) else { return nil }
                resolved.append(component)
            default:
                return nil
            }
        }
        return "/" + resolved.joined(separator: "/")
    }

    static func secureDirectory(_ st: stat, allowSticky: Bool) -> Bool {
        st.st_uid == 0 && (st.st_mode & 0o022 == 0 || (allowSticky && st.st_mode & mode_t(S_ISVTX) != 0))
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
