/// One log line per `interval` for an event that anyone can cause as often as they like (a
/// refused connection, a refused request): the first occurrence is logged at once, later ones in
/// the same interval are only counted, and the next line says how many were not logged. So a
/// flood costs one line per interval, and the log still shows that it happened and how much.
public struct LogThrottle: Sendable {
    /// Seconds between two lines.
    public let interval: Int64
    private var quietUntil: Int64 = .min
    private var suppressed = 0

    public init(interval: Int64) {
        self.interval = interval
    }

    /// Whether to log the event happening at `now` (seconds); when yes, also how many events
    /// since the last line were not logged (0 for none).
    public mutating func admit(now: Int64) -> (log: Bool, notLogged: Int) {
        guard now >= quietUntil else {
            suppressed += 1
            return (false, 0)
        }
        let missed = suppressed
        suppressed = 0
        quietUntil = now + interval
        return (true, missed)
    }
}
