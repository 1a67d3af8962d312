import FoundationEssentials
import Glibc

/// A blocking client of writd's Unix socket, for the CLI. One connection per instance.
public final class WritClient {
    private var fd: Int32
    public let socketPath: String

    public enum ConnectError: Error, Sendable, CustomStringConvertible {
        /// Nothing listens: writd is not running (or the socket is stale).
        case notRunning(path: String)
        case failed(path: String, errno: Int32)

        public var description: String {
            switch self {
            case .notRunning(let p): "writd is not running (no answer on \(p)) — \(DaemonControl.hint("start"))"
            case .failed(let p, let e):
                "cannot reach writd on \(p): \(String(cString: strerror(e))) — check it with: writ doctor"
            }
        }
    }

    private let timeoutSeconds: Int

    /// Connects, with `timeoutSeconds` for each send and receive.
    public init(socketPath: String = Wire.defaultSocketPath, timeoutSeconds: Int = 30) throws(ConnectError) {
        self.socketPath = socketPath
        self.timeoutSeconds = timeoutSeconds
        fd = try Self.open(socketPath, timeoutSeconds: timeoutSeconds)
    }

    /// Drops the connection and opens a new one (after writd refused it as busy).
    public func reconnect() throws(ConnectError) {
        close(fd)
        fd = -1
        fd = try Self.open(socketPath, timeoutSeconds: timeoutSeconds)
    }

    private static func open(_ socketPath: String, timeoutSeconds: Int) throws(ConnectError) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .failed(path: socketPath, errno: errno) }
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(socketPath.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            close(fd)
            throw .failed(path: socketPath, errno: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if rc != 0 {
            let e = errno
            close(fd)
            if e == ENOENT || e == ECONNREFUSED { throw .notRunning(path: socketPath) }
            throw .failed(path: socketPath, errno: e)
        }
        return fd
    }

    deinit { close(fd) }

    /// Sends one request and waits for its reply.
    public func call(_ request: WireRequest) throws(WireError) -> WireResponse {
        let body: Data
        do { body = try Wire.encoder().encode(request) } catch {
            throw WireError("bad_request", "could not encode the request: \(error)")
        }
        do {
            try send(Wire.header(length: body.count) + Array(body))
        } catch {
            // writd may have answered and closed before reading (it refuses a connection over the
            // per-user cap at once): its reply is still waiting to be read.
            if let early = try? readReply() { return early }
            throw error
        }
        return try readReply()
    }

    private func readReply() throws(WireError) -> WireResponse {
        let header = try receive(4)
        let length = Wire.length(header: header)
        guard length <= Wire.maxResponseBytes else {
            throw WireError("too_large", "writd's reply is \(length) bytes, over the limit")
        }
        let payload = try receive(length)
        do { return try Wire.decoder().decode(WireResponse.self, from: Data(payload)) } catch {
            throw WireError(
                "bad_reply",
                "writd sent a reply this writ cannot read — are writ and writd the same version?"
            )
        }
    }

    private func send(_ bytes: [UInt8]) throws(WireError) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw WireError("unavailable", "writd closed the connection: \(String(cString: strerror(errno)))")
            }
            offset += n
        }
    }

    private func receive(_ count: Int) throws(WireError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var offset = 0
        while offset < count {
            let n = out[offset...].withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                throw WireError("timeout", "writd did not answer in time — check it with: writ doctor")
            }
            guard n > 0 else { throw WireError("unavailable", "writd closed the connection before answering") }
            offset += n
        }
        return out
    }
}
