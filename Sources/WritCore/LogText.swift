/// Makes user-supplied text safe for one log line or one terminal line.
public enum LogText {
    /// Escapes control characters (C0, DEL, and the C1 range) so that a reason, a user name or a
    /// command cannot forge log lines or drive a terminal. Backslash and the double quote are
    /// escaped too, so the result is unambiguous and a quoted field (`command="…"`) cannot be
    /// closed early to forge another field.
    public static func escape(_ text: String, limit: Int = 1024) -> String {
        var out = ""
        var count = 0
        for scalar in text.unicodeScalars {
            if count >= limit {
                out += "…"
                break
            }
            count += 1
            switch scalar.value {
            case 0x5C: out += "\\\\"
            case 0x22: out += "\\\""
            case 0x0A: out += "\\n"
            case 0x0D: out += "\\r"
            case 0x09: out += "\\t"
            case 0..<0x20, 0x7F, 0x80..<0xA0, 0x2028, 0x2029, 0x202A...0x202E, 0x2066...0x2069:
                out += "\\u{" + String(scalar.value, radix: 16) + "}"
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
