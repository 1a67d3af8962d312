import Glibc

/// The account a hook runs as, looked up at each run (an admin may change it without restarting
/// writd).
struct HookIdentity: Equatable {
    var name: String
    var uid: uid_t
    var gid: gid_t
    var groups: [gid_t]
    /// The account's home directory, or `/` when it has none.
    var home: String
    /// Whether the child must switch to these ids (writd is root) or keeps writd's (it is not).
    var switchIDs: Bool

    /// Resolves the configured hook user. As root: `user` must name an account other than root.
    /// Not as root: hooks run as writd's own user, and `user` must be that one or nil.
    static func resolve(user: String?) -> Result<HookIdentity, HookFailure> {
        let euid = geteuid()
        if euid != 0 {
            let own = Account.lookup(uid: euid)
            if let user {
                guard let wanted = Account.lookup(name: user), wanted.uid == euid else {
                    let ownName = own?.name ?? "uid \(euid)"
                    return .failure(
                        .notRunnable(
                            "writd is not running as root, so hooks run as its own user (\(HookText.escape(ownName))), "
                                + "not '\(HookText.escape(user))'; run writd as root, or set hook_user to its user"
                        )
                    )
                }
            }
            return .success(
                HookIdentity(
                    name: own?.name ?? String(euid),
                    uid: euid,
                    gid: getegid(),
                    groups: [],
                    home: own?.home ?? "/",
                    switchIDs: false
                )
            )
        }
        guard let user, !user.isEmpty else {
            return .failure(
                .notRunnable(
                    "no user is set to run hooks as; set hook_user in the policy to an unprivileged account (a "
                        + "dedicated one such as writ-hook, or nobody)"
                )
            )
        }
        guard let account = Account.lookup(name: user) else {
            return .failure(
                .notRunnable(
                    "the hook user '\(HookText.escape(user))' does not exist; create the account or change "
                        + "hook_user in the policy"
                )
            )
        }
        guard account.uid != 0 else {
            return .failure(
                .notRunnable(
                    "hooks never run as root, and the hook user '\(HookText.escape(user))' has uid 0; set "
                        + "hook_user in the policy to an unprivileged account"
                )
            )
        }
        guard let groups = Account.groups(of: account.name, primary: account.gid) else {
            return .failure(
                .notRunnable("cannot list the groups of the hook user '\(HookText.escape(user))' (NSS lookup failed)")
            )
        }
        return .success(
            HookIdentity(
                name: account.name,
                uid: account.uid,
                gid: account.gid,
                groups: groups,
                home: account.home,
                switchIDs: true
            )
        )
    }
}

/// A passwd entry, copied out of getpwnam_r's buffer.
struct Account {
    var name: String
    var uid: uid_t
    var gid: gid_t
    var home: String

    static func lookup(name: String) -> Account? {
        lookup { pwd, buffer, count, result in getpwnam_r(name, pwd, buffer, count, result) }
    }

    static func lookup(uid: uid_t) -> Account? {
        lookup { pwd, buffer, count, result in getpwuid_r(uid, pwd, buffer, count, result) }
    }

    private static func lookup(
        _ call: (
            UnsafeMutablePointer<passwd>, UnsafeMutablePointer<CChar>, Int,
            UnsafeMutablePointer<UnsafeMutablePointer<passwd>?>
        ) -> Int32
    ) -> Account? {
        var size = 1024
        while size <= 1 << 20 {
            var pwd = passwd()
            var result: UnsafeMutablePointer<passwd>?
            var buffer = [CChar](repeating: 0, count: size)
            var account: Account?
            let rc = buffer.withUnsafeMutableBufferPointer { raw in
                let rc = call(&pwd, raw.baseAddress!, raw.count, &result)
                if rc == 0, result != nil, let name = pwd.pw_name {
                    let dir = pwd.pw_dir.map { String(cString: $0) } ?? ""
                    account = Account(
                        name: String(cString: name),
                        uid: pwd.pw_uid,
                        gid: pwd.pw_gid,
                        home: dir.hasPrefix("/") ? dir : "/"
                    )
                }
                return rc
            }
            if rc == ERANGE {
                size *= 4
                continue
            }
            return account
        }
        return nil
    }

    /// The supplementary groups of `name` (getgrouplist, the primary group included); nil when
    /// the lookup fails.
    static func groups(of name: String, primary: gid_t) -> [gid_t]? {
        var count: Int32 = 32
        for _ in 0..<8 {
            var groups = [gid_t](repeating: 0, count: Int(count))
            var got = count
            let rc = getgrouplist(name, primary, &groups, &got)
            if rc >= 0 { return Array(groups.prefix(Int(got))) }
            count = max(got, count * 2)
        }
        return nil
    }
}
