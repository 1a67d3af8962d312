import WritAudit

/// The engine's port to where requests, grants and the audit chain live: SQLite for writd
/// standalone and a trial server, PostgreSQL for writ-server replicas.
///
/// The engine's guarantees come from the store, not from one process:
/// - `request(_:forUpdate: true)` and `grant(_:forUpdate: true)` lock the row until the
///   transaction ends, so two decisions on one request are applied one after the other, in any
///   number of processes; a grant's `requestID` is unique as well.
/// - `claimDueRequests` and `claimDueGrants` lock what they return and skip rows another
///   transaction holds, so due work is done once however many instances tick; a crashed
///   instance's claims are released with its transaction.
/// - `appendAudit` locks the chain's head, so each record gets the next sequence number and the
///   previous record's hash: one writer per chain. Lock order, everywhere: the request row, then
///   the grant row, then the chain's head.
public protocol ApprovalStore: Sendable {
    /// "sqlite" or "postgresql".
    var kind: String { get }

    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws.
    func transaction<T: Sendable>(
        _ body: @Sendable (any StoreTransaction) async throws(EngineError) -> T
    ) async throws(EngineError) -> T
}

/// What the engine may do inside one transaction.
public protocol StoreTransaction: Sendable {
    func request(_ id: String, forUpdate: Bool) async throws(EngineError) -> EngineRequest?
    func insertRequest(_ request: EngineRequest) async throws(EngineError)
    func updateRequest(_ request: EngineRequest) async throws(EngineError)
    /// Pending requests whose next deadline (`core.nextDeadline`) is at or before `now`, oldest
    /// deadline first, at most `limit`; locked, and rows locked elsewhere skipped.
    func claimDueRequests(now: Int64, limit: Int) async throws(EngineError) -> [EngineRequest]

    func grant(_ id: String, forUpdate: Bool) async throws(EngineError) -> EngineGrant?
    /// Fails with `.refused` when the request already has a grant (the only constraint the engine
    /// expects to meet; any other is a store failure).
    func insertGrant(_ grant: EngineGrant) async throws(EngineError)
    func updateGrant(_ grant: EngineGrant) async throws(EngineError)
    /// Grants not yet ended whose `expiresAt` is at or before `now`, at most `limit`; locked, and
    /// rows locked elsewhere skipped.
    func claimDueGrants(now: Int64, limit: Int) async throws(EngineError) -> [EngineGrant]

    /// Appends to the audit chain, in order: each record the next sequence number, chained to the
    /// previous record's hash (the audit log's line format, `AuditLine`). The engine calls it
    /// last in each transaction, so the chain's head is locked after every other row and only
    /// until commit.
    func appendAudit(_ events: [AuditEvent]) async throws(EngineError)
    /// The chain's lines with a sequence number above `after`, in order, at most `limit`.
    func auditLines(after: Int64, limit: Int) async throws(EngineError) -> [String]
}
