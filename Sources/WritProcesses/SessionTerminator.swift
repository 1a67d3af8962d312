import Glibc

/// Ends the process trees of sessions opened under a grant.
public enum SessionTerminator {
    static let pollInterval: Duration = .milliseconds(25)
    /// How long to wait for SIGSTOP to take effect on each round of the freeze.
    static let freezeWait: Duration = .milliseconds(200)
    static let freezeRounds = 10
    /// How long to wait for SIGKILLed processes to disappear.
    static let killWait: Duration = .seconds(1)

    /// Ends every process in the trees of `roots`.
    ///
    /// 1. SIGHUP, then SIGCONT (a stopped process acts on SIGHUP only once continued), to every
    ///    process of the trees.
    /// 2. Every 25 ms until all are gone or `grace` has passed: read the table again; a process
    ///    forked meanwhile also gets SIGHUP and SIGCONT. Cancelling the calling task cuts the grace
    ///    short (writd is shutting down: end the sessions now).
    /// 3. Freeze what is left: SIGSTOP, wait until it has stopped, read the table again, SIGSTOP
    ///    the children forked before the stop took effect, until a round finds none. A stopped
    ///    process cannot fork, so SIGKILL then reaches the whole tree, and no child forked between
    ///    the last read and the kill escapes to init.
    /// 4. SIGKILL everything frozen; wait up to a second for it to disappear.
    ///
    /// A process belongs to the trees if it descends (by ppid) from a root or from a process seen
    /// in them before, so a child that outlives its parent and is reparented to init is still
    /// ended. Only a process whose pid and start time both match is signalled (see
    /// `ProcessSignal.send`); never pid 0, a negative pid, init, or this process.
    ///
    /// Not caught: a process that leaves the trees between two reads (forks, and its parent exits,
    /// within 25 ms). A root shell can escape in many ways (setsid and double fork, cron, systemd-run);
    /// ending its trees ends the session, it does not contain root.
    ///
    /// `scopes` add the processes of audit sessions (`SessionScope`): what a login started with
    /// `setsid`, a double fork, `nohup`, `screen` or `tmux`, and what `sudo -b` left behind, is in
    /// no tree writd knows but still in the login's audit session.
    public static func end(
        _ roots: [ProcessIdentity],
        scopes: [SessionScope] = [],
        grace: Duration
    ) async
        -> EndReport
    {
        let clock = ContinuousClock()
        let start = clock.now
        var members = Membership(roots: roots, scopes: scopes)
        var hungUp: [Int32] = []
        var hungUpSet: Set<ProcessIdentity> = []

        var live = members.live()
        let deadline = start.advanced(by: grace)
        while !live.isEmpty {
            for process in live where hungUpSet.insert(process.identity).inserted {
                if ProcessSignal.send(SIGHUP, to: process.identity) { hungUp.append(process.identity.pid) }
                _ = ProcessSignal.send(SIGCONT, to: process.identity)
            }
            let now = clock.now
            guard now < deadline, await pause(min(pollInterval, now.duration(to: deadline))) else { break }
            live = members.live()
        }

        var killed: [Int32] = []
        if !live.isEmpty {
            let frozen = await freeze(&members)
            for identity in frozen where ProcessSignal.send(SIGKILL, to: identity) {
                killed.append(identity.pid)
            }
            var killedSet = Set(frozen)
            let killDeadline = clock.now.advanced(by: killWait)
            while true {
                live = members.live()
                // Anything that slipped through the freeze (it was in uninterruptible sleep and
                // could not stop) and forked since is killed here.
                for process in live where killedSet.insert(process.identity).inserted {
                    if ProcessSignal.send(SIGKILL, to: process.identity) { killed.append(process.identity.pid) }
                }
                let now = clock.now
                guard !live.isEmpty, now < killDeadline else { break }
                await pauseEvenIfCancelled(min(pollInterval, now.duration(to: killDeadline)))
            }
        }

        return EndReport(
            hungUp: hungUp,
            killed: killed,
            survivors: live.map(\.identity.pid),
            elapsedNanoseconds: nanoseconds(start.duration(to: clock.now))
        )
    }

