import FoundationEssentials
import Glibc
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
import WritCore
import WritProcesses
import WritProtocol

/// The Unix socket writ talks to. Each connection may send requests one after another; each
/// frame must arrive whole within `frameTimeout`, and an idle connection is closed after
/// `idleTimeout`. A client that breaks the protocol gets one error frame and is disconnected;
/// everyone else is unaffected.
public struct SocketServer: Service {
    let path: String
    let engine: Engine
    let logger: Logger
    let group: MultiThreadedEventLoopGroup
    static let frameTimeout = TimeAmount.seconds(5)
    static let idleTimeout = TimeAmount.seconds(60)

    public init(path: String, engine: Engine, logger: Logger, group: MultiThreadedEventLoopGroup) {
        self.path = path
        self.engine = engine
        self.logger = logger
        self.group = group
    }

    public func run() async throws {
        try Self.prepareDirectory(path)
        let engine = self.engine
        let logger = self.logger
        let limiter = ConnectionLimiter()
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 4096)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        FrameHandler(engine: engine, logger: logger, limiter: limiter)
                    )
                }
            }
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true)
            .get()
        // Anyone may connect: the peer's uid, not the socket's mode, decides what they may do.
        chmod(path, 0o666)
        logger.notice("listening on \(path)")
        try await withGracefulShutdownHandler {
            try await channel.closeFuture.get()
        } onGracefulShutdown: {
            channel.close(promise: nil)
        }
        unlink(path)
    }

    /// /run/writ: root's, 0755, not a symlink.
    static func prepareDirectory(_ socketPath: String) throws {
        guard let slash = socketPath.lastIndex(of: "/") else { return }
        let dir = String(socketPath[..<slash])
        if mkdir(dir, 0o755) == 0 {
            // writd runs with umask 077; the directory must be searchable for the socket to be.
            chmod(dir, 0o755)
        } else if errno != EEXIST {
            throw WireError("internal", "cannot create \(dir): \(String(cString: strerror(errno)))")
        }
        var st = stat()
        guard lstat(dir, &st) == 0, st.st_mode & S_IFMT == S_IFDIR, st.st_uid == 0, st.st_mode & 0o022 == 0 else {
            throw WireError("internal", "\(dir) must be a directory owned by root and not writable by others")
        }
        if st.st_mode & 0o005 != 0o005 {
            throw WireError(
                "internal",
                "\(dir) is mode \(String(st.st_mode & 0o777, radix: 8)): users cannot reach the socket — chmod 0755 \(dir)"
            )
        }
    }
}

/// `struct ucred` (pid, uid, gid: three 32-bit fields), which the Glibc module does not import
/// without _GNU_SOURCE. getsockopt(SO_PEERCRED) fills exactly this layout (12 bytes; NIO passes
/// MemoryLayout<PeerCredentials>.size as the option length).
struct PeerCredentials: Sendable {
    var pid: Int32 = 0
    var uid: UInt32 = 0
    var gid: UInt32 = 0
}

/// Caps connections per uid and in all, so that one user cannot use up writd's descriptors
/// (SQLite journals, /proc reads and pidfds need them too) or fill the accept backlog that the
/// modules' reports go through. Root's connections (root's CLI and the modules' reports from
/// every sudo and login) have a budget of their own outside the total: however many accounts
/// fill the total, root always gets in.
final class ConnectionLimiter: Sendable {
    static let perUser = 32
    /// Root's own connections: the modules' reports from every sudo and login.
    static let perRoot = 1024
    /// All users but root together.
    static let total = 3072

    /// Why a connection was refused, naming who is to blame.
    enum Refusal: Equatable, Sendable {
        /// The uid has `perUser` (or `perRoot`) open.
        case ownShare(uid: UInt32, open: Int)
        /// Non-root users together have `total` open.
        case everyone(open: Int)

        /// One line for the client and the log.
        var message: String {
            switch self {
            case .ownShare(let uid, let open):
                "too many connections from uid \(uid) (\(open) open); close some and try again"
            case .everyone(let open):
                "writd has \(open) connections open from other users; try again shortly"
            }
        }
    }

