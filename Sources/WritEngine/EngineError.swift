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
    /// The store failed (I/O, connection, constraint): nothing was changed.
    case store(String)

    public var description: String {
        switch self {
        case .refused(let m), .notFound(let m): m
        case .corrupt(let m): "the store is corrupt: \(m)"
        case .schema(let m): m
        case .store(let m): "the store failed: \(m)"
        }
    }
}
