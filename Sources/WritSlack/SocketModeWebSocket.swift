import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket
import Synchronization

/// What the sockets tell the client's supervisor loop.
enum SocketModeInput: Sendable {
    /// Something for the state machine.
    case event(SocketModeStateMachine.Event)
    /// A WebSocket is open: sent before any of its frames is reported.
    case upgraded(SocketModeWebSocket)
}

/// One Socket Mode WebSocket (a channel and what the supervisor may do with it). Writes go
/// through the channel, which NIO makes safe from any thread.
final class SocketModeWebSocket: Sendable {
    let id: SocketModeStateMachine.ConnectionID
    let channel: Channel
    /// Host and path, no ticket.
    let endpoint: String
    private let handshake: EventLoopPromise<Void>
    private let flags = Mutex(Flags())

    private struct Flags {
        var handshakeFinished = false
        var upgraded = false
        var closeSent = false
    }

    init(id: SocketModeStateMachine.ConnectionID, channel: Channel, endpoint: String) {
        self.id = id
        self.channel = channel
        self.endpoint = endpoint
        self.handshake = channel.eventLoop.makePromise(of: Void.self)
    }

    /// Completes when the WebSocket handshake succeeded, fails with a `SlackError` otherwise.
    var handshakeResult: EventLoopFuture<Void> { handshake.futureResult }

    /// Settles the handshake once; later calls do nothing.
    func finishHandshake(_ result: Result<Void, SlackError>) {
        let first = flags.withLock { flags in
            defer { flags.handshakeFinished = true }
            if case .success = result { flags.upgraded = true }
            return !flags.handshakeFinished
        }
        guard first else { return }
        switch result {
        case .success: handshake.succeed(())
        case .failure(let error): handshake.fail(error)
        }
    }

    var isUpgraded: Bool { flags.withLock { $0.upgraded } }

    /// Marks the close frame as sent; true for the first caller, who is to send it.
    func claimCloseFrame() -> Bool {
        flags.withLock { flags in
            defer { flags.closeSent = true }
            return !flags.closeSent
        }
    }

    var closeFrameSent: Bool { flags.withLock { $0.closeSent } }

    /// Sends one text message (an acknowledgement), unless a close frame went out already.
    func send(text: String) {
        guard !closeFrameSent else { return }
        var buffer = channel.allocator.buffer(capacity: text.utf8.count)
        buffer.writeString(text)
        channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: buffer), promise: nil)
    }

    /// Sends a ping; any frame Slack sends back (the pong at least) shows the connection lives.
    func ping() {
        guard !closeFrameSent else { return }
        var buffer = channel.allocator.buffer(capacity: 8)
        buffer.writeString("writ")
        channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .ping, maskKey: .random(), data: buffer), promise: nil)
    }

    /// Closes the connection. `graceful`: a close frame (1000), then the TCP connection once
    /// Slack answers it or after `handshakeTimeout` (Slack does not always close its side).
    /// Otherwise at once, for a connection that is dead or not yet a WebSocket.
    func close(graceful: Bool, handshakeTimeout: TimeAmount) {
        let channel = self.channel
        guard graceful, isUpgraded, claimCloseFrame() else {
            channel.close(promise: nil)
            return
        }
        var code = channel.allocator.buffer(capacity: 2)
        code.write(webSocketErrorCode: .normalClosure)
        channel.writeAndFlush(
            WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: code),
            promise: nil
        )
        channel.eventLoop.scheduleTask(in: handshakeTimeout) { channel.close(promise: nil) }
    }
}

/// Every channel the client opened, so that stopping closes them all, including one still in its
/// handshake; and, once stopped, no new one.
final class SocketModeChannels: Sendable {
    private let state = Mutex(State())

    private struct State {
        var sockets: [ObjectIdentifier: SocketModeWebSocket] = [:]
        var shutDown = false
    }

    /// Adds `socket`; false once shut down.
    func insert(_ socket: SocketModeWebSocket) -> Bool {
        state.withLock { state in
            guard !state.shutDown else { return false }
            state.sockets[ObjectIdentifier(socket.channel)] = socket
            return true
        }
    }

    func remove(_ socket: SocketModeWebSocket) {
        _ = state.withLock { $0.sockets.removeValue(forKey: ObjectIdentifier(socket.channel)) }
    }

    func socket(for channel: Channel) -> SocketModeWebSocket? {
        state.withLock { $0.sockets[ObjectIdentifier(channel)] }
    }

    /// Refuses new channels and closes the open ones: a close frame where there is a WebSocket,
    /// the TCP connection after at most `timeout`. Returns once all are closed.
    func shutDown(timeout: TimeAmount) async {
        let sockets = state.withLock { state in
            state.shutDown = true
            return Array(state.sockets.values)
        }
        for socket in sockets { socket.close(graceful: true, handshakeTimeout: timeout) }
        for socket in sockets { try? await socket.channel.closeFuture.get() }
    }
}

