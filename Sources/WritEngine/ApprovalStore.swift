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
/// - every grant write moves the grant to the end of the grant feed (`grantChanges`), under a
///   lock held until commit, so positions follow commit order: a reader past position N never
///   later finds a write committed at or below N.
/// - `appendAudit` locks the chain's head, so each record gets the next sequence number and the
///   previous record's hash: one writer per chain. Lock order, everywhere: the request row, then
///   the grant row, then the chain's head, then (PostgreSQL) the grant feed's head.
public protocol ApprovalStore: Sendable {
    /// "sqlite" or "postgresql".
    var kind: String { get }

    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws.
    func transaction<T: Sendable>(
        _ body: @Sendable (any StoreTransaction) async throws(EngineError) -> T
    ) async throws(EngineError) -> T

    /// Calls `onChange` with each change committed ("request:ID", "grant:ID", "host:NAME") until
    /// the calling task is cancelled: on PostgreSQL every instance's (LISTEN/NOTIFY, not stored:
    /// a follower polls now and then too), on SQLite this process's.
    func followChanges(_ onChange: @escaping @Sendable (String) async -> Void) async throws(EngineError)

    /// Lets go of the store's connections; the store cannot be used after.
    func close() async
}

extension ApprovalStore {
    /// A store whose connection closes with its last reference (SQLite) needs no more.
    public func close() async {}
}

/// What the engine may do inside one transaction.
public protocol StoreTransaction: Sendable {
    func request(_ id: String, forUpdate: Bool) async throws(EngineError) -> EngineRequest?
    func insertRequest(_ request: EngineRequest) async throws(EngineError)
    func updateRequest(_ request: EngineRequest) async throws(EngineError)
    /// Pending requests whose next deadline (`core.nextDeadline`) is at or before `now`, oldest
    /// deadline first, at most `limit`; locked, and rows locked elsewhere skipped.
    func claimDueRequests(now: Int64, limit: Int) async throws(EngineError) -> [EngineRequest]
    /// `requester`'s requests for `host` that are pending or were filed after `since`, newest
    /// first, at most `limit`. Not locked.
    func requests(
        requester: String,
        host: String,
        since: Int64,
        limit: Int
    ) async throws(EngineError)
        -> [EngineRequest]
    /// Pending requests filed after the one at (`createdAt`, `id`), oldest first, at most `limit`:
    /// a page of a scan of every pending request. Not locked.
    func pendingRequests(after createdAt: Int64, id: String, limit: Int) async throws(EngineError) -> [EngineRequest]
    /// How many requests are pending, of `requester` (any, when nil) for `host` (any, when nil).
    func pendingCount(requester: String?, host: String?) async throws(EngineError) -> Int

    func grant(_ id: String, forUpdate: Bool) async throws(EngineError) -> EngineGrant?
    /// Fails with `.refused` when the request already has a grant (the only constraint the engine
    /// expects to meet; any other is a store failure).
    func insertGrant(_ grant: EngineGrant) async throws(EngineError)
    func updateGrant(_ grant: EngineGrant) async throws(EngineError)
    /// Grants not yet ended whose `expiresAt` is at or before `now`, at most `limit`; locked, and
    /// rows locked elsewhere skipped.
    func claimDueGrants(now: Int64, limit: Int) async throws(EngineError) -> [EngineGrant]

    /// The grant feed: grants written (issued, extended, ended) after position `cursor`, in
    /// position order, at most `limit`. A grant written again is found at its new position only.
    func grantChanges(after cursor: Int64, limit: Int) async throws(EngineError) -> [GrantChange]
    /// The feed's last position handed out and committed.
    func grantFeedEnd() async throws(EngineError) -> Int64
    /// Grants not ended whose expiry is after `now`, and the feed position they are current to
    /// (read first: what commits after it is found again by `grantChanges(after:)`).
    func liveGrants(now: Int64) async throws(EngineError) -> (grants: [EngineGrant], cursor: Int64)

    /// A fleet's host (writ-server), locked until the transaction ends with `forUpdate`.
    func host(_ name: String, forUpdate: Bool) async throws(EngineError) -> EngineHost?
    func upsertHost(_ host: EngineHost) async throws(EngineError)
    func insertEnrollment(_ enrollment: Enrollment) async throws(EngineError)
    /// The unused, unexpired enrollment with this token hash, marked used at `now` by the same
    /// statement; nil when there is none. Of transactions racing for one token, one gets it.
    func consumeEnrollment(tokenHash: String, now: Int64) async throws(EngineError) -> Enrollment?
    /// Marks every unused token for `host` used.
    func voidEnrollments(host: String, at now: Int64) async throws(EngineError)

    /// A host's own audit chain as uploaded: its head (locked with `forUpdate`), the hash stored
    /// for one of its records, and records appended with the new head.
    func hostAuditHead(_ host: String, forUpdate: Bool) async throws(EngineError) -> HostAuditHead?
    func hostAuditHash(_ host: String, seq: Int64) async throws(EngineError) -> String?
    func appendHostAudit(
        _ host: String,
        _ records: [(seq: Int64, hash: String, line: String)],
        head: HostAuditHead
    ) async throws(EngineError)
    /// `host`'s uploaded records with a seq above `after`, in order, at most `limit`.
    func hostAuditLines(_ host: String, after: Int64, limit: Int) async throws(EngineError) -> [String]
    /// The hosts that have uploaded records, by name.
    func auditedHosts() async throws(EngineError) -> [String]

    /// Appends to the audit chain, in order: each record the next sequence number, chained to the
    /// previous record's hash (the audit log's line format, `AuditLine`). The engine calls it
    /// last in each transaction, so the chain's head is locked after every other row and only
    /// until commit.
    func appendAudit(_ events: [AuditEvent]) async throws(EngineError)
    /// The chain's lines with a sequence number above `after`, in order, at most `limit`.
    func auditLines(after: Int64, limit: Int) async throws(EngineError) -> [String]
}

/// A grant as the feed found it: its latest state, and the position of that write.
public struct GrantChange: Sendable, Equatable {
    public var position: Int64
    public var grant: EngineGrant

    public init(position: Int64, grant: EngineGrant) {
        self.position = position
        self.grant = grant
    }
}
