import Glibc

/// Whether anything receives syslog(3) messages on this host. syslog(3) drops messages silently
/// when `/dev/log` has no listener (a container without rsyslog or journald): Writ's authpriv
/// lines and the audit log's head hashes, kept there as a copy off the audit file, would be lost
/// without a word.
public enum SyslogSocket {
    public static let path = "/dev/log"

    /// Connects a datagram socket to `/dev/log`, as syslog(3) does.
    public static func isListening(_ path: String = path) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        return rc == 0
    }

    /// The one line writd and doctor say when nothing listens.
    public static let missing =
        "nothing receives syslog on /dev/log: Writ's authpriv lines and the audit head hashes are lost — start rsyslog or systemd-journald"
}
