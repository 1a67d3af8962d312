import CWritSystem
import Glibc
import Logging
import NIOPosix
import Synchronization
import WritAudit
import WritCore
import WritProcesses
import WritProtocol

/// `writ audit` through writd, served off the engine: on two threads of their own, one read per
/// account at a time, each reading at most a bounded tail of the log backwards from its end
/// (`AuditLog.tail`). So however large the log and however often someone asks, the engine (and
/// with it every other user's request, sudo's session reports and the expiry of grants) never
/// waits for a read, and the memory a read takes is returned when it ends.
final class AuditReader: Sendable {
    /// Bytes of the log one read may scan: a user's (their own records, newest first), root's.
    static let userScanBytes = 8 << 20
    static let rootScanBytes = 64 << 20
    /// Records one reply may carry.
    static let maxRecords = 20_000

    private let path: String
    private let pool: NIOThreadPool
    private let reading = Mutex<Set<UInt32>>([])
    private let started = Mutex(false)
    /// Reads per account (root's are not limited): 5 at once, then one every 2 s, so one
    /// account's loop scans at most a few MiB a second.
    private let reads = Mutex(AuditBudget(burst: 5, refillSeconds: 2))

    init(path: String) {
        self.path = path
        pool = NIOThreadPool(numberOfThreads: 2)
    }

    deinit {
        pool.shutdownGracefully { _ in }
    }

    /// Serves one `audit` request from `who` (the caller's account, uid `uid`): their own records, or (root)
    /// anyone's.
    func serve(_ r: WireRequest, uid: UInt32, who: UserDirectory.Account?) async -> WireResponse {
        guard let who else {
            return .failure(WireError("forbidden", "uid \(uid) has no account on this host"))
        }
        if who.uid != 0, let asked = r.user, asked != who.name {
            return .failure(
                WireError(
                    "forbidden",
                    "only root sees the audit records of other users — run writ audit without --user to see yours"
                )
            )
        }
        if who.uid != 0, let wait = reads.withLock({ $0.take(who.name, now: Int64(time(nil))) }) {
            return .failure(
                WireError("rate_limited", "you read the audit log often in a short time; try again in \(wait) s")
            )
        }
        let claimed = reading.withLock { $0.insert(uid).inserted }
        guard claimed else {
            return .failure(
                WireError("busy", "your previous writ audit is still being read; wait for it and try again")
            )
        }
        defer { _ = reading.withLock { $0.remove(uid) } }
        // The threads start with the first read (an idle writd keeps none).
        if started.withLock({ s in
            defer { s = true }
            return !s
        }) {
            pool.start()
        }
        let path = self.path
        let filterUser = who.uid == 0 ? r.user : who.name
        let scan = who.uid == 0 ? Self.rootScanBytes : Self.userScanBytes
        let since = r.since
        do {
            return try await pool.runIfActive {
                let response = Self.read(path: path, user: filterUser, since: since, scanBytes: scan)
                writ_malloc_trim()  // give the read's pages back at once
                return response
            }
        } catch {
            return .failure(WireError("internal", "writd is stopping; try again when it runs"))
        }
    }

    /// The records about `user` (all with nil) since `since`, from the newest `scanBytes` of the
    /// current file.
    static func read(path: String, user: String?, since: Int64?, scanBytes: Int) -> WireResponse {
        let tail: AuditTail
        do {
            tail = try AuditLog(path: path, rotateBytes: nil, keep: nil).tail(
                since: since,
                maxBytes: scanBytes,
                maxRecords: maxRecords,
                mentioning: user.map(JSONText.quote)
            ) { line in
                guard let user else { return true }
                guard let pairs = AuditLine.flatFields(line) else { return false }
                return pairs.contains { ["actor", "user", "requester", "by"].contains($0.0) && $0.1 == user }
            }
        } catch {
            return .failure(WireError("internal", "writd could not read the audit log: \(error.description)"))
        }
        var response = WireResponse(ok: true)
        response.audit = tail.lines
        if !tail.complete {
            let mib = tail.scannedBytes >> 20
            response.message =
                tail.lines.count >= maxRecords
                ? "showing the newest \(maxRecords) records; use --since to narrow"
                : "showing the records in the newest \(mib) MiB of the audit log; for older ones root reads the files in \(path)'s directory"
        }
        return response
    }
}
