import Glibc
import Testing

@testable import WritProcesses

/// A pseudo-terminal pair. Swift's Glibc module leaves out posix_openpt, grantpt, unlockpt and
/// ptsname_r (they need _XOPEN_SOURCE), so they are looked up in the C library at run time.
final class PseudoTerminal {
    private typealias IntCall = @convention(c) (Int32) -> Int32
    private typealias NameCall = @convention(c) (Int32, UnsafeMutablePointer<CChar>?, Int) -> Int32

    let master: Int32
    let slave: Int32
    let slavePath: String

    init() throws {
        let openpt = unsafeBitCast(try #require(dlsym(nil, "posix_openpt")), to: IntCall.self)
        let grantpt = unsafeBitCast(try #require(dlsym(nil, "grantpt")), to: IntCall.self)
        let unlockpt = unsafeBitCast(try #require(dlsym(nil, "unlockpt")), to: IntCall.self)
        let ptsname = unsafeBitCast(try #require(dlsym(nil, "ptsname_r")), to: NameCall.self)

        let master = openpt(O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard master >= 0 else { throw SystemCallError("posix_openpt", errno: errno) }
        var name = [CChar](repeating: 0, count: 128)
        guard grantpt(master) == 0, unlockpt(master) == 0, ptsname(master, &name, name.count) == 0 else {
            close(master)
            throw SystemCallError("grantpt/unlockpt/ptsname_r", errno: errno)
        }
        let path = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let slave = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard slave >= 0 else {
            close(master)
            throw SystemCallError("open \(path)", errno: errno)
        }
        // Raw: what the notifier writes arrives at the master byte for byte (no CR LF mapping).
        var attributes = termios()
        tcgetattr(slave, &attributes)
        cfmakeraw(&attributes)
        tcsetattr(slave, TCSANOW, &attributes)
        self.master = master
        self.slave = slave
        self.slavePath = path
    }

    /// The terminal's device number, as /proc/PID/stat gives it (tty_nr).
    var deviceNumber: Int32 {
        var st = stat()
        fstat(slave, &st)
        return Int32(truncatingIfNeeded: st.st_rdev)
    }

    /// Reads what has arrived at the master until `count` bytes are in or `timeout` passes
    /// without more arriving.
    func read(atLeast count: Int, timeout: Duration = .seconds(2)) -> [UInt8] {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        let milliseconds = Int32(timeout.components.seconds * 1000)
        while received.count < count {
            var pollfd = pollfd(fd: master, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pollfd, 1, milliseconds)
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { break }
            let got = buffer.withUnsafeMutableBytes { Glibc.read(master, $0.baseAddress, $0.count) }
            guard got > 0 else { break }
            received += buffer[..<got]
        }
        return received
    }

    deinit {
        close(slave)
        close(master)
    }
}
