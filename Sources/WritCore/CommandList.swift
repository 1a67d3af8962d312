/// The stored form of a grant's command scope: a JSON array of argv arrays, e.g.
/// `[["/usr/bin/systemctl","restart","nginx"],["/usr/bin/journalctl"]]`. A pattern with no
/// arguments allowed is stored as `[path, ""]`, as it is typed.
///
/// JSON keeps the column readable with the `sqlite3` shell; this small codec keeps Foundation out
/// of the modules loaded into sshd and sudo.
public enum CommandList {
    public static func encode(_ patterns: [CommandPattern]) -> String {
        var out = "["
        for (i, p) in patterns.enumerated() {
            if i > 0 { out += "," }
            var words = [p.path]
            if let args = p.arguments { words += args.isEmpty ? [""] : args }
            out += "[" + words.map(JSONText.quote).joined(separator: ",") + "]"
        }
        return out + "]"
    }

    public static func decode(_ text: String) throws(CommandPatternError) -> [CommandPattern] {
        var parser = Parser(bytes: Array(text.utf8))
        let arrays = try parser.arrayOfStringArrays()
        return try arrays.map { (words: [String]) throws(CommandPatternError) -> CommandPattern in
            guard let path = words.first, path.hasPrefix("/") else { throw .malformedEncoding }
            let rest = Array(words.dropFirst())
            return CommandPattern(path: path, arguments: rest.isEmpty ? nil : (rest == [""] ? [] : rest))
        }
    }

    /// A strict parser for exactly the shape above; anything else is `.malformedEncoding`.
    struct Parser {
        let bytes: [UInt8]
        var i = 0

        mutating func skipSpace() {
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x09 || bytes[i] == 0x0D {
                i += 1
            }
        }

        mutating func expect(_ c: UInt8) throws(CommandPatternError) {
            skipSpace()
            guard i < bytes.count, bytes[i] == c else { throw .malformedEncoding }
            i += 1
        }

        mutating func peek(_ c: UInt8) -> Bool {
            skipSpace()
            return i < bytes.count && bytes[i] == c
        }

        mutating func arrayOfStringArrays() throws(CommandPatternError) -> [[String]] {
            try expect(UInt8(ascii: "["))
            var result: [[String]] = []
            if peek(UInt8(ascii: "]")) {
                i += 1
            } else {
                while true {
                    result.append(try stringArray())
                    if peek(UInt8(ascii: ",")) {
                        i += 1
                        continue
                    }
                    try expect(UInt8(ascii: "]"))
                    break
                }
            }
            skipSpace()
            guard i == bytes.count else { throw .malformedEncoding }
            return result
        }

        mutating func stringArray() throws(CommandPatternError) -> [String] {
            try expect(UInt8(ascii: "["))
            var result: [String] = []
            if peek(UInt8(ascii: "]")) {
                i += 1
                return result
            }
            while true {
                result.append(try string())
                if peek(UInt8(ascii: ",")) {
                    i += 1
                    continue
                }
                try expect(UInt8(ascii: "]"))
                return result
            }
        }

        mutating func string() throws(CommandPatternError) -> String {
            try expect(UInt8(ascii: "\""))
            var out: [UInt8] = []
            while i < bytes.count {
                let c = bytes[i]
                i += 1
                switch c {
                case UInt8(ascii: "\""):
                    return String(decoding: out, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard i < bytes.count else { throw .malformedEncoding }
                    let e = bytes[i]
                    i += 1
                    switch e {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "u"):
                        guard i + 4 <= bytes.count else { throw .malformedEncoding }
                        var v: UInt32 = 0
                        for _ in 0..<4 {
                            guard let d = hexValue(bytes[i]) else { throw .malformedEncoding }
                            v = v << 4 | d
                            i += 1
                        }
                        // Any scalar JSONText.quote escapes; surrogates (no scalar) are refused.
                        guard let scalar = Unicode.Scalar(v) else { throw .malformedEncoding }
                        out.append(contentsOf: String(scalar).utf8)
                    default: throw .malformedEncoding
                    }
                default:
                    guard c >= 0x20 else { throw .malformedEncoding }
                    out.append(c)
                }
            }
            throw .malformedEncoding
        }

        func hexValue(_ c: UInt8) -> UInt32? {
            switch c {
            case 48...57: UInt32(c - 48)
            case 97...102: UInt32(c - 87)
            case 65...70: UInt32(c - 55)
            default: nil
            }
        }
    }
}