    private struct Counts {
        var others = 0
        var byUID: [UInt32: Int] = [:]
        var refusals = LogThrottle(interval: 10)
    }
    private let counts = Mutex(Counts())

    /// Counts a connection of `uid` in, or says why not; the log line for a refusal, when one is
    /// due (at most one every 10 s, with the number not logged since).
    ///
    /// A root peer whose real uid is a user's (sudo, setuid: any user can start as many as they
    /// like, refused or not) is counted as that user's, so that only root's own processes
    /// (sshd, login, root's CLI) use root's budget.
    func acquire(
        _ peerUID: UInt32,
        realUID: UInt32? = nil,
        now: Int64 = Int64(time(nil))
    ) -> (
        refusal: Refusal?, logLine: String?
    ) {
        let uid = peerUID == 0 ? (realUID ?? 0) : peerUID
        return counts.withLock { c in
            let mine = c.byUID[uid, default: 0]
            let refusal: Refusal?
            if mine >= (uid == 0 ? Self.perRoot : Self.perUser) {
                refusal = .ownShare(uid: uid, open: mine)
            } else if uid != 0 && c.others >= Self.total {
                refusal = .everyone(open: c.others)
            } else {
                refusal = nil
            }
            guard let refusal else {
                c.byUID[uid] = mine + 1
                if uid != 0 { c.others += 1 }
                return (nil, nil)
            }
            let (log, notLogged) = c.refusals.admit(now: now)
            guard log else { return (refusal, nil) }
            let more = notLogged > 0 ? " (\(notLogged) more refused since the last line)" : ""
            return (refusal, "refused a connection from uid \(uid): \(refusal.message)\(more)")
        }
    }

    func release(_ uid: UInt32) {
        counts.withLock { c in
            if uid != 0 { c.others -= 1 }
            let mine = c.byUID[uid, default: 1] - 1
            c.byUID[uid] = mine > 0 ? mine : nil
        }
    }
}

