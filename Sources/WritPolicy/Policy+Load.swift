#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Policy {
    /// Policy files are a few kilobytes; anything near this is a mistake (or a device), and
    /// reading it whole would hold that much memory in writd.
    static let maximumFileSize = 4 << 20

    /// Reads and parses the policy file at `path`.
    ///
    /// A file that cannot be read (missing, a directory, no permission) or is not UTF-8 gives one
    /// issue saying why. Ownership and permissions are the caller's to check: writd runs as root
    /// and must refuse a policy that someone else could have written.
    public static func load(path: String) throws(PolicyErrors) -> Policy {
        try parse(bytes: contents(of: path), file: path)
    }

    /// The policy file's bytes (writd hashes exactly what it parses), or one issue saying why not.
    public static func contents(of path: String) throws(PolicyErrors) -> [UInt8] {
        switch readFile(path) {
        case .success(let b): return b
        case .failure(let failure):
            throw PolicyErrors(issues: [PolicyIssue(file: path, line: 1, column: 1, message: failure.message)])
        }
    }

    /// Parses a policy file's bytes; bytes that are not UTF-8 are an issue at their position.
    public static func parse(bytes: [UInt8], file path: String) throws(PolicyErrors) -> Policy {
        if let (line, column) = firstInvalidUTF8(bytes) {
            throw PolicyErrors(issues: [
                PolicyIssue(
                    file: path,
                    line: line,
                    column: column,
                    message: "the file is not valid UTF-8 here: save it as UTF-8"
                )
            ])
        }
        return try parse(String(decoding: bytes, as: UTF8.self), file: path)
    }

    struct ReadFailure: Error {
        var message: String
    }

    /// Reads a whole file with `open(2)`/`read(2)`, retrying `EINTR`.
    static func readFile(_ path: String) -> Result<[UInt8], ReadFailure> {
        func failure(_ what: String, _ code: Int32) -> Result<[UInt8], ReadFailure> {
            .failure(ReadFailure(message: "cannot \(what) the policy file: \(errnoText(code))"))
        }
        var fd: Int32
        repeat { fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY) } while fd < 0 && errno == EINTR
        guard fd >= 0 else { return failure("open", errno) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return failure("read", errno)
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[..<n])
            if bytes.count > maximumFileSize {
                return .failure(
                    ReadFailure(
                        message: "the policy file is larger than \(maximumFileSize >> 20) MiB: is it the right file?"
                    )
                )
            }
        }
        return .success(bytes)
    }

    /// `No such file or directory (errno 2)`.
    static func errnoText(_ code: Int32) -> String {
        guard let text = strerror(code) else { return "errno \(code)" }
        return "\(String(cString: text)) (errno \(code))"
    }

    /// The line and column (in Unicode scalars, as libyaml counts) of the first byte that is not
    /// valid UTF-8, or nil when all are.
    static func firstInvalidUTF8(_ bytes: [UInt8]) -> (line: Int, column: Int)? {
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var line = 1
        var column = 1
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded):
                if encoded.count == 1 && encoded.first == UInt8(ascii: "\n") {
                    line += 1
                    column = 1
                } else {
                    column += 1
                }
            case .emptyInput: return nil
            case .error: return (line, column)
            }
        }
    }
}
