import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing

@testable import WritSlack

/// The WebSocket frame handling the fake never exercises: fragments, pings between fragments,
/// the size cap, protocol errors, and the close handshake started by Slack.
@Suite("Socket Mode frames")
struct SocketModeFrameTests {
    /// A frame handler on an embedded channel, and the events it reported.
    final class Harness {
        let channel = EmbeddedChannel()
        let socket: SocketModeWebSocket
        let events: AsyncStream<SocketModeInput>
        let continuation: AsyncStream<SocketModeInput>.Continuation

        init() throws {
            (events, continuation) = AsyncStream.makeStream(of: SocketModeInput.self)
            socket = SocketModeWebSocket(id: 7, channel: channel, endpoint: "test")
            socket.finishHandshake(.success(()))
            try channel.pipeline.syncOperations.addHandler(SocketModeFrameHandler(socket: socket, events: continuation))
            channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 443), promise: nil)
            channel.embeddedEventLoop.run()
        }

        func receive(_ opcode: WebSocketOpcode, fin: Bool = true, _ text: String) throws {
            try channel.writeInbound(WebSocketFrame(fin: fin, opcode: opcode, data: ByteBuffer(string: text)))
        }

        func receive(_ opcode: WebSocketOpcode, fin: Bool = true, bytes count: Int) throws {
            let data = ByteBuffer(repeating: UInt8(ascii: "x"), count: count)
            try channel.writeInbound(WebSocketFrame(fin: fin, opcode: opcode, data: data))
        }

        /// Frames the handler wrote.
        func sent() throws -> [WebSocketFrame] {
            var frames: [WebSocketFrame] = []
            while let frame = try channel.readOutbound(as: WebSocketFrame.self) { frames.append(frame) }
            return frames
        }

        /// Events reported so far (ends the stream).
        func reported() async -> [SocketModeStateMachine.Event] {
            continuation.finish()
            var all: [SocketModeStateMachine.Event] = []
            for await input in events {
                if case .event(let event) = input { all.append(event) }
            }
            return all
        }
    }

    /// The close code of a frame the handler wrote (masking is the encoder's job, so `data` is
    /// still plain).
    static func closeCode(_ frame: WebSocketFrame) -> UInt16? {
        var data = frame.data
        return data.readWebSocketErrorCode().map { UInt16(webSocketErrorCode: $0) }
    }

    @Test func fragmentsAreReassembledAndPingsAnsweredInBetween() async throws {
        let harness = try Harness()
        try harness.receive(.text, fin: false, #"{"type":"#)
        try harness.receive(.ping, "are you there")
        try harness.receive(.continuation, fin: false, #" "hel"#)
        try harness.receive(.continuation, #"lo", "num_connections": 1}"#)
        try harness.receive(.pong, "")

        let sent = try harness.sent()
        #expect(sent.count == 1)
        #expect(sent.first?.opcode == .pong)
        #expect(sent.first.map { String(buffer: $0.data) } == "are you there")
        #expect(sent.first?.maskKey != nil, "client frames are masked")
        #expect(
            await harness.reported() == [
                .alive(7), .alive(7), .alive(7), .message(7, .hello(connections: 1)), .alive(7),
            ]
        )
        _ = try? harness.channel.finish()
    }

    @Test func aMessageOverOneMebibyteClosesWith1009() async throws {
        let harness = try Harness()
        try harness.receive(.text, fin: false, bytes: 600_000)
        try harness.receive(.continuation, fin: false, bytes: 600_000)
        let sent = try harness.sent()
        #expect(sent.map(\.opcode) == [.connectionClose])
        #expect(sent.first.flatMap(Self.closeCode) == 1009)
        #expect(!harness.channel.isActive)
        let events = await harness.reported()
        #expect(events.last == .closed(7, why: "protocol error: a message larger than 1 MiB"))
        #expect(!events.contains { if case .message = $0 { true } else { false } })
    }

    @Test func aContinuationWithoutAMessageIsAProtocolError() async throws {
        let harness = try Harness()
        try harness.receive(.continuation, "stray")
        #expect(try harness.sent().first.flatMap(Self.closeCode) == 1002)
        #expect(!harness.channel.isActive)
    }

    @Test func aCloseFromSlackIsAnsweredThenTheConnectionEnds() async throws {
        let harness = try Harness()
        var code = ByteBuffer()
        code.write(webSocketErrorCode: .goingAway)
        try harness.channel.writeInbound(WebSocketFrame(fin: true, opcode: .connectionClose, data: code))
        let sent = try harness.sent()
        #expect(sent.map(\.opcode) == [.connectionClose])
        #expect(sent.first.flatMap(Self.closeCode) == 1000)
        #expect(!harness.channel.isActive)
        #expect(await harness.reported() == [.closed(7, why: "Slack closed it (close frame, 1001)")])
        // Nothing more goes out after the close frame.
        harness.socket.send(text: "{}")
        harness.socket.ping()
    }

    @Test func ourCloseIsAFrameThenTheConnectionEndsOnTheAnswer() async throws {
        let harness = try Harness()
        harness.socket.close(graceful: true, handshakeTimeout: .seconds(1))
        harness.channel.embeddedEventLoop.run()
        let sent = try harness.sent()
        #expect(sent.map(\.opcode) == [.connectionClose])
        #expect(sent.first.flatMap(Self.closeCode) == 1000)
        #expect(harness.channel.isActive, "waits for Slack's answer")
        harness.socket.send(text: "{}")
        #expect(try harness.sent().isEmpty, "no data frame after a close frame")
        var code = ByteBuffer()
        code.write(webSocketErrorCode: .normalClosure)
        try harness.channel.writeInbound(WebSocketFrame(fin: true, opcode: .connectionClose, data: code))
        #expect(try harness.sent().isEmpty, "the answer is not answered")
        #expect(!harness.channel.isActive)
    }

    @Test func ourCloseGivesUpWaitingAfterTheTimeout() async throws {
        let harness = try Harness()
        harness.socket.close(graceful: true, handshakeTimeout: .milliseconds(500))
        harness.channel.embeddedEventLoop.advanceTime(by: .milliseconds(400))
        #expect(harness.channel.isActive)
        harness.channel.embeddedEventLoop.advanceTime(by: .milliseconds(200))
        #expect(!harness.channel.isActive)
    }
}
