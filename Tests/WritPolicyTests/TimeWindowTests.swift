import Testing
import WritPolicy

@Suite("TimeWindow.contains")
struct TimeWindowTests {
    /// Friday 2024-01-05 00:00:00 UTC.
    static let friday: Int64 = 1_704_412_800
    static let hour: Int64 = 3600
    static let day: Int64 = 86_400

    @Test("a same-day window: from is inclusive, to exclusive, and only on its days")
    func sameDay() {
        let weekdays = TimeWindow(days: [1, 2, 3, 4, 5], fromMinute: 9 * 60, toMinute: 17 * 60)
        #expect(weekdays.contains(Self.friday + 9 * Self.hour))
        #expect(weekdays.contains(Self.friday + 17 * Self.hour - 1))
        #expect(!weekdays.contains(Self.friday + 17 * Self.hour))
        #expect(!weekdays.contains(Self.friday + 9 * Self.hour - 1))
        // Saturday 10:00.
        #expect(!weekdays.contains(Self.friday + Self.day + 10 * Self.hour))
        // Monday 10:00.
        #expect(weekdays.contains(Self.friday + 3 * Self.day + 10 * Self.hour))
    }

    @Test("a window past midnight belongs to the day it started")
    func wrapsPastMidnight() {
        let fridayNight = TimeWindow(days: [5], fromMinute: 22 * 60, toMinute: 6 * 60)
        #expect(fridayNight.contains(Self.friday + 22 * Self.hour))
        #expect(fridayNight.contains(Self.friday + 23 * Self.hour + 59 * 60))
        // Saturday 03:00 is Friday's night.
        #expect(fridayNight.contains(Self.friday + Self.day + 3 * Self.hour))
        #expect(!fridayNight.contains(Self.friday + Self.day + 6 * Self.hour))
        // Friday 03:00 is Thursday's night, which is not in the window.
        #expect(!fridayNight.contains(Self.friday + 3 * Self.hour))
        // Saturday 23:00: Saturday is not a day of the window.
        #expect(!fridayNight.contains(Self.friday + Self.day + 23 * Self.hour))
    }

    @Test("a fixed offset moves the window: 22:00 at +02:00 is 20:00 UTC")
    func fixedOffset() {
        let plusTwo = TimeWindow(days: [5], fromMinute: 22 * 60, toMinute: 23 * 60, utcOffsetSeconds: 7200)
        #expect(plusTwo.contains(Self.friday + 20 * Self.hour))
        #expect(!plusTwo.contains(Self.friday + 22 * Self.hour))
        // -05:30: Friday 22:00 there is Saturday 03:30 UTC.
        let minusFiveThirty = TimeWindow(days: [5], fromMinute: 22 * 60, toMinute: 23 * 60, utcOffsetSeconds: -19_800)
        #expect(minusFiveThirty.contains(Self.friday + Self.day + 3 * Self.hour + 30 * 60))
        #expect(!minusFiveThirty.contains(Self.friday + 22 * Self.hour))
    }

    @Test("the offset can move an instant onto another weekday")
    func offsetChangesDay() {
        let saturdayMorning = TimeWindow(days: [6], fromMinute: 0, toMinute: 60, utcOffsetSeconds: 7200)
        // Friday 22:30 UTC is Saturday 00:30 at +02:00.
        #expect(saturdayMorning.contains(Self.friday + 22 * Self.hour + 30 * 60))
        #expect(!TimeWindow(days: [6], fromMinute: 0, toMinute: 60).contains(Self.friday + 22 * Self.hour + 30 * 60))
    }

    @Test("24:00 closes at the end of the day; instants before 1970 land on the right weekday")
    func edges() {
        let wholeSunday = TimeWindow(days: [0], fromMinute: 0, toMinute: 1440)
        let sunday = Self.friday + 2 * Self.day
        #expect(wholeSunday.contains(sunday))
        #expect(wholeSunday.contains(sunday + Self.day - 1))
        #expect(!wholeSunday.contains(sunday + Self.day))
        // 1969-12-31 23:00 UTC was a Wednesday.
        let wednesdayLate = TimeWindow(days: [3], fromMinute: 23 * 60, toMinute: 1440)
        #expect(wednesdayLate.contains(-3600))
        #expect(!wednesdayLate.contains(0))
    }
}
