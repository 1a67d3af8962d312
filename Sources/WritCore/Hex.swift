/// Lowercase hexadecimal, the one encoder for digests, signatures and identifiers.
public enum Hex {
    /// Two lowercase hex digits per byte (`[0xab, 0x01]` → `ab01`).
    public static func lowercase(_ bytes: some Sequence<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            out.append(digit(byte >> 4))
            out.append(digit(byte & 0xF))
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The low `count` hex digits of `value`, zero-padded (`0x2a`, 4 → `002a`).
    public static func digits(_ value: UInt64, count: Int) -> String {
        var out = [UInt8](repeating: 0x30, count: count)
        var rest = value
        for i in stride(from: count - 1, through: 0, by: -1) {
            out[i] = digit(UInt8(rest & 0xF))
            rest >>= 4
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func digit(_ nibble: UInt8) -> UInt8 { nibble < 10 ? 0x30 + nibble : 0x57 + nibble }
}

/// Random identifiers (`g_…` grants, `r_…` requests, `e_…` audit records): a prefix and hex
/// digits from the system CSPRNG (`getrandom` on Linux, through `SystemRandomNumberGenerator`).
public enum RandomID {
    /// `prefix` and `hexDigits` (at most 16) random lowercase hex digits.
    public static func make(_ prefix: String, hexDigits: Int) -> String {
        var rng = SystemRandomNumberGenerator()
        return prefix + Hex.digits(rng.next() as UInt64, count: min(hexDigits, 16))
    }
}