    /// SIGSTOPs the trees until a read of the table finds no process that is not stopped yet.
    /// Returns the identities stopped (or sent SIGSTOP), in the order found.
    private static func freeze(_ members: inout Membership) async -> [ProcessIdentity] {
        var frozen: [ProcessIdentity] = []
        var frozenSet: Set<ProcessIdentity> = []
        for _ in 0..<freezeRounds {
            let fresh = members.live().map(\.identity).filter { frozenSet.insert($0).inserted }
            if fresh.isEmpty { break }
            for identity in fresh where ProcessSignal.send(SIGSTOP, to: identity) {
                frozen.append(identity)
            }
            // A process that was inside fork() when SIGSTOP arrived stops only once fork has
            // returned, with the child in /proc: wait for the stop before reading the table again.
            let clock = ContinuousClock()
            let deadline = clock.now.advanced(by: freezeWait)
            while clock.now < deadline {
                let settled = fresh.allSatisfy { identity in
                    guard let record = ProcessTable.record(of: identity.pid), record.identity == identity else {
                        return true
                    }
                    return record.isStopped || record.hasExited
                }
                if settled { break }
                await pauseEvenIfCancelled(.milliseconds(2))
            }
        }
        return frozen
    }

    /// Sleeps; false when the task was cancelled.
    private static func pause(_ duration: Duration) async -> Bool {
        do {
            try await Task.sleep(for: duration)
            return true
        } catch {
            return false
        }
    }

    /// Sleeps even when the task is cancelled: the waits after SIGSTOP and SIGKILL are short and
    /// bounded, and skipping them would only report processes that are about to disappear.
    private static func pauseEvenIfCancelled(_ duration: Duration) async {
        if await pause(duration) { return }
        var request = timespec(
            tv_sec: Int(duration.components.seconds),
            tv_nsec: Int(duration.components.attoseconds / 1_000_000_000)
        )
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR {
            request = remaining
        }
    }

    private static func nanoseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0 else { return 0 }
        return UInt64(seconds) * 1_000_000_000 + UInt64(attoseconds / 1_000_000_000)
    }
}

/// The processes that belong to the trees being ended, across reads of the process table.
struct Membership {
    private let roots: [ProcessIdentity]
    private let scopes: [SessionScope]
    private var seen: [ProcessIdentity] = []
    private var seenSet: Set<ProcessIdentity> = []

    init(roots: [ProcessIdentity], scopes: [SessionScope] = []) {
        // A root that is init or writd would take the whole host, or writd, with it; so would
        // writd's own audit session.
        self.roots = roots.filter { ProcessSignal.mayTarget($0.pid) }
        self.scopes = scopes.filter { $0.auditSession != AuditSession.own }
    }

    /// Reads the table: the processes, not exited, in the trees of the roots and of every process
    /// seen in them before (a child reparented to init when its parent exited still belongs).
    mutating func live() -> [StatRecord] {
        let records = ProcessTable.records()
        let forest = ProcessForest(records)
        var result: [StatRecord] = []
        var found: Set<ProcessIdentity> = []
        for origin in roots + seen {
            for record in forest.tree(of: origin)
            where !record.hasExited && ProcessSignal.mayTarget(record.identity.pid)
                && found.insert(record.identity).inserted
            {
                result.append(record)
            }
        }
        if !scopes.isEmpty, let proc = try? FileDescriptor.open("/proc", flags: O_RDONLY | O_DIRECTORY) {
            for record in records
            where !record.hasExited && ProcessSignal.mayTarget(record.identity.pid)
                && !found.contains(record.identity) && scopes.contains(where: { $0.contains(record, proc: proc) })
            {
                found.insert(record.identity)
                result.append(record)
            }
        }
        for record in result where seenSet.insert(record.identity).inserted {
            seen.append(record.identity)
        }
        return result
    }
}