/// Opens Socket Mode WebSockets: TCP (NIOPosix), TLS (NIOSSL) for wss://, the HTTP/1.1 upgrade
/// (NIOHTTP1 + NIOWebSocket), then `SocketModeFrameHandler`.
struct SocketModeConnector: Sendable {
    /// Largest message accepted (one frame, or all fragments of one message). Slack's envelopes
    /// are a few KiB; a modal submission with many inputs stays well below this.
    static let maximumMessageSize = 1 << 20

    let channels: SocketModeChannels
    let events: AsyncStream<SocketModeInput>.Continuation
    let handshakeTimeout: Duration
    let tls: @Sendable () throws(SlackError) -> NIOSSLContext

    /// Opens `endpoint` as connection `id`. Success is reported (as `.upgraded`) from the event
    /// loop before any frame; a failure is returned.
    func open(id: SocketModeStateMachine.ConnectionID, endpoint: SocketModeEndpoint) async throws(SlackError) {
        let sslContext: NIOSSLContext? = endpoint.secure ? try tls() : nil
        let timeout = SocketModeClient.timeAmount(handshakeTimeout)
        let channels = self.channels
        let events = self.events
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let socket = SocketModeWebSocket(id: id, channel: channel, endpoint: endpoint.logDescription)
                    guard channels.insert(socket) else {
                        throw SlackError.transport(method: "Socket Mode", message: "the client is stopping")
                    }
                    channel.closeFuture.whenComplete { _ in
                        channels.remove(socket)
                        socket.finishHandshake(
                            .failure(
                                .transport(method: "Socket Mode", message: "connection closed during the handshake")
                            )
                        )
                    }
                    try Self.configure(
                        channel: channel,
                        socket: socket,
                        endpoint: endpoint,
                        sslContext: sslContext,
                        timeout: timeout,
                        events: events
                    )
                }
            }
        let channel: Channel
        do {
            channel = try await bootstrap.connect(host: endpoint.host, port: endpoint.port).get()
        } catch let error as SlackError {
            throw error
        } catch {
            throw .transport(method: "Socket Mode", message: "cannot connect to \(endpoint.hostHeader): \(error)")
        }
        guard let socket = channels.socket(for: channel) else {
            channel.close(promise: nil)
            throw .transport(method: "Socket Mode", message: "connection closed during the handshake")
        }
        do {
            try await socket.handshakeResult.get()
        } catch let error as SlackError {
            throw error
        } catch {
            throw .transport(method: "Socket Mode", message: "\(error)")
        }
    }

    private static func configure(
        channel: Channel,
        socket: SocketModeWebSocket,
        endpoint: SocketModeEndpoint,
        sslContext: NIOSSLContext?,
        timeout: TimeAmount,
        events: AsyncStream<SocketModeInput>.Continuation
    ) throws {
        let pipeline = channel.pipeline.syncOperations
        if let sslContext {
            // Host name checked against the certificate (system trust roots), and sent as SNI.
            try pipeline.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: endpoint.host))
        }
        let request = SocketModeHandshakeHandler(socket: socket, endpoint: endpoint, timeout: timeout)
        let boundRequest = NIOLoopBound(request, eventLoop: channel.eventLoop)
        let upgrader = NIOWebSocketClientUpgrader(
            maxFrameSize: maximumMessageSize,
            automaticErrorHandling: true
        ) { channel, _ in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(
                    SocketModeFrameHandler(socket: socket, events: events)
                )
                // Buffered frames are replayed only after this returns, so the supervisor learns
                // of the socket before its first frame.
                if case .terminated = events.yield(.upgraded(socket)) {
                    channel.close(promise: nil)
                }
                socket.finishHandshake(.success(()))
            }
        }
        // Slack's hello often shares a TCP segment with the 101 answer: the bytes after the HTTP
        // answer must go on to the WebSocket decoder, not be dropped.
        try pipeline.addHTTPClientHandlers(
            leftOverBytesStrategy: .forwardBytes,
            withClientUpgrade: (
                upgraders: [upgrader],
                completionHandler: { context in
                    context.pipeline.syncOperations.removeHandler(boundRequest.value, promise: nil)
                }
            )
        )
        try pipeline.addHandler(request)
    }
}

