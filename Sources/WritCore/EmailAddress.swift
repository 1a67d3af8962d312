/// Email addresses as Writ compares them. Slack, PagerDuty and mail systems treat two addresses
/// that differ by a non-ASCII look-alike (`K`, U+212A KELVIN SIGN, against `K`) as different
/// people, while Unicode case mapping makes them equal. So Writ compares addresses only after
/// ASCII case folding, and only addresses that are ASCII throughout; any other address matches
/// nobody.
public enum EmailAddress {
    /// `text` with `A`–`Z` lowered, or nil when it is empty or holds a byte outside printable
    /// ASCII (a non-ASCII letter, a space, a control character).
    public static func folded(_ text: String) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case 0x41...0x5A: bytes.append(byte + 0x20)
            case 0x21...0x7E: bytes.append(byte)
            default: return nil
            }
        }
        return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
    }

    /// Whether `a` and `b` are one address: both ASCII and equal after ASCII case folding.
    public static func same(_ a: String, _ b: String) -> Bool {
        guard let a = folded(a), let b = folded(b) else { return false }
        return a == b
    }
}
