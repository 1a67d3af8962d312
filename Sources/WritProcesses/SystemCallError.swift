import Glibc

/// A C call that failed: its name and the errno it left.
struct SystemCallError: Error, Equatable, CustomStringConvertible {
    let call: String
    let errno: Int32

    init(_ call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    var description: String { "\(call): \(String(cString: strerror(errno)))" }
}
