import Glibc
import NIOConcurrencyHelpers
import NIOPosix
import WritProcesses

/// NSS answers (users, their groups, group members) as writd's engine uses them, cached, so a
/// directory that hangs (LDAP or SSSD down) does not stall the engine and, behind it, every other
/// request and the expiry bookkeeping.
///
/// The caller's own account and groups — what every request needs — are looked up off the
/// engine before it is entered (`prepare`), on threads of their own with a deadline: a lookup
/// that does not answer in time fails that request alone ("the user directory did not answer"),
/// or uses what was known before. On the engine, a cached answer is used even when old, and
/// refreshed off the engine; only a name never seen before is looked up in place.
final class DirectoryCache: Sendable {
    /// Answers younger than this are used as they are; older ones are used and refreshed.
    static let freshSeconds: Int64 = 60
    /// Answers older than this are never used: they are looked up again in place (a user removed
    /// from an approver group must stop approving within minutes, even if refreshing fails).
    static let maxAgeSeconds: Int64 = 300
    /// How long a request waits for its caller's lookup before failing.
    static let deadline: Duration = .seconds(2)
    /// Lookups waiting or running at once; past that, new ones fail at once.
    static let maxInFlight = 64

    /// What is cached: a user by uid or name, the groups of a user, the members of a group.
    private enum Key: Hashable, Sendable {
        case uid(UInt32)
        case name(String)
        case groups(String)
        case members(String)
    }
    private enum Answer: Sendable {
        case account(UserDirectory.Account?)
        case names(Set<String>)
        case list([String])
    }
    private struct Cached {
        var answer: Answer
        var at: Int64
    }
    private struct State {
        var table: [Key: Cached] = [:]
        var refreshing: Set<Key> = []
        /// The lookups of callers' accounts running now, by uid: a second caller waits for the
        /// same one (a thousand connections of one user are one lookup).
        var pending: [UInt32: Task<(UserDirectory.Account?, Set<String>)?, Never>] = [:]
        var inFlight = 0
        var started = false
    }

    private let state = NIOLockedValueBox(State())
    private let pool: NIOThreadPool
    private let clock: @Sendable () -> Int64
    private let directory: Directory

    /// Where answers come from: NSS, or a test's stand-in.
    struct Directory: Sendable {
        var user: @Sendable (UInt32) -> UserDirectory.Account?
        var userNamed: @Sendable (String) -> UserDirectory.Account?
        var groupNames: @Sendable (UserDirectory.Account) -> Set<String>
        var members: @Sendable (String) -> [String]

        static let nss = Directory(
            user: { UserDirectory.user(uid: $0) },
            userNamed: { UserDirectory.user(named: $0) },
            groupNames: { UserDirectory.groupNames(of: $0) },
            members: { UserDirectory.members(ofGroup: $0) }
        )
    }

    init(clock: @escaping @Sendable () -> Int64, directory: Directory = .nss) {
        self.clock = clock
        self.directory = directory
        pool = NIOThreadPool(numberOfThreads: 2)
    }

    /// The pool's threads start with the first lookup (an idle writd keeps none).
    private func startPool() {
        let first = state.withLockedValue { s -> Bool in
            defer { s.started = true }
            return !s.started
        }
        if first { pool.start() }
    }

    deinit {
        pool.shutdownGracefully { _ in }
    }

    // MARK: off the engine

