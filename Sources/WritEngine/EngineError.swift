/// Why an engine call did not happen. `refused` and `notFound` are the caller's to fix; the
/// others are the operator's.
public enum EngineError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The request is not in a state that allows this, or the principal may not do it.
    case refused(String)
    case notFound(String)
    /// The store holds something unreadable.
    case corrupt(String)
    /// The store was made by a newer Writ, or its schema is not the one this build reads.
    case schema(String)
    /// The store failed (I/O, connection, a constraint): the transaction was rolled back, or, when
    /// the connection broke during the commit, its outcome is unknown (read the request again).
    case store(String)
    /// A conflict between transactions (deadlock, serialization failure) that the store retries.
    case retryable(String)
    /// A feed cursor the store cannot continue from (past its end: the store is not the one the
    /// cursor came from, or was restored): take a new snapshot.
    case gone(String)
    /// Too busy to take this now: try again later.
    case unavailable(String)

    public var description: String {
        switch self {
        case .refused(let m), .notFound(let m), .gone(let m), .unavailable(let m): m
        case .corrupt(let m): "the store is corrupt: \(m)"
        case .schema(let m): m
        case .store(let m), .retryable(let m): "the store failed: \(m)"
        }
    }
}
