/// How far this host's clock is from the server's, as bounds that are always true: every answer
/// carries the server's clock (`serverTime`), stamped between the moment the request left
/// (`sentAt`) and the moment the answer arrived (`receivedAt`), both on the local clock. So the
/// local clock minus the server's was at least `sentAt - serverTime` and at most
/// `receivedAt - serverTime`. The tightest bounds come from quick answers (a snapshot, an audit
/// upload, a poll answered at once); a long-poll that waited 30 s gives a loose one, which the
/// bounds already held ignore.
///
/// A grant's local end is the server's end plus the lower bound, and its local start (when it
/// starts later than the server's clock read) the server's start plus the upper bound: skew, and
/// the network's delay, can only shorten a grant. A grant that has already started on the server
/// is in force here at once.
/// When the host's clock is stepped, a new sample contradicts the old bounds; they start again
/// from it, and the caller rewrites the local ends.
public struct ClockSkew: Sendable, Equatable {
    /// Local minus server, milliseconds.
    public private(set) var low: Int64?
    public private(set) var high: Int64?
    /// The server's clock in the latest answer (milliseconds).
    public private(set) var serverNow: Int64?

    public init() {}

    /// Adds one answer's bounds. Returns true when the lower bound moved (local ends change).
    @discardableResult
    public mutating func add(sentAt: Int64, receivedAt: Int64, serverTime: Int64) -> Bool {
        serverNow = max(serverNow ?? serverTime, serverTime)
        let sampleLow = sentAt - serverTime
        let sampleHigh = max(receivedAt, sentAt) - serverTime
        let before = low
        if let l = low, let h = high, sampleHigh >= l, sampleLow <= h {
            low = max(l, sampleLow)
            high = min(h, sampleHigh)
        } else {
            // The first answer, or the clock was stepped since the bounds were taken.
            low = sampleLow
            high = sampleHigh
        }
        return low != before
    }

    /// The local second at which a grant the server ends at `serverSeconds` must end here: never
    /// later than the server meant. Without a sample yet, nil.
    public func localEnd(_ serverSeconds: Int64) -> Int64? {
        guard let low else { return nil }
        return floorDiv(serverSeconds * 1000 + low, 1000)
    }

    /// The local second from which a grant the server starts at `serverSeconds` may be used:
    /// never earlier than the server meant, for a start still to come; for one the server's
    /// clock has passed, as early as the bounds allow (it is in force already).
    public func localStart(_ serverSeconds: Int64) -> Int64? {
        guard let high, let low, let serverNow else { return nil }
        if serverSeconds * 1000 <= serverNow { return floorDiv(serverSeconds * 1000 + low, 1000) }
        return -floorDiv(-(serverSeconds * 1000 + high), 1000)
    }

    private func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        a >= 0 ? a / b : -((-a + b - 1) / b)
    }
}
