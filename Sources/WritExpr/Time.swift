/// Durations, timestamps and fixed-offset time zones: parsing, formatting and calendar fields.
///
/// Errors are `EvalError`s; the checker turns them into compile errors for literals.
enum Time {
    /// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, CEL's timestamp range.
    static let minTimestamp: Int64 = -62_135_596_800
    static let maxTimestamp: Int64 = 253_402_300_799
    /// About 10,000 years, CEL's duration range.
    static let maxDuration: Int64 = 315_576_000_000

    /// A string for messages: quoted, control characters escaped, long ones cut.
    static func quoted(_ text: String) -> String {
        var result = ""
        var count = 0
        for scalar in text.unicodeScalars {
            if count == 40 {
                result += "…"
                break
            }
            result +=
                scalar.value < 0x20 || scalar == "\"" || scalar == "\\" ? scalar.escaped(asASCII: true) : String(scalar)
            count += 1
        }
        return "\"\(result)\""
    }

    /// `1h30m`, `90s`, `2d`: whole numbers with units d, h, m and s, in any combination.
    static func parseDuration(_ text: String) throws(EvalError) -> Int64 {
        let bytes = Array(text.utf8)
        let example = "write a whole number and a unit (d, h, m, s), e.g. \"90s\", \"30m\", \"1h30m\", \"2d\""
        guard !bytes.isEmpty else { throw EvalError("an empty string is not a duration: \(example)") }
        if bytes[0] == UInt8(ascii: "-") {
            throw EvalError("durations cannot be negative (\(quoted(text))): subtract a positive duration instead")
        }
        var total: Int64 = 0
        var i = 0
        while i < bytes.count {
            guard isDigit(bytes[i]) else { throw EvalError("\(quoted(text)) is not a duration: \(example)") }
            var number: Int64 = 0
            while i < bytes.count, isDigit(bytes[i]) {
                number = min(number * 10 + Int64(bytes[i] - 48), maxDuration + 1)
                i += 1
            }
            guard i < bytes.count else {
                throw EvalError("\(quoted(text)) has no unit after \(number): add d, h, m or s, e.g. \"\(number)m\"")
            }
            let unit: Int64
            switch bytes[i] {
            case UInt8(ascii: "."):
                throw EvalError("\(quoted(text)) has a fraction: write whole units instead, e.g. \"1h30m\" for 1.5h")
            case UInt8(ascii: "d"): unit = 86_400
            case UInt8(ascii: "h"): unit = 3600
            case UInt8(ascii: "m"):
                if i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: "s") {
                    throw EvalError("\(quoted(text)): milliseconds are not supported; the units are d, h, m and s")
                }
                unit = 60
            case UInt8(ascii: "s"): unit = 1
            default:
                throw EvalError("\(quoted(text)) has an unknown unit: the units are d, h, m and s, e.g. \"1h30m\"")
            }
            i += 1
            total += min(number, maxDuration + 1) * unit
            guard total <= maxDuration else { throw EvalError("\(quoted(text)) is longer than 10,000 years") }
        }
        return total
    }

    private static func isDigit(_ b: UInt8) -> Bool { b >= 48 && b <= 57 }

    /// The number in `bytes[at..<at+count]`, all digits, or nil.
    private static func number(_ bytes: [UInt8], at: Int, count: Int) -> Int64? {
        guard at + count <= bytes.count else { return nil }
        var value: Int64 = 0
        for b in bytes[at..<(at + count)] {
            guard isDigit(b) else { return nil }
            value = value * 10 + Int64(b - 48)
        }
        return value
    }

    static func isLeap(_ year: Int64) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

    static func daysInMonth(_ year: Int64, _ month: Int64) -> Int64 {
        switch month {
        case 2: isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (month 1-12).
    static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The date (month 1-12) of a day counted from 1970-01-01.
    static func civil(days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// RFC 3339: `2026-11-25T10:00:00Z`, `2026-11-25T10:00:00+02:00`; fractions of a second
    /// are dropped.
    static func parseTimestamp(_ text: String) throws(EvalError) -> Int64 {
        let bytes = Array(text.utf8)
        let malformed = EvalError(
            "\(quoted(text)) is not an RFC 3339 timestamp: write e.g. \"2026-11-25T10:00:00Z\" or "
                + "\"2026-11-25T10:00:00+02:00\""
        )
        func at(_ i: Int, _ c: Character) -> Bool { i < bytes.count && bytes[i] == c.asciiValue! }
        guard let year = number(bytes, at: 0, count: 4), at(4, "-"),
            let month = number(bytes, at: 5, count: 2), at(7, "-"),
            let day = number(bytes, at: 8, count: 2), at(10, "T") || at(10, "t"),
            let hour = number(bytes, at: 11, count: 2), at(13, ":"),
            let minute = number(bytes, at: 14, count: 2), at(16, ":"),
            let second = number(bytes, at: 17, count: 2)
        else { throw malformed }
        var i = 19
        if at(i, ".") {
            i += 1
            let start = i
            while i < bytes.count, isDigit(bytes[i]) { i += 1 }
            guard i > start else { throw malformed }
        }
        let offset: Int64
        if at(i, "Z") || at(i, "z") {
            offset = 0
            i += 1
        } else if at(i, "+") || at(i, "-"), let h = number(bytes, at: i + 1, count: 2), at(i + 3, ":"),
            let m = number(bytes, at: i + 4, count: 2), h <= 23, m <= 59
        {
            offset = (h * 3600 + m * 60) * (bytes[i] == UInt8(ascii: "-") ? -1 : 1)
            i += 6
        } else {
            throw malformed
        }
        guard i == bytes.count else { throw malformed }
        guard year >= 1, (1...12).contains(month), day >= 1, day <= daysInMonth(year, month) else {
            throw EvalError("\(quoted(text)) is not a valid date: check the month and day")
        }
        guard hour <= 23, minute <= 59, second <= 59 else {
            throw EvalError("\(quoted(text)) is not a valid time of day: hours 00-23, minutes and seconds 00-59")
        }
        let result = days(year: year, month: month, day: day) * 86_400 + hour * 3600 + minute * 60 + second - offset
        guard result >= minTimestamp, result <= maxTimestamp else {
            throw EvalError("\(quoted(text)) is outside the years 0001 to 9999")
        }
        return result
    }

    /// `UTC` or a fixed offset `+02:00` / `-05:30`, as seconds east of UTC.
    static func parseZone(_ text: String) throws(EvalError) -> Int64 {
        if text == "UTC" { return 0 }
        let bytes = Array(text.utf8)
        if bytes.count == 6, bytes[0] == UInt8(ascii: "+") || bytes[0] == UInt8(ascii: "-"),
            let h = number(bytes, at: 1, count: 2), bytes[3] == UInt8(ascii: ":"),
            let m = number(bytes, at: 4, count: 2), h <= 23, m <= 59
        {
            return (h * 3600 + m * 60) * (bytes[0] == UInt8(ascii: "-") ? -1 : 1)
        }
        if bytes.contains(where: { ($0 | 0x20) >= 97 && ($0 | 0x20) <= 122 }) {
            throw EvalError(
                "named time zones like \(quoted(text)) are not supported: use \"UTC\" or a fixed offset like "
                    + "\"+02:00\" (daylight saving time is not applied)"
            )
        }
        throw EvalError(
            "\(quoted(text)) is not a time zone: use \"UTC\" or a fixed offset like \"+02:00\" or \"-05:30\""
        )
    }

    static func floorDivide(_ a: Int64, _ b: Int64) -> (quotient: Int64, remainder: Int64) {
        let r = a % b
        return r < 0 ? (a / b - 1, r + b) : (a / b, r)
    }

    /// A calendar field of `timestamp` (in range) seen at `offset` seconds east of UTC.
    static func part(_ part: TimePart, of timestamp: Int64, offset: Int64) -> Int64 {
        let (day, second) = floorDivide(timestamp + offset, 86_400)
        switch part {
        case .getHours: return second / 3600
        case .getMinutes: return second % 3600 / 60
        // 1970-01-01 was a Thursday (4).
        case .getDayOfWeek: return floorDivide(day + 4, 7).remainder
        case .getDate: return civil(days: day).day
        case .getMonth: return civil(days: day).month - 1
        case .getFullYear: return civil(days: day).year
        }
    }

    private static func pad(_ v: Int64, _ width: Int) -> String {
        let digits = String(v)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    /// `2026-11-25T10:00:00Z` for a timestamp in range.
    static func format(timestamp: Int64) -> String {
        let (day, second) = floorDivide(timestamp, 86_400)
        let date = civil(days: day)
        return "\(pad(date.year, 4))-\(pad(date.month, 2))-\(pad(date.day, 2))T"
            + "\(pad(second / 3600, 2)):\(pad(second % 3600 / 60, 2)):\(pad(second % 60, 2))Z"
    }
}

/// The calendar and timestamp helpers of conditions, for the policy code that prepares their
/// inputs (`time.date`) and reads test cases (`time:`), so both agree with `timestamp()`.
public enum Calendar {
    /// `YYYY-MM-DD` of a day counted from 1970-01-01.
    public static func date(ofDay days: Int64) -> String {
        let (y, m, d) = Time.civil(days: days)
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(y)-\(two(m))-\(two(d))"
    }

    /// An RFC 3339 time (`2026-11-25T10:00:00Z`, `…+02:00`) as epoch seconds, or nil.
    public static func timestamp(_ text: String) -> Int64? {
        try? Time.parseTimestamp(text)
    }

    /// Epoch seconds as `YYYY-MM-DDTHH:MM:SSZ`.
    public static func rfc3339(_ timestamp: Int64) -> String { Time.format(timestamp: timestamp) }

    /// Days since 1970-01-01 of a proleptic Gregorian date (month 1-12).
    public static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        Time.days(year: year, month: month, day: day)
    }

    /// The date (month 1-12) of a day counted from 1970-01-01.
    public static func civil(days: Int64) -> (year: Int64, month: Int64, day: Int64) { Time.civil(days: days) }

    public static func daysInMonth(year: Int64, month: Int64) -> Int64 { Time.daysInMonth(year, month) }
}

extension Suggestions {
    /// Optimal string alignment distance over Unicode scalars, for other "did you mean" helpers.
    public static func editDistance(_ a: String, _ b: String) -> Int { distance(a, b) }
}
