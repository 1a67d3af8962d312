import Glibc
import WritCore

/// What the modules learn from the system, through calls the invoking user cannot influence:
/// NSS (passwd, group), uname, the real-time clock, stat. Never the environment.
enum HostFacts {
    struct UserRecord {
        var name: String
        var uid: UInt32
        var gid: UInt32
    }

    /// `getpwnam_r`, retrying with a larger buffer on ERANGE.
    static func user(named name: String) -> UserRecord? {
        lookup { pw, buf, len, result in getpwnam_r(name, pw, buf, len, result) }
    }

    /// `getpwuid_r`.
    static func user(uid: UInt32) -> UserRecord? {
        lookup { pw, buf, len, result in getpwuid_r(uid, pw, buf, len, result) }
    }

    private static func lookup(
        _ call: (
            UnsafeMutablePointer<passwd>, UnsafeMutablePointer<CChar>, Int,
            UnsafeMutablePointer<UnsafeMutablePointer<passwd>?>
        ) -> Int32
    ) -> UserRecord? {
        var size = 1024
        while size <= 1 << 20 {
            var pw = passwd()
            var result: UnsafeMutablePointer<passwd>? = nil
            let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: size)
            defer { buffer.deallocate() }
            let rc = call(&pw, buffer, size, &result)
            if rc == ERANGE {
                size *= 4
                continue
            }
            guard rc == 0, result != nil, let namePtr = pw.pw_name else { return nil }
            return UserRecord(name: String(cString: namePtr), uid: pw.pw_uid, gid: pw.pw_gid)
        }
        return nil
    }

    /// `getgrnam_r`: the gid of a group, nil when it does not exist.
    static func groupID(named name: String) -> UInt32? {
        var size = 4096
        while size <= 1 << 22 {
            var gr = group()
            var result: UnsafeMutablePointer<group>? = nil
            let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: size)
            defer { buffer.deallocate() }
            let rc = getgrnam_r(name, &gr, buffer, size, &result)
            if rc == ERANGE {
                size *= 4
                continue
            }
            guard rc == 0, result != nil else { return nil }
            return gr.gr_gid
        }
        return nil
    }

    /// Whether `user` (primary group `gid`) belongs to group `target`, per `getgrouplist`.
    static func isMember(user: String, gid: UInt32, of target: UInt32) -> Bool {
        if gid == target { return true }
        var count: Int32 = 64
        while count <= 65536 {
            var groups = [gid_t](repeating: 0, count: Int(count))
            var n = count
            if getgrouplist(user, gid, &groups, &n) >= 0 {
                return groups.prefix(Int(n)).contains(target)
            }
            count = max(n, count * 2)
        }
        return false
    }

    /// The kernel host name (`uname`), as the names it answers to.
    static func host() -> HostIdentity {
        var u = utsname()
        uname(&u)
        let name = withUnsafeBytes(of: &u.nodename) { raw -> String in
            let bytes = raw.bindMemory(to: UInt8.self)
            let end = bytes.firstIndex(of: 0) ?? bytes.count
            return String(decoding: bytes[..<end], as: UTF8.self)
        }
        return HostIdentity(nodename: name)
    }

    /// Wall-clock UTC seconds (`clock_gettime(CLOCK_REALTIME)`).
    static func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec)
    }

    /// Whether two paths name the same file (device and inode), as sudoers compares commands.
    static func samePath(_ a: String, _ b: String) -> Bool {
        var sa = stat()
        var sb = stat()
        guard stat(a, &sa) == 0, stat(b, &sb) == 0 else { return false }
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino
    }

    /// Whether root-owned `/etc/sudo.conf` loads the writ approval plugin, which is what lets the
    /// PAM stage leave run-as and command scopes to it.
    static func sudoConfLoadsApprovalPlugin(path: String = "/etc/sudo.conf") -> Bool {
        guard let text = readSmallRootFile(path) else { return false }
        for line in text.split(separator: "\n") {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if words.count >= 3, words[0] == "Plugin", words[1] == "writ_approval" { return true }
        }
        return false
    }

    /// Reads a file of at most 64 KiB that root owns and only root can write; nil otherwise.
    static func readSmallRootFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_uid == 0, st.st_mode & 0o022 == 0, st.st_mode & S_IFMT == S_IFREG,
            st.st_size <= 65536
        else { return nil }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
        var got = 0
        while got < bytes.count {
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + got, $0.count - got) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            got += n
        }
        return String(decoding: bytes[..<got], as: UTF8.self)
    }
}

/// C string vectors as sudo and PAM pass them.
enum CStrings {
    /// A NULL-terminated `char *const []` as Swift strings.
    static func array(_ vector: UnsafePointer<UnsafeMutablePointer<CChar>?>?) -> [String] {
        guard let vector else { return [] }
        var out: [String] = []
        var i = 0
        while let p = vector[i] {
            out.append(String(cString: p))
            i += 1
        }
        return out
    }

    /// `name=value` entries as sudo passes them (user_info, command_info).
    static func keyValues(_ vector: UnsafePointer<UnsafeMutablePointer<CChar>?>?) -> KeyValues {
        KeyValues(entries: array(vector))
    }
}

/// `name=value` strings, looked up by name. A linear scan over UTF-8 bytes: these vectors hold a
/// few dozen entries, and a Dictionary would pull hashing code into every sudo for nothing.
struct KeyValues {
    let entries: [String]

    /// The value after the first `=` of the first entry named `name`.
    subscript(_ name: String) -> String? {
        let key = Array(name.utf8)
        for entry in entries {
            let bytes = entry.utf8
            guard bytes.count > key.count, bytes.starts(with: key) else { continue }
            let eq = bytes.index(bytes.startIndex, offsetBy: key.count)
            guard bytes[eq] == UInt8(ascii: "=") else { continue }
            return String(decoding: bytes[bytes.index(after: eq)...], as: UTF8.self)
        }
        return nil
    }
}
