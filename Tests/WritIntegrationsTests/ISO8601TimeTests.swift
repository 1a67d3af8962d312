import Testing
import WritExpr

@testable import WritIntegrations

@Suite("ISO 8601 times")
struct ISO8601TimeTests {
    @Test func parsesUTCAndOffsets() {
        let base: Int64 = 1_795_600_800  // 2026-11-25T10:00:00Z
        #expect(ISO8601Time.parse("2026-11-25T10:00:00Z") == base)
        #expect(ISO8601Time.parse("2026-11-25t10:00:00z") == base)
        #expect(ISO8601Time.parse("2026-11-25T11:00:00+01:00") == base)
        #expect(ISO8601Time.parse("2026-11-25T11:00:00+0100") == base)
        #expect(ISO8601Time.parse("2026-11-25T11:00:00+01") == base)
        #expect(ISO8601Time.parse("2026-11-25T04:30:00-05:30") == base)
        #expect(ISO8601Time.parse("2026-11-26T09:00:00+23:00") == base)
        #expect(ISO8601Time.parse("2026-11-25T10:00:00.999Z") == base)
        #expect(ISO8601Time.parse("2026-11-25T10:00:00,5+00:00") == base)
        #expect(ISO8601Time.parse("2026-11-25T10:00:00-00:00") == base)
    }

    @Test func calendarEdges() {
        #expect(ISO8601Time.parse("1970-01-01T00:00:00Z") == 0)
        #expect(ISO8601Time.parse("1969-12-31T23:59:59Z") == -1)
        #expect(ISO8601Time.parse("2000-03-01T00:00:00Z") == 951_868_800)
        #expect(ISO8601Time.parse("2024-02-29T12:00:00Z") == 1_709_208_000)
        #expect(ISO8601Time.parse("2038-01-19T03:14:08Z") == 2_147_483_648)
        #expect(ISO8601Time.parse("2026-12-31T23:59:60Z") == ISO8601Time.parse("2027-01-01T00:00:00Z"))
    }

    @Test func refusesWhatIsNotADateTimeWithAZone() {
        for text in [
            "", "2026-11-25", "2026-11-25T10:00:00", "2026-11-25T10:00Z", "2026-11-25 10:00:00Z",
            "2026-02-29T00:00:00Z", "2026-02-30T00:00:00Z", "2026-04-31T00:00:00Z", "2026-13-01T00:00:00Z",
            "2026-00-10T00:00:00Z", "2026-11-00T00:00:00Z", "2026-11-25T24:00:00Z", "2026-11-25T10:60:00Z",
            "2026-11-25T10:00:61Z", "2026-11-25T10:00:00+24:00", "2026-11-25T10:00:00+01:60",
            "2026-11-25T10:00:00+1", "2026-11-25T10:00:00.Z", "2026-11-25T10:00:00Z ", " 2026-11-25T10:00:00Z",
            "2026-11-25T10:00:00ZZ", "26-11-25T10:00:00Z", "2026-1-25T10:00:00Z", "２０２６-11-25T10:00:00Z",
            "2026-11-25T10:00:00+01:00:00", "null",
        ] {
            #expect(ISO8601Time.parse(text) == nil, "\(text)")
        }
    }

    @Test func formatsAndRoundTrips() {
        #expect(ISO8601Time.format(0) == "1970-01-01T00:00:00Z")
        #expect(ISO8601Time.format(-1) == "1969-12-31T23:59:59Z")
        #expect(ISO8601Time.format(-86_400) == "1969-12-31T00:00:00Z")
        #expect(ISO8601Time.format(1_795_600_800) == "2026-11-25T10:00:00Z")
        #expect(ISO8601Time.format(1_709_208_000) == "2024-02-29T12:00:00Z")
        for seconds: Int64 in [-90_000, -1, 0, 59, 86_399, 951_868_799, 1_709_251_199, 4_102_444_800] {
            #expect(ISO8601Time.parse(ISO8601Time.format(seconds)) == seconds)
        }
        // Every day from 1969 to 2101 round-trips through the calendar (WritExpr's, shared).
        for day in Int64(-366)...Int64(48_000) {
            let (year, month, dayOfMonth) = Calendar.civil(days: day)
            #expect(Calendar.days(year: year, month: month, day: dayOfMonth) == day)
            #expect(dayOfMonth >= 1 && dayOfMonth <= Calendar.daysInMonth(year: year, month: month))
        }
    }
}
