import WritCore
import WritStore

#if canImport(Glibc)
import Glibc
#else
import CLibc
#endif

extension ModuleOptions {
    /// What the options say about one user: whether Writ decides for them at all. Shared by the
    /// PAM module and the sudo plugin so that `managed_group=` means the same on both lines.
    enum Scope {
        /// Writ decides (no managed group, or a member, or membership cannot be told).
        case managed
        /// Not in the managed group: Writ stays out of the decision.
        case unmanaged
        /// The managed group does not exist: a typo here must not gate or free everyone silently.
        case groupMissing(String)
    }

    func scope(for user: HostFacts.UserRecord, log: (Int32, String) -> Void) -> Scope {
        guard let group = managedGroup else { return .managed }
        guard let gid = HostFacts.groupID(named: group) else { return .groupMissing(group) }
        switch HostFacts.isMember(user: user.name, gid: user.gid, of: gid) {
        case false:
            if debug {
                log(LOG_DEBUG, "\(LogText.escape(user.name, limit: 64)) is not in \(LogText.escape(group)): not gated")
            }
            return .unmanaged
        case true:
            return .managed
        case nil:
            // Unknown membership is not "not a member": that would wave the user through.
            log(LOG_ERR, "cannot list the groups of \(LogText.escape(user.name, limit: 64)); treating as managed")
            return .managed
        }
    }
}

extension StoreError {
    /// Whether `failmode=open` may let this error through. Tampering signs (ownership, modes,
    /// symlinks) and errors the invoking user can provoke (file-descriptor or memory limits set
    /// with ulimit before running su or sudo) always fail closed.
    var mayFailOpen: Bool {
        switch self {
        case .missing, .corrupt, .uninitialized, .newerSchema, .busy, .interruptedWrite: true
        case .sqlite, .unreadable, .symlink, .notRegularFile, .notOwnedByRoot, .writableByOthers, .directoryInsecure,
            .notFound,
            .invalid:
            false
        }
    }
}
