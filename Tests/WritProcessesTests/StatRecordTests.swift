import Testing

@testable import WritProcesses

@Suite struct StatRecordTests {
    /// A stat line as Linux 6 writes it, with `comm` in place of the name.
    private func statLine(pid: Int32, comm: String, rest: String) -> [UInt8] {
        Array("\(pid) (\(comm)) \(rest)\n".utf8)
    }

    private let ordinary =
        "S 7 42 42 34817 42 4194560 100 0 0 0 3 1 0 0 20 0 1 0 12345 8654848 200 18446744073709551615"

    @Test func parsesTheFieldsWritdUses() throws {
        let record = try #require(StatRecord(parsing: statLine(pid: 42, comm: "bash", rest: ordinary), pid: 42))
        #expect(record.identity == ProcessIdentity(pid: 42, startTime: 12345))
        #expect(record.state == UInt8(ascii: "S"))
        #expect(record.ppid == 7)
        #expect(record.processGroup == 42)
        #expect(record.sessionID == 42)
        #expect(record.ttyNumber == 34817)
    }

    @Test func aNameWithParenthesesSpacesAndNewlinesCannotForgeFields() throws {
        // The name imitates the start of a zombie's fields, parent 1, start time 999.
        let comm = "a) Z 1 1 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 999\n) ( x"
        let record = try #require(StatRecord(parsing: statLine(pid: 42, comm: comm, rest: ordinary), pid: 42))
        #expect(record.state == UInt8(ascii: "S"))
        #expect(record.ppid == 7)
        #expect(record.identity.startTime == 12345)
    }

    @Test func refusesMalformedLines() {
        #expect(StatRecord(parsing: statLine(pid: 42, comm: "bash", rest: ordinary), pid: 43) == nil)
        #expect(StatRecord(parsing: statLine(pid: 42, comm: "bash", rest: "S 7 42 42"), pid: 42) == nil)
        #expect(StatRecord(parsing: statLine(pid: 42, comm: "bash", rest: "SS" + ordinary.dropFirst()), pid: 42) == nil)
        #expect(StatRecord(parsing: Array("42 bash S 7".utf8), pid: 42) == nil)
        #expect(StatRecord(parsing: [], pid: 42) == nil)
        let overflow = ordinary.replacingFirst("12345", with: "99999999999999999999999")
        #expect(StatRecord(parsing: statLine(pid: 42, comm: "bash", rest: overflow), pid: 42) == nil)
    }

    @Test func negativeFieldsParse() throws {
        let rest = ordinary.replacingFirst("34817 42", with: "0 -1")
        let record = try #require(StatRecord(parsing: statLine(pid: 42, comm: "x", rest: rest), pid: 42))
        #expect(record.ttyNumber == 0)
    }

    @Test func readsRealAndEffectiveUIDFromStatus() throws {
        let status =
            "Name:\tsudo\\nUid:\t0\t0\t0\t0\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t1000\t0\t0\t0\nGid:\t1000\t1000\t1000\t1000\n"
        let uids = try #require(parseUIDs(status: Array(status.utf8)))
        #expect(uids.real == 1000)
        #expect(uids.effective == 0)
        #expect(parseUIDs(status: Array("Name:\tx\nGid:\t0\t0\t0\t0\n".utf8)) == nil)
    }
}

extension String {
    fileprivate func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let range = firstRange(of: target) else { return self }
        return self[..<range.lowerBound] + replacement + self[range.upperBound...]
    }
}
