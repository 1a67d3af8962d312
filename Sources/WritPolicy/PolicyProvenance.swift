import Glibc

/// Where a policy came from, beyond its content hash: the git commit of the checkout it lives in.
///
/// Read from the files under `.git` (HEAD, the ref it names, packed-refs), never by running git:
/// writd is root, and running git in a directory someone else may control runs their config.
/// The commit is what HEAD names; the content hash recorded next to it is what was in force (a
/// file edited after the commit has the same commit and a different hash).
public enum PolicyProvenance {
    /// The commit HEAD names in the git checkout holding `path`, or nil (not a checkout, a detached
    /// or unborn HEAD that names nothing readable, unreadable files).
    public static func gitCommit(forFileAt path: String) -> String? {
        guard let gitDir = gitDirectory(containing: path) else { return nil }
        guard let head = read(gitDir + "/HEAD")?.trimmed else { return nil }
        if isHash(head) { return head }
        guard head.hasPrefix("ref: ") else { return nil }
        let ref = String(head.dropFirst(5))
        // A ref name is a path under .git: nothing that could climb out of it.
        guard ref.hasPrefix("refs/"), !ref.split(separator: "/").contains("..") else { return nil }
        if let loose = read(gitDir + "/" + ref)?.trimmed, isHash(loose) { return loose }
        // Refs git has packed: "<hash> <ref>" lines.
        for line in (read(gitDir + "/packed-refs") ?? "").split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[1] == ref, isHash(String(parts[0])) { return String(parts[0]) }
        }
        return nil
    }

    /// The `.git` directory of the checkout holding `path`: `.git` in its directory or a parent
    /// (a directory, or a file "gitdir: …" as in worktrees and submodules).
    static func gitDirectory(containing path: String) -> String? {
        var dir = absoluteDirectory(of: path)
        for _ in 0..<64 {
            let candidate = (dir == "/" ? "" : dir) + "/.git"
            var st = stat()
            if lstat(candidate, &st) == 0 {
                if st.st_mode & S_IFMT == S_IFDIR { return candidate }
                if st.st_mode & S_IFMT == S_IFREG, let text = read(candidate)?.trimmed, text.hasPrefix("gitdir: ") {
                    let target = String(text.dropFirst(8))
                    return target.hasPrefix("/") ? target : (dir == "/" ? "" : dir) + "/" + target
                }
                return nil
            }
            if dir == "/" { return nil }
            dir = parent(of: dir)
        }
        return nil
    }

    static func absoluteDirectory(of path: String) -> String {
        var full = path
        if !path.hasPrefix("/") {
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            guard getcwd(&buffer, buffer.count) != nil else { return "/" }
            let cwd = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            full = cwd + "/" + path
        }
        return parent(of: full)
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "/" }
        let p = String(path[..<slash])
        return p.isEmpty ? "/" : p
    }

    static func isHash(_ s: String) -> Bool {
        (s.utf8.count == 40 || s.utf8.count == 64)
            && s.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }

    /// A small regular file's text (at most 1 MiB), or nil. Opened non-blocking and checked to be
    /// a regular file: a FIFO planted as `.git/HEAD` must not hang writd's policy load.
    static func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { return nil }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 8192)
        while out.count <= 1 << 20 {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            out += chunk[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension String {
    fileprivate var trimmed: String { PolicyParser.trimmed(self) }
}
