import Glibc

/// Users and groups from NSS (getpwuid_r and friends), for naming socket peers, expanding
/// approver groups and telling who a gate covers. Names come from here, never from a client.
public enum UserDirectory {
    public struct Account: Sendable, Equatable {
        public var name: String
        public var uid: UInt32
        public var gid: UInt32

        public init(name: String, uid: UInt32, gid: UInt32) {
            self.name = name
            self.uid = uid
            self.gid = gid
        }
    }

    public static func user(uid: UInt32) -> Account? {
        withPasswd { pw, buf, size, result in getpwuid_r(uid, &pw, buf, size, &result) }
    }

    public static func user(named name: String) -> Account? {
        withPasswd { pw, buf, size, result in getpwnam_r(name, &pw, buf, size, &result) }
    }

    private static func withPasswd(
        _ call: (inout passwd, UnsafeMutablePointer<CChar>, Int, inout UnsafeMutablePointer<passwd>?) -> Int32
    ) -> Account? {
        var size = 4096
        while size <= 1 << 20 {
            var pw = passwd()
            var result: UnsafeMutablePointer<passwd>? = nil
            let buf = UnsafeMutablePointer<CChar>.allocate(capacity: size)
            defer { buf.deallocate() }
            let rc = call(&pw, buf, size, &result)
            if rc == ERANGE {
                size *= 4
                continue
            }
            guard rc == 0, result != nil, let name = pw.pw_name else { return nil }
            return Account(name: String(cString: name), uid: pw.pw_uid, gid: pw.pw_gid)
        }
        return nil
    }

    /// The names of every group `account` belongs to (primary included).
    public static func groupNames(of account: Account) -> Set<String> {
        var count: Int32 = 64
        var gids = [gid_t](repeating: 0, count: Int(count))
        while getgrouplist(account.name, account.gid, &gids, &count) == -1 {
            guard count < 65536 else { return [] }
            gids = [gid_t](repeating: 0, count: Int(count) * 2)
            count = Int32(gids.count)
        }
        var names: Set<String> = []
        for gid in gids.prefix(Int(count)) {
            if let g = group(gid: gid) { names.insert(g.name) }
        }
        return names
    }

    public struct Group {
        public var name: String
        public var gid: UInt32
        public var members: [String]
    }

    public static func group(gid: UInt32) -> Group? {
        withGroup { gr, buf, size, result in getgrgid_r(gid, &gr, buf, size, &result) }
    }

    public static func group(named name: String) -> Group? {
        withGroup { gr, buf, size, result in getgrnam_r(name, &gr, buf, size, &result) }
    }

    private static func withGroup(
        _ call: (inout group, UnsafeMutablePointer<CChar>, Int, inout UnsafeMutablePointer<group>?) -> Int32
    ) -> Group? {
        var size = 4096
        while size <= 1 << 22 {
            var gr = Glibc.group()
            var result: UnsafeMutablePointer<Glibc.group>? = nil
            let buf = UnsafeMutablePointer<CChar>.allocate(capacity: size)
            defer { buf.deallocate() }
            let rc = call(&gr, buf, size, &result)
            if rc == ERANGE {
                size *= 4
                continue
            }
            guard rc == 0, result != nil, let name = gr.gr_name else { return nil }
            var members: [String] = []
            if var p = gr.gr_mem {
                while let m = p.pointee {
                    members.append(String(cString: m))
                    p += 1
                }
            }
            return Group(name: String(cString: name), gid: gr.gr_gid, members: members)
        }
        return nil
    }

    /// Members of a Unix group: its member list and the users whose primary group it is.
    public static func members(ofGroup name: String) -> [String] {
        guard let g = group(named: name) else { return [] }
        var out = Set(g.members)
        setpwent()
        while let pw = getpwent() {
            if pw.pointee.pw_gid == g.gid, let n = pw.pointee.pw_name { out.insert(String(cString: n)) }
        }
        endpwent()
        return out.sorted()
    }

    /// Every account NSS enumerates (local files; a directory service may list fewer), sorted by
    /// name. For `writ doctor`'s "who is gated", not for access decisions.
    public static func allAccounts() -> [Account] {
        var out: [Account] = []
        setpwent()
        while let pw = getpwent() {
            if let n = pw.pointee.pw_name {
                out.append(Account(name: String(cString: n), uid: pw.pointee.pw_uid, gid: pw.pointee.pw_gid))
            }
        }
        endpwent()
        return out.sorted { $0.name < $1.name }
    }
}
