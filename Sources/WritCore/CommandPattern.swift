/// One command a scoped sudo grant allows, with sudoers' conventions:
///
/// - `/usr/bin/systemctl` — that program with any arguments;
/// - `/usr/bin/systemctl restart nginx` — exactly these arguments;
/// - `/usr/bin/systemctl ""` — that program with no arguments.
///
/// The path is absolute; the CLI stores it with its directory resolved (`/bin/ls` becomes
/// `/usr/bin/ls` on a merged-/usr system). It is compared byte for byte with the command sudo
/// resolved (`command=` in sudo's command_info), or through `samePath`, which the caller supplies:
/// the same file name in a directory that resolves to the granted one through directories only
/// root can change. Never by device and inode: `rbash` is `bash`, and multi-call binaries are
/// one file under many names.
public struct CommandPattern: Sendable, Hashable, CustomStringConvertible {
    public var path: String
    /// `nil`: any arguments. `[]`: no arguments. Otherwise exactly these.
    public var arguments: [String]?

    public init(path: String, arguments: [String]?) {
        self.path = path
        self.arguments = arguments
    }

    /// Parses `PATH [ARGS…]` as typed on a command line: whitespace separates words, single and
    /// double quotes group, backslash escapes the next character.
    public init(parsing line: String) throws(CommandPatternError) {
        let words = try Self.split(line)
        guard let path = words.first else { throw .empty }
        guard path.hasPrefix("/") else { throw .notAbsolute(path) }
        // C0, DEL and C1 controls: nothing a real command line needs, and what log forgery uses.
        for word in words
        where word.unicodeScalars.contains(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }) {
            throw .controlCharacter
        }
        self.path = path
        let rest = Array(words.dropFirst())
        if rest.isEmpty {
            arguments = nil
        } else if rest == [""] {
            arguments = []
        } else {
            arguments = rest
        }
    }

    /// Whether `argv` (argv[0] being the program as sudo resolved it) is allowed by this pattern.
    /// - Parameter samePath: decides whether two absolute paths name the same program; the caller
    ///   supplies it because it needs the file system.
    public func matches(
        command: String,
        arguments argv: ArraySlice<String>,
        samePath: (String, String) -> Bool
    )
        -> Bool
    {
        // Bytes, not String equality: Swift's == treats canonically equivalent Unicode as equal,
        // and a program receives bytes. A decomposed "é" must not pass for a precomposed one.
        guard path.utf8.elementsEqual(command.utf8) || samePath(path, command) else { return false }
        guard let expected = arguments else { return true }
        return expected.elementsEqual(argv) { $0.utf8.elementsEqual($1.utf8) }
    }

    public var description: String {
        var words = [Self.quote(path)]
        if let arguments {
            if arguments.isEmpty { words.append("\"\"") }
            words.append(contentsOf: arguments.map(Self.quote))
        }
        return words.joined(separator: " ")
    }

    static func quote(_ word: String) -> String {
        if !word.isEmpty,
            !word.utf8.contains(where: { $0 == 0x20 || $0 == 0x27 || $0 == 0x22 || $0 == 0x5C || $0 == 0x09 })
        {
            return word
        }
        return "'" + word.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
    }

    static func split(_ line: String) throws(CommandPatternError) -> [String] {
        var words: [String] = []
        var current: [UInt8] = []
        var inWord = false
        var quote: UInt8? = nil
        var escaped = false
        for c in line.utf8 {
            if escaped {
                current.append(c)
                escaped = false
                continue
            }
            if let q = quote {
                if c == q {
                    quote = nil
                } else if c == UInt8(ascii: "\\") && q == UInt8(ascii: "\"") {
                    escaped = true
                } else {
                    current.append(c)
                }
                continue
            }
            switch c {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"):
                if inWord {
                    words.append(String(decoding: current, as: UTF8.self))
                    current.removeAll()
                    inWord = false
                }
            case UInt8(ascii: "'"), UInt8(ascii: "\""):
                quote = c
                inWord = true
            case UInt8(ascii: "\\"):
                escaped = true
                inWord = true
            default:
                current.append(c)
                inWord = true
            }
        }
        if quote != nil || escaped { throw .unbalancedQuote }
        if inWord { words.append(String(decoding: current, as: UTF8.self)) }
        return words
    }
}

/// Why a command pattern was refused.
public enum CommandPatternError: Error, Equatable, CustomStringConvertible {
    case empty
    case notAbsolute(String)
    case unbalancedQuote
    case controlCharacter
    case malformedEncoding

    public var description: String {
        switch self {
        case .empty: "empty command: give an absolute path, e.g. --command \"/usr/bin/systemctl restart nginx\""
        case .notAbsolute(let p):
            "command path \"\(LogText.escape(p))\" is not absolute: give the full path, e.g. /usr/bin/\(LogText.escape(p))"
        case .unbalancedQuote: "unbalanced quote or trailing backslash in command"
        case .controlCharacter: "control characters are not allowed in a command"
        case .malformedEncoding: "stored command list is malformed"
        }
    }
}
