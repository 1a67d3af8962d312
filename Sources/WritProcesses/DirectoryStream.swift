import Glibc

/// An open directory stream (`DIR *`) with exactly one owner, which closes it.
struct DirectoryStream: ~Copyable {
    private let stream: OpaquePointer

    /// `opendir(3)`, retrying EINTR.
    init(_ path: String) throws(SystemCallError) {
        while true {
            if let stream = opendir(path) {
                self.stream = stream
                return
            }
            if errno != EINTR { throw SystemCallError("opendir \(path)", errno: errno) }
        }
    }

    deinit {
        _ = closedir(stream)
    }

    /// `readdir(3)`: the names of all entries, `.` and `..` included.
    func names() throws(SystemCallError) -> [[UInt8]] {
        var names: [[UInt8]] = []
        while true {
            errno = 0
            guard let entry = readdir(stream) else {
                if errno != 0 { throw SystemCallError("readdir", errno: errno) }
                return names
            }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                Array(raw.prefix { $0 != 0 })
            }
            names.append(name)
        }
    }
}
