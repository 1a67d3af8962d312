import Glibc
import WritCore

/// Long-polls of hosts' grant feeds, answered as soon as a grant for the host changes. One per
/// server process (each replica runs its own): it follows the store's change notifications
/// (PostgreSQL's NOTIFY from every replica) and polls slowly besides, since a notification sent
/// while its connection was down is lost. It reads each new stretch of the feed once and wakes
/// only the waiters whose host a changed grant covers; a woken waiter reads its own changes.
public actor GrantFeedHub {
    public typealias Answer = (grants: [EngineGrant], cursor: Int64, more: Bool)

    let engine: ApprovalEngine
    let pollInterval: Duration
    /// How many waits may be pending at once; past it a wait is refused (`.unavailable`).
    let maxWaiters: Int
    /// How many waits one host may have pending: an agent has one; a host that opens more (a
    /// compromised one) must not crowd out the rest.
    let maxPerHost: Int
    private var cursor: Int64 = 0
    private var started = false
    private var closed = false
    private var wanted = false
    private var reading = false
    private var waiters: [Int: Waiter] = [:]
    /// The waits by each name their host answers to, lower-cased: a grant for one named host (no
    /// `*` or `?`) finds its waits without a scan of all of them.
    private var byName: [String: Set<Int>] = [:]
    private var nextID = 0
    private var perHost: [String: Int] = [:]
    /// Told after each read of the feed: how long after the wake it began and ended, what it
    /// read and how many waits it woke (the server logs it at debug level).
    let trace: (@Sendable (String) -> Void)?
    /// When the first wake not yet read arrived.
    private var wokenAt: (ContinuousClock.Instant, wall: Int64)?

    private struct Waiter {
        let identity: HostIdentity
        /// A grant for this host changed since the waiter last read.
        var dirty = false
        var expired = false
        /// The host itself changed (disabled, enrolled again): answer now, so the caller checks
        /// it again before the next wait.
        var hostChanged = false
        var continuation: CheckedContinuation<Void, Never>?
        var timer: Task<Void, Never>?
    }

    public init(
        engine: ApprovalEngine,
        pollInterval: Duration = .seconds(5),
        maxWaiters: Int = 50_000,
        maxPerHost: Int = 4,
        trace: (@Sendable (String) -> Void)? = nil
    ) {
        self.trace = trace
        self.engine = engine
        self.pollInterval = pollInterval
        self.maxWaiters = maxWaiters
        self.maxPerHost = maxPerHost
    }

    /// Follows the store until the calling task is cancelled; then answers every pending wait.
    public func run() async {
        // Where the feed stands: until the store answers, no wait is woken by the hub (each
        // still reads its own changes when it starts).
        while !Task.isCancelled {
            if let end = try? await engine.grantFeedEnd() {
                cursor = end
                break
            }
            try? await Task.sleep(for: .seconds(1))
        }
        started = true
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [engine] in
                // Followed again a second after the connection drops (the poll covers the gap).
                while !Task.isCancelled {
                    try? await engine.store.followChanges { change in
                        if change.hasPrefix("grant:") {
                            await self.changed()
                        } else if change.hasPrefix("host:") {
                            await self.hostChanged(String(change.dropFirst(5)))
                        }
                    }
                    await self.changed()
                    try? await Task.sleep(for: .seconds(1))
                }
            }
            group.addTask { [pollInterval] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: pollInterval)
                    await self.changed()
                }
            }
            await group.waitForAll()
        }
        shutdown()
    }

    /// Answers every pending wait now, empty and with its cursor, without a read, and every later
    /// one at once: a server that stops (SIGTERM) lets its agents move to another replica.
    public func shutdown() {
        closed = true
        for id in Array(waiters.keys) { wake(id) }
    }

    /// The grants for `host` after `start`, as soon as there are any, or an empty answer whose
    /// cursor has moved past what was read once `timeout` has passed. Once the hub shuts down, or
    /// when the host itself changes (disabled, enrolled again), the answer is empty and comes at
    /// once. Past `maxWaiters` pending waits it is `.unavailable`: the caller should come back
    /// after a pause, not at once.
    public func wait(host: String, after start: Int64, timeout: Duration) async throws(EngineError) -> Answer {
        if closed { return ([], start, false) }
        guard waiters.count < maxWaiters else {
            throw .unavailable("\(maxWaiters) hosts are waiting already: come back in a few seconds")
        }
        guard (perHost[host] ?? 0) < maxPerHost else {
            throw .unavailable("host \(host) has \(maxPerHost) waits pending already: one agent needs one")
        }
        perHost[host, default: 0] += 1
        nextID += 1
        let id = nextID
        let deadline = ContinuousClock.now + timeout
        let identity = HostIdentity(nodename: host)
        waiters[id] = Waiter(
            identity: identity,
            timer: Task {
                // A tolerance of its own: without one the sleep is libdispatch's `dispatch_after`,
                // whose leeway is a tenth of the wait, and 30 s polls were answered 2-3 s late.
                try? await Task.sleep(until: deadline, tolerance: .milliseconds(50), clock: .continuous)
                await self.expire(id)
            }
        )
        let names = Set(identity.names.map { $0.lowercased() })
        for name in names { byName[name, default: []].insert(id) }
        defer {
            perHost[host] = (perHost[host] ?? 1) > 1 ? perHost[host]! - 1 : nil
            waiters[id]?.timer?.cancel()
            waiters[id] = nil
            for name in names {
                byName[name]?.remove(id)
                if byName[name]?.isEmpty == true { byName[name] = nil }
            }
        }
        var cursor = start
        // The hub has read the feed up to `self.cursor`, and from now on checks every grant it
        // reads against this host: a wait that starts there has nothing to read first. That is
        // most waits once the agents follow (each answer's cursor is where the hub stood), so a
        // quiet fleet's polls cost the store no query.
        var read = !(started && start == self.cursor)
        while true {
            // Stopping answers without another read: every pending wait wakes at once.
            if closed || Task.isCancelled { return ([], cursor, false) }
            if read {
                waiters[id]?.dirty = false
                let answer = try await engine.grantChanges(forHost: host, after: cursor)
                if !answer.grants.isEmpty || answer.more { return answer }
                cursor = answer.cursor
            }
            if closed || waiters[id]?.expired != false || waiters[id]?.hostChanged == true {
                // Every grant past `cursor` was read here or by the hub since this wait began,
                // and checked against this host; none was for it (the wait is not dirty): the
                // answer's cursor moves to where the hub stands, without a read of its own.
                let clean = started && waiters[id]?.dirty == false && waiters[id]?.hostChanged == false
                return ([], clean ? max(cursor, self.cursor) : cursor, false)
            }
            if waiters[id]?.dirty == true {
                read = true
                continue
            }
            // A caller that goes away (its client's connection closed) ends its wait now, not
            // at the timeout: it holds one of the host's few waits.
            if Task.isCancelled { return ([], cursor, false) }
            await withTaskCancellationHandler {
                await withCheckedContinuation { waiters[id]?.continuation = $0 }
            } onCancel: {
                Task { await self.expire(id) }
            }
            // Woken: read only for a grant the hub saw for this host (or with no hub reading).
            read = waiters[id]?.dirty == true || !started
        }
    }

    /// How many waits are pending.
    public var pending: Int { waiters.count }

    private func hostChanged(_ name: String) {
        for id in byName[name.lowercased()] ?? [] {
            waiters[id]?.hostChanged = true
            wake(id)
        }
    }

    private func expire(_ id: Int) {
        waiters[id]?.expired = true
        wake(id)
    }

    private func wake(_ id: Int) {
        if let c = waiters[id]?.continuation {
            waiters[id]?.continuation = nil
            c.resume()
        }
    }

    /// A grant changed somewhere: read the new stretch of the feed (one reader at a time; what
    /// changes meanwhile is read after it).
    private func changed() async {
        guard started else { return }
        wanted = true
        if trace != nil, wokenAt == nil {
            var t = timespec()
            clock_gettime(CLOCK_REALTIME, &t)
            wokenAt = (.now, Int64(t.tv_sec) * 1000 + Int64(t.tv_nsec) / 1_000_000)
        }
        guard !reading else { return }
        reading = true
        defer { reading = false }
        while wanted {
            wanted = false
            let woken = wokenAt ?? (.now, 0)
            wokenAt = nil
            let began = ContinuousClock.now
            var readCount = 0
            var wokeCount = 0
            defer {
                if let trace, readCount > 0 {
                    trace(
                        "feed read \(readCount) grants to \(cursor), woke \(wokeCount) waits: woken at \(woken.wall) ms, began \(began - woken.0) after, took \(ContinuousClock.now - began)"
                    )
                }
            }
            var more = true
            while more {
                let page: [EngineGrant]
                do {
                    let read = try await engine.feedPage(after: cursor, limit: 1000)
                    page = read.grants
                    cursor = read.cursor
                    more = read.more
                } catch {
                    // The store is away, or its connections are all busy: try again shortly
                    // rather than leave the wake to the slow poll.
                    Task {
                        try? await Task.sleep(for: .milliseconds(200))
                        await self.changed()
                    }
                    return
                }
                guard !page.isEmpty else { continue }
                readCount += page.count
                var covered: Set<Int> = []
                for grant in page {
                    if grant.host.utf8.contains(where: { $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: "?") }) {
                        for (id, w) in waiters where w.identity.matches(grant.host) { covered.insert(id) }
                    } else {
                        covered.formUnion(byName[grant.host.lowercased()] ?? [])
                    }
                }
                wokeCount += covered.count
                for id in covered {
                    waiters[id]?.dirty = true
                    wake(id)
                }
            }
        }
    }
}

extension ApprovalEngine {
    /// The feed's last committed position.
    public func grantFeedEnd() async throws(EngineError) -> Int64 {
        try await store.transaction { (tx) throws(EngineError) in try await tx.grantFeedEnd() }
    }

    /// One page of the whole feed, every host's: the grants, the cursor after them, and whether
    /// the page was full.
    func feedPage(
        after cursor: Int64,
        limit: Int
    ) async throws(EngineError) -> (
        grants: [EngineGrant], cursor: Int64, more: Bool
    ) {
        let changes = try await store.transaction { (tx) throws(EngineError) in
            try await tx.grantChanges(after: cursor, limit: limit)
        }
        return (changes.map(\.grant), changes.last?.position ?? cursor, changes.count == limit)
    }
}
