/// JSON string literals without Foundation: for the store's command lists and the audit log,
/// whose lines must be byte-for-byte reproducible (they are hashed).
public enum JSONText {
    /// `s` as a JSON string literal. Control characters (C0, DEL, C1) and the line and paragraph
    /// separators are escaped, so a literal never breaks a line or drives a terminal.
    public static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                let v = scalar.value
                if v < 0x20 || (0x7F...0x9F).contains(v) || v == 0x2028 || v == 0x2029 {
                    out += "\\u" + hex4(v)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    static func hex4(_ v: UInt32) -> String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        let bytes = [
            digits[Int(v >> 12 & 0xF)], digits[Int(v >> 8 & 0xF)], digits[Int(v >> 4 & 0xF)], digits[Int(v & 0xF)],
        ]
        return String(decoding: bytes, as: UTF8.self)
    }
}
