import WritExpr

/// ISO 8601 / RFC 3339 timestamps as PagerDuty writes them (`2026-11-25T10:00:00Z`,
/// `2026-11-25T11:00:00+01:00`, also `+0100` and `+01`), to and from seconds since the epoch. The
/// calendar arithmetic is WritExpr's `Calendar`, shared with conditions and policy test cases.
enum ISO8601Time {
    /// Seconds since the epoch of an ISO 8601 date-time with a zone, or nil when `text` is not one.
    ///
    /// Accepted: `YYYY-MM-DDTHH:MM:SS`, an optional fraction (`.` or `,` and digits, dropped), and a
    /// zone `Z`, `±HH:MM`, `±HHMM` or `±HH`. A time without a zone is refused (it would be read in
    /// some unknown zone), as are dates that do not exist (`2026-02-30`).
    static func parse(_ text: String) -> Int64? {
        let bytes = Array(text.utf8)
        var index = 0

        func number(_ digits: Int) -> Int64? {
            guard index + digits <= bytes.count else { return nil }
            var value: Int64 = 0
            for byte in bytes[index..<index + digits] {
                guard byte >= 0x30, byte <= 0x39 else { return nil }
                value = value * 10 + Int64(byte - 0x30)
            }
            index += digits
            return value
        }
        func expect(_ allowed: Set<UInt8>) -> Bool {
            guard index < bytes.count, allowed.contains(bytes[index]) else { return false }
            index += 1
            return true
        }

        guard let year = number(4), expect([0x2D]), let month = number(2), expect([0x2D]), let day = number(2),
            expect([0x54, 0x74]),  // T or t
            let hour = number(2), expect([0x3A]), let minute = number(2), expect([0x3A]), let second = number(2)
        else { return nil }
        guard (1...12).contains(month), day >= 1, day <= Calendar.daysInMonth(year: year, month: month), hour <= 23,
            minute <= 59, second <= 60
        else { return nil }

        if expect([0x2E, 0x2C]) {  // . or , then at least one digit
            let start = index
            while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 { index += 1 }
            guard index > start else { return nil }
        }

        var offset: Int64 = 0
        if expect([0x5A, 0x7A]) {  // Z or z
            offset = 0
        } else if index < bytes.count, bytes[index] == 0x2B || bytes[index] == 0x2D {
            let sign: Int64 = bytes[index] == 0x2D ? -1 : 1
            index += 1
            guard let hours = number(2), hours <= 23 else { return nil }
            var minutes: Int64 = 0
            if index < bytes.count {
                _ = expect([0x3A])
                guard let parsed = number(2), parsed <= 59 else { return nil }
                minutes = parsed
            }
            offset = sign * (hours * 3600 + minutes * 60)
        } else {
            return nil
        }
        guard index == bytes.count else { return nil }

        let days = Calendar.days(year: year, month: month, day: day)
        return days * 86_400 + hour * 3600 + minute * 60 + second - offset
    }

    /// `seconds` since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (what writ sends as `since`/`until`).
    static func format(_ seconds: Int64) -> String { Calendar.rfc3339(seconds) }
}
