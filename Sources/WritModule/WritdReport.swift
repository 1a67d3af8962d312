import WritCore

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
