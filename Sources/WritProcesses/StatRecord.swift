/// The fields of `/proc/PID/stat` that writd uses.
struct StatRecord: Sendable, Equatable {
    var identity: ProcessIdentity
    var state: UInt8
    var ppid: Int32
    var processGroup: Int32
    var sessionID: Int32
    var ttyNumber: Int32

    /// A zombie (`Z`) or dead (`X`, `x` on old kernels) process: it has ended.
    var hasExited: Bool { state == UInt8(ascii: "Z") || state == UInt8(ascii: "X") || state == UInt8(ascii: "x") }

    /// Stopped by a signal (`T`) or under a debugger (`t`).
    var isStopped: Bool { state == UInt8(ascii: "T") || state == UInt8(ascii: "t") }

    /// Parses the text of `/proc/PID/stat`; nil when it is not what the kernel writes, or when it
    /// names another pid than `pid`.
    ///
    /// Field 2, `comm`, is the executable's name in parentheses, and whoever runs a program chooses
    /// that name (a symlink named `x) Z 1 1`, or `prctl(PR_SET_NAME)`): it may hold spaces, `)`,
    /// digits, even a newline. Every field after it is a number or the one-letter state, so the
    /// fields are counted from the LAST `)`, and a name cannot forge a state, a parent or a start
    /// time.
    init?(parsing text: [UInt8], pid: Int32) {
        guard let open = text.firstIndex(of: UInt8(ascii: " ")),
            Self.signed(text[..<open]) == Int64(pid),
            let close = text.lastIndex(of: UInt8(ascii: ")")), close > open
        else { return nil }
        var rest = text[(close + 1)...]
        while let last = rest.last, last == UInt8(ascii: "\n") { rest.removeLast() }
        guard rest.first == UInt8(ascii: " ") else { return nil }
        // fields[0] is field 3 (state); field N is fields[N - 3].
        let fields = rest.dropFirst().split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard fields.count >= 20, fields[0].count == 1, let state = fields[0].first,
            let ppid = Self.int32(fields[1]),
            let processGroup = Self.int32(fields[2]),
            let sessionID = Self.int32(fields[3]),
            let ttyNumber = Self.int32(fields[4]),
            let startTime = Self.unsigned(fields[19])
        else { return nil }
        self.identity = ProcessIdentity(pid: pid, startTime: startTime)
        self.state = state
        self.ppid = ppid
        self.processGroup = processGroup
        self.sessionID = sessionID
        self.ttyNumber = ttyNumber
    }

    init(
        identity: ProcessIdentity,
        state: UInt8,
        ppid: Int32,
        processGroup: Int32,
        sessionID: Int32,
        ttyNumber: Int32
    ) {
        self.identity = identity
        self.state = state
        self.ppid = ppid
        self.processGroup = processGroup
        self.sessionID = sessionID
        self.ttyNumber = ttyNumber
    }

    /// Decimal digits, nothing else; nil when empty or too large for UInt64.
    static func unsigned(_ digits: ArraySlice<UInt8>) -> UInt64? {
        guard !digits.isEmpty, digits.count <= 20 else { return nil }
        var value: UInt64 = 0
        for byte in digits {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            guard !o1, !o2 else { return nil }
            value = sum
        }
        return value
    }

    /// An optional `-` and decimal digits.
    static func signed(_ text: ArraySlice<UInt8>) -> Int64? {
        if text.first == UInt8(ascii: "-") {
            guard let magnitude = unsigned(text.dropFirst()), magnitude <= UInt64(Int64.max) else { return nil }
            return -Int64(magnitude)
        }
        guard let magnitude = unsigned(text), magnitude <= UInt64(Int64.max) else { return nil }
        return Int64(magnitude)
    }

    static func int32(_ text: ArraySlice<UInt8>) -> Int32? {
        signed(text).flatMap { Int32(exactly: $0) }
    }
}

/// The real and effective uid from the text of `/proc/PID/status` (its `Uid:` line: real,
/// effective, saved, filesystem). The `Name:` line above it cannot forge a `Uid:` line: the
/// kernel escapes a newline in a process name there.
func parseUIDs(status text: [UInt8]) -> (real: UInt32, effective: UInt32)? {
    let prefix = Array("Uid:".utf8)
    for line in text.split(separator: UInt8(ascii: "\n")) where line.starts(with: prefix) {
        let values = line.dropFirst(prefix.count).split { $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: " ") }
        guard values.count >= 2,
            let real = StatRecord.unsigned(values[0]).flatMap({ UInt32(exactly: $0) }),
            let effective = StatRecord.unsigned(values[1]).flatMap({ UInt32(exactly: $0) })
        else { return nil }
        return (real, effective)
    }
    return nil
}