/// One connection: reassembles frames, asks the engine, writes replies in order.
final class FrameHandler: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked Sendable: every mutable field is touched only on the channel's event loop (NIO
    // calls handlers there; the engine's reply hops back with eventLoop.execute).
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let engine: Engine
    let logger: Logger
    let limiter: ConnectionLimiter
    private var counted = false
    /// The uid the connection is counted under (`ConnectionLimiter.acquire`).
    private var countedUID: UInt32 = 0
    private var reader = FrameReader()
    private var peer: Peer?
    private var busy = false
    private var frameDeadline: Scheduled<Void>?
    private var idleDeadline: Scheduled<Void>?
    private var context: ChannelHandlerContext?

    init(engine: Engine, logger: Logger, limiter: ConnectionLimiter) {
        self.engine = engine
        self.logger = logger
        self.limiter = limiter
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelActive(context: ChannelHandlerContext) {
        if let provider = context.channel as? SocketOptionProvider {
            let future: EventLoopFuture<PeerCredentials> = provider.unsafeGetSocketOption(
                level: SocketOptionLevel(SOL_SOCKET),
                name: SocketOptionName(SO_PEERCRED)
            )
            // On the event loop NIO answers at once. The process's start time is read now, at
            // accept, not when the engine gets to the request: the pid cannot have been recycled
            // in between (the reporting sudo or sshd is still running; a report from a process
            // already gone tracks nothing).
            future.whenComplete { [weak self] result in
                guard case .success(let cred) = result else { return }
                // Root peers are the modules reporting sessions: their real uid and audit session
                // are read now too (the process may be gone before the report is handled).
                if cred.uid == 0, let info = ProcessTable.info(of: cred.pid) {
                    self?.peer = Peer(
                        uid: cred.uid,
                        gid: cred.gid,
                        pid: cred.pid,
                        startTime: info.identity.startTime,
                        realUID: info.realUID,
                        auditSession: AuditSession.id(of: cred.pid),
                        loginUID: AuditSession.loginUID(of: cred.pid)
                    )
                } else {
                    self?.peer = Peer(
                        uid: cred.uid,
                        gid: cred.gid,
                        pid: cred.pid,
                        startTime: ProcessTable.identity(of: cred.pid)?.startTime
                    )
                }
            }
        }
        if let peer {
            let (refusal, logLine) = limiter.acquire(peer.uid, realUID: peer.realUID)
            countedUID = peer.uid == 0 ? (peer.realUID ?? 0) : peer.uid
            if let refusal {
                if let logLine { logger.warning("\(logLine)") }
                refuse(context, WireError("busy", refusal.message))
                return
            }
            counted = true
        }
        armIdle(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if counted { limiter.release(countedUID) }
        counted = false
        frameDeadline?.cancel()
        idleDeadline?.cancel()
        self.context = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let incoming = unwrapInboundIn(data)
        // Never buffer more than one frame: a client that pipelines or floods is cut off.
        guard reader.append(incoming.readableBytesView) else {
            fail(context, WireError("too_large", "more than one request's worth of bytes sent without waiting"))
            return
        }
        armIdle(context)
        process(context)
    }

    private func armIdle(_ context: ChannelHandlerContext) {
        idleDeadline?.cancel()
        idleDeadline = context.eventLoop.scheduleTask(in: SocketServer.idleTimeout) { [weak self] in
            // The handler's own context (touched on the event loop only), not a captured one.
            guard let self, !self.busy, let context = self.context else { return }
            context.close(promise: nil)
        }
    }

    private func process(_ context: ChannelHandlerContext) {
        guard !busy else { return }
        let bytes: [UInt8]
        switch reader.next() {
        case .needMore:
            startFrameClock(context)
            return
        case .tooLarge(let length):
            fail(
                context,
                WireError("too_large", "request of \(length) bytes is over the \(Wire.maxRequestBytes)-byte limit")
            )
            return
        case .frame(let body):
            bytes = body
        }
        frameDeadline?.cancel()
        frameDeadline = nil
        guard let peer else {
            fail(context, WireError("internal", "could not read the peer's credentials"))
            return
        }
        guard let request = Wire.request(from: bytes) else {
            fail(context, WireError("bad_request", "malformed request: not a writ protocol message"))
            return
        }
        busy = true
        // Read nothing more until the reply is written: one request in flight per connection.
        context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
        let engine = self.engine
        let loop = context.eventLoop
        Task {
            let response = await engine.serve(request, from: .socket(peer))
            loop.execute { [weak self] in
                guard let self, let context = self.context else { return }
                self.busy = false
                self.write(context, response)
                context.channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
                self.armIdle(context)
                self.process(context)
            }
        }
    }

    /// A frame has started (or only its header has come): it must be complete in time.
    private func startFrameClock(_ context: ChannelHandlerContext) {
        guard !reader.isEmpty, frameDeadline == nil else { return }
        frameDeadline = context.eventLoop.scheduleTask(in: SocketServer.frameTimeout) { [weak self] in
            guard let self, let context = self.context else { return }
            self.fail(context, WireError("timeout", "the request did not arrive in time; connection closed"))
        }
    }

    private func write(_ context: ChannelHandlerContext, _ response: WireResponse) {
        var body = (try? Wire.encoder().encode(response)) ?? Data()
        if body.count > Wire.maxResponseBytes {
            let e = WireError(
                "too_large",
                "the reply would be over \(Wire.maxResponseBytes) bytes — narrow the query (--since, --user)"
            )
            body = (try? Wire.encoder().encode(WireResponse.failure(e))) ?? Data()
        }
        var out = context.channel.allocator.buffer(capacity: body.count + 4)
        out.writeInteger(UInt32(body.count))
        out.writeBytes(body)
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
    }

    /// Answers `error` and closes, without a log line of its own (the caller logs, throttled).
    private func refuse(_ context: ChannelHandlerContext, _ error: WireError) {
        write(context, .failure(error))
        reader.clear()
        busy = true  // read nothing more
        context.close(promise: nil)
    }

    private func fail(_ context: ChannelHandlerContext, _ error: WireError) {
        logger.notice("dropping client (pid \(peer.map { String($0.pid) } ?? "?")): \(error.message)")
        write(context, .failure(error))
        reader.clear()
        busy = true  // read nothing more
        context.close(promise: nil)
    }
}