    /// Looks up `uid`'s account and groups off the engine, within `deadline`, so the engine finds
    /// them cached. Nil when done (found, not found, or known from before); else why not.
    func prepare(uid: UInt32) async -> String? {
        let now = clock()
        let known = state.withLockedValue { s -> Bool in
            guard let a = s.table[.uid(uid)], now - a.at < Self.freshSeconds else { return false }
            guard case .account(let account?) = a.answer else { return true }
            return s.table[.groups(account.name)].map { now - $0.at < Self.freshSeconds } ?? false
        }
        if known { return nil }
        startPool()
        let directory = self.directory
        let pool = self.pool
        let lookup = state.withLockedValue { s -> Task<(UserDirectory.Account?, Set<String>)?, Never>? in
            if let running = s.pending[uid] { return running }
            guard s.inFlight < Self.maxInFlight else { return nil }
            s.inFlight += 1
            let task = Task { () -> (UserDirectory.Account?, Set<String>)? in
                try? await pool.runIfActive {
                    let account = directory.user(uid)
                    return (account, account.map(directory.groupNames) ?? [])
                }
            }
            s.pending[uid] = task
            // When it answers (in time or late), its answer is cached and the slot freed.
            Task { [self] in
                let late = await task.value
                state.withLockedValue { s in
                    s.inFlight -= 1
                    s.pending[uid] = nil
                    if let (account, groups) = late { store(&s, uid: uid, account: account, groups: groups) }
                }
            }
            return task
        }
        guard let lookup else { return staleOr("too many lookups are waiting for the user directory", uid: uid) }
        // Whichever comes first: the answer, or the deadline (the lookup is not waited for).
        let first = Once()
        let answer: (UserDirectory.Account?, Set<String>)?? = await withCheckedContinuation { continuation in
            Task {
                let value = await lookup.value
                if first.claim() { continuation.resume(returning: .some(value)) }
            }
            Task {
                try? await Task.sleep(for: Self.deadline)
                if first.claim() { continuation.resume(returning: nil) }
            }
        }
        guard let found = answer ?? nil else {
            return staleOr("the user directory (NSS) did not answer within 2 s", uid: uid)
        }
        state.withLockedValue { store(&$0, uid: uid, account: found.0, groups: found.1) }
        return nil
    }

    private func store(_ s: inout State, uid: UInt32, account: UserDirectory.Account?, groups: Set<String>) {
        let now = clock()
        s.table[.uid(uid)] = Cached(answer: .account(account), at: now)
        if let account {
            s.table[.name(account.name)] = Cached(answer: .account(account), at: now)
            s.table[.groups(account.name)] = Cached(answer: .names(groups), at: now)
        }
    }

    /// Nil (go on) when an answer for `uid` not older than `maxAgeSeconds` is cached; else `why`.
    private func staleOr(_ why: String, uid: UInt32) -> String? {
        let now = clock()
        return state.withLockedValue { s in s.table[.uid(uid)].map { now - $0.at < Self.maxAgeSeconds } ?? false }
            ? nil : why + "; try again, and check the directory service (sssd, nslcd)"
    }

    // MARK: on the engine

    func user(uid: UInt32) -> UserDirectory.Account? {
        let directory = self.directory
        guard case .account(let a) = cached(.uid(uid), { .account(directory.user(uid)) }) else { return nil }
        return a
    }

    func user(named name: String) -> UserDirectory.Account? {
        let directory = self.directory
        guard case .account(let a) = cached(.name(name), { .account(directory.userNamed(name)) }) else { return nil }
        return a
    }

    func groupNames(of account: UserDirectory.Account) -> Set<String> {
        let directory = self.directory
        guard case .names(let n) = cached(.groups(account.name), { .names(directory.groupNames(account)) }) else {
            return []
        }
        return n
    }

    func members(ofGroup name: String) -> [String] {
        let directory = self.directory
        guard case .list(let l) = cached(.members(name), { .list(directory.members(name)) }) else { return [] }
        return l
    }

    /// The cached answer (refreshed off the engine when old), else looked up now and cached.
    private func cached(_ key: Key, _ fetch: @escaping @Sendable () -> Answer) -> Answer {
        let now = clock()
        if let hit = state.withLockedValue({ $0.table[key] }), now - hit.at < Self.maxAgeSeconds {
            if now - hit.at >= Self.freshSeconds { refresh(key, fetch) }
            return hit.answer
        }
        let answer = fetch()
        state.withLockedValue { $0.table[key] = Cached(answer: answer, at: now) }
        return answer
    }

    private func refresh(_ key: Key, _ fetch: @escaping @Sendable () -> Answer) {
        let claimed = state.withLockedValue { s -> Bool in
            guard s.inFlight < Self.maxInFlight, s.refreshing.insert(key).inserted else { return false }
            s.inFlight += 1
            return true
        }
        guard claimed else { return }
        startPool()
        let clock = self.clock
        Task { [pool, self] in
            let answer = try? await pool.runIfActive { fetch() }
            state.withLockedValue { s in
                s.inFlight -= 1
                s.refreshing.remove(key)
                if let answer { s.table[key] = Cached(answer: answer, at: clock()) }
            }
        }
    }
}

/// True for the first caller of `claim` only.
private final class Once: Sendable {
    private let claimed = NIOLockedValueBox(false)

    func claim() -> Bool {
        claimed.withLockedValue { was in
            defer { was = true }
            return !was
        }
    }
}
