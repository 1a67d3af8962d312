import Glibc

/// The processes of this host, read from /proc.
public enum ProcessTable {
    /// The identity of the process holding `pid` now; nil when there is none. A zombie still has
    /// an identity (use `isAlive` to know whether it runs).
    public static func identity(of pid: Int32) -> ProcessIdentity? {
        record(of: pid)?.identity
    }

    /// What /proc says about `pid` now; nil when there is no such process.
    public static func info(of pid: Int32) -> ProcessInfo? {
        guard pid > 0 else { return nil }
        do throws(SystemCallError) {
            // Both files are opened through one descriptor of /proc/PID: once the process is gone
            // that descriptor answers ESRCH, even if the pid is recycled, so the uids can never
            // come from another process than the stat line.
            let directory = try FileDescriptor.open("/proc/\(pid)", flags: O_RDONLY | O_DIRECTORY)
            let stat = try directory.open(relative: "stat", flags: O_RDONLY).readToEnd(limit: statLimit)
            let status = try directory.open(relative: "status", flags: O_RDONLY).readToEnd(limit: statusLimit)
            guard let record = StatRecord(parsing: stat, pid: pid), let uids = parseUIDs(status: status) else {
                return nil
            }
            return ProcessInfo(record, realUID: uids.real, effectiveUID: uids.effective)
        } catch {
            return nil
        }
    }

    /// Every process in /proc. Processes that exit while the table is read are left out.
    public static func snapshot() -> [ProcessInfo] {
        listPIDs().compactMap { info(of: $0) }
    }

    /// Whether `process` still runs: its pid is held by a process with the same start time, and
    /// that process is not a zombie.
    public static func isAlive(_ process: ProcessIdentity) -> Bool {
        guard let record = record(of: process.pid) else { return false }
        return record.identity == process && !record.hasExited
    }

    /// `root` and every descendant of it in `snapshot` (children by ppid, transitively), root first.
    /// Empty when `snapshot` holds no process with `root`'s pid and start time.
    ///
    /// A child is taken only if it started no earlier than its parent: a snapshot is read one
    /// process at a time, and a process listed under a parent that started after it cannot be
    /// that parent's child (its real parent held the pid before).
    public static func tree(of root: ProcessIdentity, in snapshot: [ProcessInfo]) -> [ProcessInfo] {
        ProcessForest(snapshot).tree(of: root)
    }

    // MARK: - Internal

    static let statLimit = 4096
    static let statusLimit = 65536

    /// `/proc/PID/stat` of `pid`, parsed; nil when there is no such process.
    static func record(of pid: Int32) -> StatRecord? {
        guard pid > 0,
            let text = try? FileDescriptor.open("/proc/\(pid)/stat", flags: O_RDONLY).readToEnd(limit: statLimit)
        else { return nil }
        return StatRecord(parsing: text, pid: pid)
    }

    /// The stat line of every process: cheaper than `snapshot()` (one file per process, not three
    /// opens), for the polling done while sessions end.
    static func records() -> [StatRecord] {
        guard let proc = try? FileDescriptor.open("/proc", flags: O_RDONLY | O_DIRECTORY) else { return [] }
        var records: [StatRecord] = []
        for pid in listPIDs() {
            guard let text = try? proc.open(relative: "\(pid)/stat", flags: O_RDONLY).readToEnd(limit: statLimit),
                let record = StatRecord(parsing: text, pid: pid)
            else { continue }
            records.append(record)
        }
        return records
    }

    /// The numeric entries of /proc: one per process (threads other than the leader are not listed).
    static func listPIDs() -> [Int32] {
        guard let names = try? DirectoryStream("/proc").names() else { return [] }
        return names.compactMap { name in
            StatRecord.unsigned(name[...]).flatMap { Int32(exactly: $0) }.flatMap { $0 > 0 ? $0 : nil }
        }
    }
}

extension ProcessInfo {
    init(_ record: StatRecord, realUID: UInt32, effectiveUID: UInt32) {
        self.init(
            identity: record.identity,
            state: Character(Unicode.Scalar(record.state)),
            ppid: record.ppid,
            sessionID: record.sessionID,
            processGroup: record.processGroup,
            ttyNumber: record.ttyNumber,
            realUID: realUID,
            effectiveUID: effectiveUID
        )
    }
}
