// Used by the CLI and writd when they write a command grant; not part of the modules' hot path
// (the Embedded build of the module has no Glibc overlay and skips this file).
#if canImport(Glibc)
import Glibc
import WritCore

extension RootOnlyPath {
    /// The path a command grant stores: the program's directory resolved (symlinks followed),
    /// its own name kept. Refuses a program that anyone but root can replace: a grant for it
    /// would allow anything, and the modules would refuse it at sudo time anyway.
    package static func canonicalProgram(_ path: String) throws(StoreError) -> String {
        let slash = path.lastIndex(of: "/") ?? path.startIndex
        let dir = String(path[..<slash])
        let name = String(path[path.index(after: slash)...])
        guard !name.isEmpty else {
            throw .invalid("command \(LogText.escape(path)) names a directory, not a program")
        }
        guard let resolved = realpath(dir.isEmpty ? "/" : dir, nil) else {
            throw .invalid("command directory \(LogText.escape(dir)) does not exist on this host")
        }
        defer { free(resolved) }
        let real = String(cString: resolved)
        let canonical = (real == "/" ? "" : real) + "/" + name
        guard isRootOnlyProgram(canonical) else {
            throw .invalid(
                "\(LogText.escape(canonical)) is missing, or it or a directory above it can be changed by users other than root — a command grant for it would allow anything"
            )
        }
        return canonical
    }
}
#endif
