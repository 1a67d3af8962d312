import Crypto
import Glibc
import Logging
import NIOConcurrencyHelpers
import WritCore
import WritPolicy

/// The fleet's policy on one replica: the file `--policy` names, in the format writd reads
/// (`writ policy validate|test|replay` check it). Read at start and again whenever the file
/// changes (checked every few seconds, and at once on SIGHUP). A file that does not load is
/// logged and the last good policy stays in force, on every replica alike: each reads the file
/// itself, so a fleet's replicas must be given the same file (configuration management, a
/// shared mount).
public final class ServerPolicy: Sendable {
    public struct Loaded: Sendable {
        public let policy: Policy
        /// SHA-256 of the file's bytes, hex: what requests record.
        public let version: String
        /// The git commit of the file's checkout, when it is one.
        public let commit: String?
    }

    private struct State {
        var loaded: Loaded?
        var stamp: FileStamp?
        var error: String?
    }

    public let path: String
    private let state = NIOLockedValueBox(State())
    /// One read at a time (SIGHUP and the periodic check): an older read never lands last.
    private let reading = NIOLock()
    private let logger: Logger

    public init(path: String, logger: Logger) {
        self.path = path
        self.logger = logger
    }

    /// The policy in force, if one ever loaded.
    public var current: Loaded? { state.withLockedValue { $0.loaded } }

    /// Why the last read failed (nil once one succeeds).
    public var error: String? { state.withLockedValue { $0.error } }

    /// Reads the file again when it changed since the last read (always with `force`). Returns
    /// whether a new policy is in force.
    @discardableResult
    public func reload(force: Bool = false) -> Bool {
        reading.withLock { read(force: force) }
    }

    private func read(force: Bool) -> Bool {
        var st = stat()
        guard stat(path, &st) == 0 else {
            let message = "\(path): \(String(cString: strerror(errno)))"
            return failed(message, stamp: nil, force: force)
        }
        let stamp = FileStamp(st)
        if !force, state.withLockedValue({ $0.stamp == stamp }) { return false }
        // The policy decides who becomes root on every host: a file someone else can change is
        // no policy (the server runs as its own account, which must not own it either).
        guard st.st_uid == 0, st.st_mode & 0o022 == 0 else {
            return failed(
                "\(path): owned by uid \(st.st_uid) with mode \(String(st.st_mode & 0o777, radix: 8)); it must be root's and not writable by others (chown root: and chmod go-w)",
                stamp: stamp,
                force: true
            )
        }
        do {
            let bytes = try Policy.contents(of: path)
            let policy = try Policy.parse(bytes: bytes, file: path)
            let loaded = Loaded(
                policy: policy,
                version: Hex.lowercase(SHA256.hash(data: bytes)),
                commit: PolicyProvenance.gitCommit(forFileAt: path)
            )
            let previous = state.withLockedValue { s in
                defer { s = State(loaded: loaded, stamp: stamp, error: nil) }
                return s.loaded?.version
            }
            if previous != loaded.version {
                logger.notice(
                    "policy \(loaded.version.prefix(12)) loaded from \(path): \(policy.flows.count) flow(s)"
                )
            }
            return previous != loaded.version
        } catch {
            return failed(error.description, stamp: stamp, force: true)
        }
    }

    private func failed(_ message: String, stamp: FileStamp?, force: Bool) -> Bool {
        let (kept, repeated) = state.withLockedValue { s in
            let repeated = s.error == message && !force
            s.error = message
            s.stamp = stamp
            return (s.loaded.map { "keeping policy \($0.version.prefix(12))" }, repeated)
        }
        if !repeated {
            logger.error(
                "policy not loaded (\(kept ?? "no policy is in force: requests are refused")):\n\(message)"
            )
        }
        return false
    }
}

/// What identifies one version of a file without reading it.
struct FileStamp: Equatable {
    var device: UInt64
    var inode: UInt64
    var size: Int64
    var modified: Int64
    var modifiedNanoseconds: Int
    /// The inode's change time, owner and mode: `chown`/`chmod` after a refusal, and a copy that
    /// keeps the old mtime, are changes too.
    var changed: Int64
    var changedNanoseconds: Int
    var owner: UInt32
    var mode: UInt32

    init(_ st: stat) {
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
        size = Int64(st.st_size)
        modified = Int64(st.st_mtim.tv_sec)
        modifiedNanoseconds = st.st_mtim.tv_nsec
        changed = Int64(st.st_ctim.tv_sec)
        changedNanoseconds = st.st_ctim.tv_nsec
        owner = st.st_uid
        mode = st.st_mode
    }
}
