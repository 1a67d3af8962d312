/// Days of the week and a span of the day, at a fixed offset from UTC.
///
/// Only fixed offsets: a named zone (`Europe/Berlin`) would need the tz database and daylight
/// saving rules, and a window that silently moves by an hour twice a year is a security surprise.
public struct TimeWindow: Sendable, Equatable {
    /// 0 = Sunday … 6 = Saturday.
    public var days: Set<Int>
    /// Minutes after midnight where the window opens (inclusive).
    public var fromMinute: Int
    /// Minutes after midnight where the window closes (exclusive, up to 1440). Less than
    /// `fromMinute`: the window runs past midnight into the next day.
    public var toMinute: Int
    /// Offset of the window's clock from UTC, in seconds (`+02:00` is 7200).
    public var utcOffsetSeconds: Int

    public init(days: Set<Int>, fromMinute: Int, toMinute: Int, utcOffsetSeconds: Int = 0) {
        self.days = days
        self.fromMinute = fromMinute
        self.toMinute = toMinute
        self.utcOffsetSeconds = utcOffsetSeconds
    }

    /// Whether the instant `epochSeconds` falls inside the window. A window that runs past
    /// midnight belongs to the day it started: `fri 22:00–06:00` covers Saturday 03:00, and
    /// not Friday 03:00.
    public func contains(_ epochSeconds: Int64) -> Bool {
        let local = epochSeconds + Int64(utcOffsetSeconds)
        // Floor division: instants before 1970 still land on the right day and minute.
        let (day, secondOfDay) = Self.floorDivide(local, 86_400)
        // 1970-01-01 was a Thursday (4).
        let weekday = Int(Self.floorDivide(day + 4, 7).remainder)
        let minute = Int(secondOfDay / 60)
        if fromMinute < toMinute {
            return days.contains(weekday) && minute >= fromMinute && minute < toMinute
        }
        let yesterday = (weekday + 6) % 7
        return (days.contains(weekday) && minute >= fromMinute) || (days.contains(yesterday) && minute < toMinute)
    }

    static func floorDivide(_ a: Int64, _ b: Int64) -> (quotient: Int64, remainder: Int64) {
        var q = a / b
        var r = a % b
        if r < 0 {
            q -= 1
            r += b
        }
        return (q, r)
    }
}