/// Sends the upgrade request once the connection is up, and turns every way the handshake can
/// fail (an HTTP answer other than 101 — 401 for a used ticket —, a TLS or protocol error, a
/// closed connection, no answer in time) into a failed handshake.
final class SocketModeHandshakeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let socket: SocketModeWebSocket
    private let endpoint: SocketModeEndpoint
    private let timeout: TimeAmount
    private var timer: Scheduled<Void>?

    init(socket: SocketModeWebSocket, endpoint: SocketModeEndpoint, timeout: TimeAmount) {
        self.socket = socket
        self.endpoint = endpoint
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let socket = self.socket
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: timeout) {
            socket.finishHandshake(.failure(.timeout(method: "Socket Mode handshake")))
            channel.close(promise: nil)
        }
        if context.channel.isActive { sendRequest(context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        sendRequest(context: context)
        context.fireChannelActive()
    }

    private func sendRequest(context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: endpoint.hostHeader)
        headers.add(name: "User-Agent", value: "writ")
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: endpoint.target, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Only a refused upgrade reaches here: the upgrade handler passes the answer on.
        if case .head(let head) = unwrapInboundIn(data) {
            socket.finishHandshake(.failure(.http(method: "Socket Mode handshake", status: Int(head.status.code))))
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        socket.finishHandshake(.failure(.transport(method: "Socket Mode handshake", message: "\(error)")))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        socket.finishHandshake(
            .failure(.transport(method: "Socket Mode handshake", message: "connection closed during the handshake"))
        )
        context.fireChannelInactive()
    }
}

/// The WebSocket once open: reassembles fragmented messages (at most
/// `SocketModeConnector.maximumMessageSize`), answers pings, completes close handshakes, and
/// reports messages, signs of life and the end of the connection to the supervisor.
final class SocketModeFrameHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let socket: SocketModeWebSocket
    private let events: AsyncStream<SocketModeInput>.Continuation
    /// The fragments of a message so far, and whether it is text.
    private var partial: (buffer: ByteBuffer, isText: Bool)?
    /// How the connection ended, for the log.
    private var ending: String?

    init(socket: SocketModeWebSocket, events: AsyncStream<SocketModeInput>.Continuation) {
        self.socket = socket
        self.events = events
    }

    private func report(_ event: SocketModeStateMachine.Event) {
        events.yield(.event(event))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .ping:
            if !socket.closeFrameSent {
                let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData)
                context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
            }
            report(.alive(socket.id))
        case .pong:
            report(.alive(socket.id))
        case .text, .binary:
            guard partial == nil else {
                return fail(context: context, code: .protocolError, "a new message began inside a fragmented one")
            }
            if frame.fin {
                complete(frame.unmaskedData, isText: frame.opcode == .text)
            } else {
                partial = (frame.unmaskedData, frame.opcode == .text)
                report(.alive(socket.id))
            }
        case .continuation:
            guard let current = partial else {
                return fail(context: context, code: .protocolError, "a continuation frame without a message")
            }
            var buffer = current.buffer
            let isText = current.isText
            var data = frame.unmaskedData
            guard buffer.readableBytes + data.readableBytes <= SocketModeConnector.maximumMessageSize else {
                partial = nil
                return fail(context: context, code: .messageTooLarge, "a message larger than 1 MiB")
            }
            buffer.writeBuffer(&data)
            if frame.fin {
                partial = nil
                complete(buffer, isText: isText)
            } else {
                partial = (buffer, isText)
                report(.alive(socket.id))
            }
        case .connectionClose:
            var data = frame.unmaskedData
            let code = data.readWebSocketErrorCode().map { "\(UInt16(webSocketErrorCode: $0))" } ?? "no code"
            ending = ending ?? "Slack closed it (close frame, \(code))"
            if socket.claimCloseFrame() {
                // Echo the close, then end the TCP connection: the closing handshake is complete.
                var echo = context.channel.allocator.buffer(capacity: 2)
                echo.write(webSocketErrorCode: .normalClosure)
                let reply = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: echo)
                let channel = context.channel
                context.writeAndFlush(wrapOutboundOut(reply)).whenComplete { _ in channel.close(promise: nil) }
            } else {
                context.close(promise: nil)
            }
        default:
            fail(context: context, code: .protocolError, "a frame with an unknown opcode")
        }
    }

    private func complete(_ buffer: ByteBuffer, isText: Bool) {
        if isText {
            report(.message(socket.id, SocketModeMessage.parse(Array(buffer.readableBytesView))))
        } else {
            report(.alive(socket.id))  // Slack sends no binary messages; ignored
        }
    }

    private func fail(context: ChannelHandlerContext, code: WebSocketErrorCode, _ why: String) {
        ending = ending ?? "protocol error: \(why)"
        guard socket.claimCloseFrame() else {
            context.close(promise: nil)
            return
        }
        var data = context.channel.allocator.buffer(capacity: 2)
        data.write(webSocketErrorCode: code)
        let frame = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: data)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(frame)).whenComplete { _ in channel.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        ending = ending ?? "\(error)"
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        report(.closed(socket.id, why: ending ?? "connection lost (no close frame)"))
        context.fireChannelInactive()
    }
}
