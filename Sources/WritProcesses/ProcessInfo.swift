/// One process as `/proc/PID/stat` and `/proc/PID/status` describe it at the moment they were read.
public struct ProcessInfo: Sendable, Equatable {
    public let identity: ProcessIdentity
    /// Field 3 of `/proc/PID/stat`: `R`, `S`, `D`, `T`, `t`, `Z`, `X`, …
    public let state: Character
    public let ppid: Int32
    public let sessionID: Int32
    public let processGroup: Int32
    /// Field 7 of `/proc/PID/stat`: the controlling terminal's device number, 0 when there is none.
    public let ttyNumber: Int32
    public let realUID: UInt32
    public let effectiveUID: UInt32

    public init(
        identity: ProcessIdentity,
        state: Character,
        ppid: Int32,
        sessionID: Int32,
        processGroup: Int32,
        ttyNumber: Int32,
        realUID: UInt32,
        effectiveUID: UInt32
    ) {
        self.identity = identity
        self.state = state
        self.ppid = ppid
        self.sessionID = sessionID
        self.processGroup = processGroup
        self.ttyNumber = ttyNumber
        self.realUID = realUID
        self.effectiveUID = effectiveUID
    }

    /// A zombie (`Z`) or dead (`X`) process: it has ended and only waits to be reaped.
    public var hasExited: Bool { state == "Z" || state == "X" || state == "x" }
}
