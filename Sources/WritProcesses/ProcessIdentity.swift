/// A process, identified so that a recycled pid never matches: the pid together with the process's
/// start time (field 22 of `/proc/PID/stat`, clock ticks since boot). Two processes can hold the
/// same pid one after the other, never at the same moment, and a later holder starts later.
public struct ProcessIdentity: Hashable, Sendable, CustomStringConvertible {
    public let pid: Int32
    public let startTime: UInt64

    public init(pid: Int32, startTime: UInt64) {
        self.pid = pid
        self.startTime = startTime
    }

    public var description: String { "\(pid)@\(startTime)" }
}
