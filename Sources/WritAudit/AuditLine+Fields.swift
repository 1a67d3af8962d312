extension AuditLine {
    /// The fields of one audit line in their order, values as text (numbers as written). Only the
    /// flat objects `render` writes are understood; anything else is nil.
    public static func flatFields(_ line: String) -> [(String, String)]? {
        var p = FlatParser(bytes: Array(line.utf8))
        return p.object()
    }

    /// One field's value, or nil.
    public static func field(_ name: String, in line: String) -> String? {
        flatFields(line)?.first { $0.0 == name }?.1
    }
}

private struct FlatParser {
    let bytes: [UInt8]
    var i = 0

    mutating func object() -> [(String, String)]? {
        guard eat(UInt8(ascii: "{")) else { return nil }
        var out: [(String, String)] = []
        if eat(UInt8(ascii: "}")) { return i == bytes.count ? out : nil }
        while true {
            guard let key = string(), eat(UInt8(ascii: ":")) else { return nil }
            let value: String
            if i < bytes.count, bytes[i] == UInt8(ascii: "\"") {
                guard let s = string() else { return nil }
                value = s
            } else {
                let start = i
                while i < bytes.count, bytes[i] == UInt8(ascii: "-") || (bytes[i] >= 0x30 && bytes[i] <= 0x39) {
                    i += 1
                }
                guard i > start else { return nil }
                value = String(decoding: bytes[start..<i], as: UTF8.self)
            }
            out.append((key, value))
            if eat(UInt8(ascii: ",")) { continue }
            guard eat(UInt8(ascii: "}")), i == bytes.count else { return nil }
            return out
        }
    }

    mutating func eat(_ b: UInt8) -> Bool {
        guard i < bytes.count, bytes[i] == b else { return false }
        i += 1
        return true
    }

    mutating func string() -> String? {
        guard eat(UInt8(ascii: "\"")) else { return nil }
        var out: [UInt8] = []
        while i < bytes.count {
            let b = bytes[i]
            i += 1
            if b == UInt8(ascii: "\"") { return String(decoding: out, as: UTF8.self) }
            guard b == UInt8(ascii: "\\") else {
                out.append(b)
                continue
            }
            guard i < bytes.count else { return nil }
            let e = bytes[i]
            i += 1
            switch e {
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "u"):
                guard i + 4 <= bytes.count,
                    let v = UInt32(String(decoding: bytes[i..<(i + 4)], as: UTF8.self), radix: 16)
                else { return nil }
                i += 4
                out += Array(String(Unicode.Scalar(v).map(Character.init) ?? "\u{FFFD}").utf8)
            default: out.append(e)
            }
        }
        return nil
    }
}
