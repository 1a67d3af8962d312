/// Durations as people type them: `90s`, `30m`, `4h`, `2d`, `1h30m`.
public enum DurationText {
    /// Parses a duration into seconds.
    public static func parse(_ text: String) throws(DurationError) -> Int64 {
        guard !text.isEmpty else { throw .malformed(text) }
        var total: Int64 = 0
        var number: Int64? = nil
        var sawUnit = false
        for c in text.utf8 {
            switch c {
            case 48...57:
                let (m, o1) = (number ?? 0).multipliedReportingOverflow(by: 10)
                let (s, o2) = m.addingReportingOverflow(Int64(c - 48))
                guard !o1, !o2, s < 1_000_000_000 else { throw .tooLong(text) }
                number = s
            case UInt8(ascii: "s"), UInt8(ascii: "m"), UInt8(ascii: "h"), UInt8(ascii: "d"), UInt8(ascii: "w"):
                guard let n = number else { throw .malformed(text) }
                let unit: Int64 =
                    switch c {
                    case UInt8(ascii: "s"): 1
                    case UInt8(ascii: "m"): 60
                    case UInt8(ascii: "h"): 3600
                    case UInt8(ascii: "d"): 86400
                    default: 604_800
                    }
                let (v, o1) = n.multipliedReportingOverflow(by: unit)
                let (t, o2) = total.addingReportingOverflow(v)
                guard !o1, !o2 else { throw .tooLong(text) }
                total = t
                number = nil
                sawUnit = true
            default:
                throw .malformed(text)
            }
        }
        guard number == nil, sawUnit else { throw .malformed(text) }
        return total
    }

    /// Formats seconds the short way: `45s`, `23m`, `4h05m`, `2d03h`.
    public static func format(_ seconds: Int64) -> String {
        let s = max(0, seconds)
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m" + (s % 60 == 0 ? "" : pad(s % 60) + "s") }
        if s < 86400 { return "\(s / 3600)h" + (s % 3600 / 60 == 0 ? "" : pad(s % 3600 / 60) + "m") }
        return "\(s / 86400)d" + (s % 86400 / 3600 == 0 ? "" : pad(s % 86400 / 3600) + "h")
    }

    static func pad(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
}

/// Why a duration was refused.
public enum DurationError: Error, Equatable, CustomStringConvertible {
    case malformed(String)
    case tooLong(String)

    public var description: String {
        switch self {
        case .malformed(let t):
            "\"\(LogText.escape(t))\" is not a duration: use a number and a unit, e.g. 90s, 30m, 4h, 1h30m, 2d"
        case .tooLong(let t): "duration \"\(LogText.escape(t))\" is too long"
        }
    }
}
