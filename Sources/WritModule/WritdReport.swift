import WritCore
import WritStore

#if canImport(Glibc)
import Glibc
#else
import CLibc  // Embedded Swift build of the module: no Glibc overlay
#endif

/// Tells writd about a session or a sudo event, best effort: one frame on a non-blocking Unix
/// socket, no reply awaited. If writd is down, busy or slow, the report is dropped (the module
/// has already written the event to syslog) and the login or sudo goes on unaffected.
/// writd learns the process from SO_PEERCRED; nothing in the frame can name another process.
enum WritdReport {
    static let socketPath = "/run/writ/writd.sock"

    struct Fields {
        var event: String
        var user: String
        var service: String
        var capability: Capability?
        var tty: String? = nil
        var grant: String? = nil
        var runas: String? = nil
        var command: String? = nil
        var detail: String? = nil
    }

    /// The frame: 4-byte big-endian length, then the JSON request writd's `report` op reads.
    static func frame(_ f: Fields) -> [UInt8] {
        var json = "{\"v\":1,\"op\":\"report\",\"event\":\(JSONText.quote(f.event)),\"user\":\(JSONText.quote(f.user))"
        json += ",\"service\":\(JSONText.quote(f.service))"
        if let c = f.capability { json += ",\"capability\":\(JSONText.quote(c.rawValue))" }
        if let t = f.tty { json += ",\"tty\":\(JSONText.quote(t))" }
        if let g = f.grant { json += ",\"grant\":\(JSONText.quote(g))" }
        if let r = f.runas { json += ",\"runas\":\(JSONText.quote(r))" }
        if let c = f.command { json += ",\"commands\":[\(JSONText.quote(c))]" }
        if let d = f.detail { json += ",\"detail\":\(JSONText.quote(d))" }
        // Only a report writd may track as a session needs the process's own facts (three /proc
        // reads): refusals and exits are sent without them.
        if f.event == "session_open" || f.event == "sudo_accept" {
            let me = SelfFacts.current()
            if let s = me.auditSession, let l = me.loginUID {
                json += ",\"audit_session\":\(s),\"login_uid\":\(l)"
            }
            if let t = me.startTime { json += ",\"start_time\":\(t)" }
        }
        json += "}"
        let body = Array(json.utf8)
        let n = UInt32(truncatingIfNeeded: body.count)
        return [UInt8(n >> 24), UInt8((n >> 16) & 0xff), UInt8((n >> 8) & 0xff), UInt8(n & 0xff)] + body
    }

    /// Sends one report; returns false if writd could not take it at once.
    @discardableResult
    static func send(_ f: Fields) -> Bool {
        let bytes = frame(f)
        guard bytes.count <= 60 * 1024 else { return false }
        let fd = socket(
            AF_UNIX,
            Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue),
            0
        )
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let path = Array(socketPath.utf8)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in path.enumerated() where i < raw.count - 1 { raw[i] = b }
        }
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else { return false }
        let sent = bytes.withUnsafeBytes { sendNow(fd, $0.baseAddress, $0.count) }
        return sent == bytes.count
    }
}

/// send(2) without SIGPIPE and without waiting.
@inline(__always)
func sendNow(_ fd: Int32, _ buf: UnsafeRawPointer?, _ len: Int) -> Int {
    send(fd, buf, len, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
}

/// What the kernel says about this process: its audit session and login uid (unset: nil) and
/// its start time. Read from /proc/self, which the user running sudo cannot change.
enum SelfFacts {
    static let unset: UInt64 = 0xFFFF_FFFF

    static func current() -> (auditSession: UInt32?, loginUID: UInt32?, startTime: UInt64?) {
        let session = number(file("/proc/self/sessionid")[...])
        let login = number(file("/proc/self/loginuid")[...])
        var start: UInt64? = nil
        let stat = file("/proc/self/stat")
        // Fields after the command name (which may hold spaces and parentheses): state is the
        // 3rd field of the line, the start time the 22nd.
        if let close = stat.lastIndex(of: UInt8(ascii: ")")) {
            var field = 2
            var i = close + 1
            while i < stat.count {
                while i < stat.count && stat[i] == 0x20 { i += 1 }
                let begin = i
                while i < stat.count && stat[i] != 0x20 && stat[i] != 0x0A { i += 1 }
                field += 1
                if field == 22 {
                    start = number(stat[begin..<i])
                    break
                }
            }
        }
        return (
            session.flatMap { $0 == unset ? nil : UInt32(exactly: $0) },
            login.flatMap { $0 == unset ? nil : UInt32(exactly: $0) },
            start
        )
    }

    /// The first bytes (at most 1 KiB) of a /proc file.
    static func file(_ path: String) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        return HostFacts.readUpTo(fd, 1024)
    }

    /// A decimal number (up to 19 digits, a trailing newline allowed); nil otherwise.
    static func number(_ digits: ArraySlice<UInt8>) -> UInt64? {
        var value: UInt64 = 0
        var count = 0
        for byte in digits {
            if byte == 0x0A { break }
            guard byte >= 0x30 && byte <= 0x39, count < 19 else { return nil }
            value = value * 10 + UInt64(byte - 0x30)
            count += 1
        }
        return count > 0 ? value : nil
    }
}
