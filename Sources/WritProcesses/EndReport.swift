/// What `SessionTerminator.end` did.
public struct EndReport: Sendable, Equatable {
    /// Processes that were sent SIGHUP (and SIGCONT).
    public let hungUp: [Int32]
    /// Processes that were still there after the grace period and were sent SIGKILL.
    public let killed: [Int32]
    /// Processes of the trees still alive when `end` gave up waiting (uninterruptible sleep, for one).
    public let survivors: [Int32]
    public let elapsedNanoseconds: UInt64

    public init(hungUp: [Int32], killed: [Int32], survivors: [Int32], elapsedNanoseconds: UInt64) {
        self.hungUp = hungUp
        self.killed = killed
        self.survivors = survivors
        self.elapsedNanoseconds = elapsedNanoseconds
    }
}
