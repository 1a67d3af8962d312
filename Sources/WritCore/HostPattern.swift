/// Shell-style glob matching for host and run-as scopes: `*` matches any run of bytes, `?` one
/// byte (patterns are ASCII: the CLI refuses anything else); everything else matches itself, ASCII
/// case-insensitively for host names.
public enum Glob {
    /// Whether `pattern` matches the whole of `text`.
    public static func matches(_ pattern: String, _ text: String, caseInsensitive: Bool = true) -> Bool {
        let p = Array(pattern.utf8)
        let t = Array(text.utf8)
        // Iterative matcher with single backtrack point: linear in practice, never exponential.
        var pi = 0
        var ti = 0
        var starP = -1
        var starT = 0
        @inline(__always) func eq(_ a: UInt8, _ b: UInt8) -> Bool {
            if a == b { return true }
            guard caseInsensitive else { return false }
            return lower(a) == lower(b)
        }
        while ti < t.count {
            if pi < p.count, p[pi] == UInt8(ascii: "*") {
                starP = pi
                starT = ti
                pi += 1
            } else if pi < p.count, p[pi] == UInt8(ascii: "?") || eq(p[pi], t[ti]) {
                pi += 1
                ti += 1
            } else if starP >= 0 {
                pi = starP + 1
                starT += 1
                ti = starT
            } else {
                return false
            }
        }
        while pi < p.count, p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }

    @inline(__always) static func lower(_ c: UInt8) -> UInt8 {
        (c >= 65 && c <= 90) ? c + 32 : c
    }
}

/// The names a host answers to: its kernel host name, and the short name before the first dot.
public struct HostIdentity: Sendable, Hashable {
    public var names: [String]

    /// - Parameter nodename: the kernel host name (`uname -n`), which may or may not be qualified.
    public init(nodename: String) {
        var names = [nodename]
        if let dot = nodename.firstIndex(of: "."), dot != nodename.startIndex {
            names.append(String(nodename[..<dot]))
        }
        self.names = names
    }

    /// The short name, for messages.
    public var shortName: String { names.last ?? "" }

    /// Whether a grant's host scope covers this host.
    public func matches(_ pattern: String) -> Bool {
        names.contains { Glob.matches(pattern, $0) }
    }
}
