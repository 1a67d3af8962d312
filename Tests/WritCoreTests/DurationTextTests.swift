import Testing
import WritCore

@Suite("DurationText")
struct DurationTextTests {
    @Test(
        "parses a number and a unit, and sums several",
        arguments: [
            ("90s", 90 as Int64),
            ("30m", 1_800),
            ("4h", 14_400),
            ("1h30m", 5_400),
            ("2d", 172_800),
            ("1w", 604_800),
            ("1d2h3m4s", 93_784),
            ("0s", 0),
            ("007m", 420),
            ("999999999s", 999_999_999),
        ]
    )
    func parse(text: String, seconds: Int64) throws {
        #expect(try DurationText.parse(text) == seconds)
    }

    @Test(
        "refuses text that is not a duration",
        arguments: [
            "", "10", "m", "-5m", "5x", "5M", " 5m", "5m ", "1h30", "h1", "5 m", "1.5h", "+5m", "5mm", "٣m",
        ]
    )
    func malformed(_ text: String) {
        #expect(throws: DurationError.malformed(text)) { try DurationText.parse(text) }
    }

    @Test(
        "refuses numbers too large to be a duration",
        arguments: [
            "1000000000s",
            "99999999999999999999s",
            "9223372036854775808s",
        ]
    )
    func tooLong(_ text: String) {
        #expect(throws: DurationError.tooLong(text)) { try DurationText.parse(text) }
    }

    @Test("refuses a sum of units that overflows 64 bits")
    func sumOverflows() throws {
        // Each term is below the per-number cap; 16,000 of them exceed Int64.max seconds.
        let text = String(repeating: "999999999w", count: 16_000)
        #expect(throws: DurationError.tooLong(text)) { try DurationText.parse(text) }
        #expect(
            try DurationText.parse(String(repeating: "999999999w", count: 15_000)) == 15_000 * 999_999_999 * 604_800
        )
    }

    @Test(
        "formats the short way",
        arguments: [
            (0 as Int64, "0s"),
            (45, "45s"),
            (59, "59s"),
            (60, "1m"),
            (90, "1m30s"),
            (125, "2m05s"),
            (1_380, "23m"),
            (3_599, "59m59s"),
            (3_600, "1h"),
            (14_700, "4h05m"),
            (5_400, "1h30m"),
            (86_399, "23h59m"),
            (86_400, "1d"),
            (183_600, "2d03h"),
            (1_209_600, "14d"),
            (-5, "0s"),
        ]
    )
    func format(seconds: Int64, text: String) {
        #expect(DurationText.format(seconds) == text)
    }

    @Test("errors quote the input escaped, on one line")
    func errorDescription() {
        let error = DurationError.malformed("5\nx")
        #expect(error.description.contains("5\\nx"))
        #expect(!error.description.contains("\n"))
        #expect(DurationError.tooLong("9999w").description.contains("too long"))
    }
}
