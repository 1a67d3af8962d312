import CWritHost
import WritCore
import WritStore

#if canImport(Glibc)
import Glibc
#else
import CLibc  // Embedded Swift build of the module: no Glibc overlay
#endif

/// What the modules learn from the system, through calls the invoking user cannot influence:
/// NSS (passwd, group), uname, the real-time clock, stat. Never the environment.
enum HostFacts {
    struct UserRecord {
        var name: String
        var uid: UInt32
        var gid: UInt32
        var home: String
        var shell: String
    }

    /// `getpwnam_r`, retrying with a larger buffer on ERANGE. The name is passed on as the bytes
    /// the caller got (no round trip through String, which would repair invalid UTF-8 into
    /// another name).
    static func user(named name: UnsafePointer<CChar>) -> UserRecord? {
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
            // A name that is not valid UTF-8 cannot be compared faithfully with a grant: unknown.
            guard rc == 0, result != nil, let namePtr = pw.pw_name, let name = String(validatingCString: namePtr)
            else { return nil }
            return UserRecord(
                name: name,
                uid: pw.pw_uid,
                gid: pw.pw_gid,
                home: pw.pw_dir.flatMap { String(validatingCString: $0) } ?? "",
                shell: pw.pw_shell.flatMap { String(validatingCString: $0) } ?? ""
            )
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

    /// Whether `user` (primary group `gid`) belongs to group `target`, per `getgrouplist`; nil
    /// when the groups cannot be listed (a directory service down, descriptor limits), which the
    /// caller must not read as "not a member".
    static func isMember(user: String, gid: UInt32, of target: UInt32) -> Bool? {
        if gid == target { return true }
        var count: Int32 = 64
        while count <= 65536 {
            var groups = [gid_t](repeating: 0, count: Int(count))
            var n = count
            if getgrouplist(user, gid, &groups, &n) >= 0 {
                return groups.prefix(Int(max(0, min(n, count)))).contains(target)
            }
            guard n > count else { return nil }  // failed without asking for more room
            count = n
        }
        return nil
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

    /// Whether `command`, as sudo resolved it, is the granted program `granted` reached through
    /// another directory name (`/bin/true` for a grant of `/usr/bin/true` on merged /usr).
    ///
    /// The file names must be equal byte for byte, and `command`'s directory must resolve to the
    /// granted one through directories and symlinks that only root can change — so the answer
    /// cannot change between this check and sudo's exec. Device and inode are never compared:
    /// `rbash` is `bash`, and a multi-call binary is one file under many names.
    static func sameProgram(_ granted: String, _ command: String) -> Bool {
        let (grantedDir, grantedName) = StoreFile.split(granted)
        let (commandDir, commandName) = StoreFile.split(command)
        guard grantedName.utf8.elementsEqual(commandName.utf8),
            let real = RootOnlyPath.resolveDirectory(commandDir)
        else { return false }
        return real.utf8.elementsEqual(grantedDir.utf8)
    }

    /// Whether this process is sudo's plugin-capable front end (sudo.ws, which reads sudo.conf)
    /// and root-owned `/etc/sudo.conf` loads the writ approval plugin: what lets the PAM stage
    /// leave run-as and command scopes to the plugin. sudo-rs ignores sudo.conf, so a plugin line
    /// left there must not count: sudo.ws links libsudo_util, sudo-rs does not.
    /// The sudo must also be the distribution's `/usr/bin/sudo`, which reads `/etc/sudo.conf`: a
    /// sudo built from source reads another sudo.conf, where a stale line in /etc would promise a
    /// plugin that never runs.
    /// Returns the options on the writ_approval line (the words after its path), nil when the
    /// plugin will not run.
    static func approvalPluginThatWillRun() -> [String]? {
        var exe = stat()
        var sudo = stat()
        guard writ_process_is_sudo_front_end() != 0, stat("/proc/self/exe", &exe) == 0,
            stat("/usr/bin/sudo", &sudo) == 0, exe.st_dev == sudo.st_dev, exe.st_ino == sudo.st_ino
        else { return nil }
        return approvalPluginOptions()
    }

    static func sudoConfLoadsApprovalPlugin(path: String = "/etc/sudo.conf") -> Bool {
        approvalPluginOptions(path: path) != nil
    }

    /// The words after the path on sudo.conf's `Plugin writ_approval PATH …` line, read as sudo
    /// reads the file: the keyword in any case, `#` comments (a line's first word, or a word after
    /// blanks). nil when there is no such line.
    static func approvalPluginOptions(path: String = "/etc/sudo.conf") -> [String]? {
        guard let text = readSmallRootFile(path) else { return nil }
        for line in text.split(separator: "\n") {
            var words: [Substring] = []
            for word in line.split(whereSeparator: { $0 == " " || $0 == "\t" }) {
                if word.hasPrefix("#") { break }
                words.append(word)
            }
            guard words.count >= 3, isPluginKeyword(words[0]), words[1] == "writ_approval" else { continue }
            return words.dropFirst(3).map { String($0) }
        }
        return nil
    }

    /// `Plugin` compared as sudo does (strncasecmp), ASCII only: no Unicode tables in the module.
    static func isPluginKeyword(_ word: Substring) -> Bool {
        let expected = Array("plugin".utf8)
        let bytes = Array(word.utf8)
        guard bytes.count == expected.count else { return false }
        for (b, e) in zip(bytes, expected) where (b | 0x20) != e { return false }
        return true
    }

    /// Reads a file of at most 64 KiB that root owns and only root can write; nil otherwise.
    static func readSmallRootFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_uid == 0, st.st_mode & 0o022 == 0,
            st.st_mode & mode_t(S_IFMT) == mode_t(S_IFREG),
            st.st_size <= 65536
        else { return nil }
        return String(decoding: readUpTo(fd, Int(st.st_size)), as: UTF8.self)
    }

    /// Up to `count` bytes from `fd` (fewer at its end), retrying EINTR.
    static func readUpTo(_ fd: Int32, _ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < bytes.count {
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + got, $0.count - got) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            got += n
        }
        return Array(bytes[..<got])
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

    /// Like `array`, and whether every string was valid UTF-8 (invalid bytes are repaired in
    /// the strings returned, which then must not be trusted for comparisons).
    static func validatedArray(_ vector: UnsafePointer<UnsafeMutablePointer<CChar>?>?) -> ([String], Bool) {
        guard let vector else { return ([], true) }
        var out: [String] = []
        var valid = true
        var i = 0
        while let p = vector[i] {
            if let s = String(validatingCString: p) {
                out.append(s)
            } else {
                valid = false
                out.append(String(cString: p))
            }
            i += 1
        }
        return (out, valid)
    }

    /// `name=value` entries as sudo passes them (user_info, command_info).
    static func keyValues(_ vector: UnsafePointer<UnsafeMutablePointer<CChar>?>?) -> KeyValues {
        var values = KeyValues(entries: [])
        guard let vector else { return values }
        var i = 0
        while let p = vector[i] {
            if let s = String(validatingCString: p) {
                values.entries.append(s)
            } else {
                values.invalidEntries.append(i)
                values.entries.append(String(cString: p))
            }
            i += 1
        }
        return values
    }
}

/// `name=value` strings, looked up by name. A linear scan over UTF-8 bytes: these vectors hold a
/// few dozen entries, and a Dictionary would pull hashing code into every sudo for nothing.
struct KeyValues {
    var entries: [String]
    /// Indexes of entries that were not valid UTF-8.
    var invalidEntries: [Int] = []

    /// Whether the entry named `name` (if any) was valid UTF-8.
    func isValidText(_ name: String) -> Bool {
        let key = Array(name.utf8) + [UInt8(ascii: "=")]
        for (i, entry) in entries.enumerated() where entry.utf8.starts(with: key) {
            return !invalidEntries.contains(i)
        }
        return true
    }

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
