import Logging
import NIOCore
import NIOHTTP1
import WritExpr
import WritIntegrations

/// One of the Request URLs Slack posts to.
package enum SlackHTTPRoute: String, Sendable, CaseIterable {
    case commands = "/slack/commands"
    case interactivity = "/slack/interactivity"
    case events = "/slack/events"
}

/// What one request gets back, and what (if anything) goes to the handler afterwards: a pure
/// function of the request, so the rules can be read (and tested) without a socket.
package struct SlackHTTPDecision: Sendable, Equatable {
    package var status: HTTPResponseStatus
    package var body: String = ""
    package var contentType: String? = nil
    package var inbound: SlackInbound? = nil
    /// One line for the log, when the request was refused.
    package var refusal: String? = nil

    /// The answer to a complete request to `route`: the signature first, over the raw body, then
    /// whether this signed request was seen before (`replays`), and only then the body parsed.
    package static func decide(
        route: SlackHTTPRoute,
        headers: HTTPHeaders,
        body: [UInt8],
        secret: String,
        now: Int64,
        replays: SlackReplayGuard
    ) -> SlackHTTPDecision {
        let signature = headers.first(name: "X-Slack-Signature")
        let timestamp = headers.first(name: "X-Slack-Request-Timestamp")
        let verdict = SlackSignature.verify(
            secret: secret,
            signature: signature,
            timestamp: timestamp,
            body: body,
            now: now
        )
        if case .failure(let refusal) = verdict {
            return SlackHTTPDecision(status: .unauthorized, refusal: refusal.description)
        }
        // Verified, so both headers are there and the timestamp is a number.
        switch replays.check(signature: signature ?? "", timestamp: Int64(timestamp ?? "") ?? now, now: now) {
        case .first:
            break
        case .replay:
            // Answered as the first one was (Slack sees success), and dropped.
            return SlackHTTPDecision(
                status: .ok,
                refusal: "a replay of a signed request already accepted (same signature); dropped"
            )
        case .full:
            return SlackHTTPDecision(
                status: .serviceUnavailable,
                refusal: "\(replays.capacity) signed requests in the last 10 minutes: refusing more until they age out"
            )
        }
        func bad(_ why: String) -> SlackHTTPDecision { SlackHTTPDecision(status: .badRequest, refusal: why) }

        switch route {
        case .commands:
            guard let fields = SlackWireFormat.parseForm(body) else {
                return bad("a slash command whose body is not a well-formed form")
            }
            return SlackHTTPDecision(status: .ok, inbound: .slashCommand(fields))
        case .interactivity:
            guard let fields = SlackWireFormat.parseForm(body), let payload = fields["payload"] else {
                return bad("an interaction without a well-formed \"payload\" form field")
            }
            guard case .success(let value) = JSONValue.parse(Array(payload.utf8)), case .object = value else {
                return bad("an interaction whose \"payload\" is not a JSON object")
            }
            return SlackHTTPDecision(status: .ok, inbound: .interactive(value))
        case .events:
            guard case .success(let value) = JSONValue.parse(body), case .object = value else {
                return bad("an Events API request whose body is not a JSON object")
            }
            switch value["type"]?.stringValue {
            case "url_verification":
                guard let challenge = value["challenge"]?.stringValue else {
                    return bad("a url_verification without a \"challenge\" string")
                }
                return SlackHTTPDecision(
                    status: .ok,
                    body: SlackWireFormat.json(.object(["challenge": .string(challenge)])),
                    contentType: "application/json"
                )
            case "event_callback":
                return SlackHTTPDecision(status: .ok, inbound: .event(value))
            default:
                // app_rate_limited and anything newer: acknowledged, nothing to do.
                return SlackHTTPDecision(status: .ok)
            }
        }
    }
}

/// One connection's HTTP/1.1 requests (after NIOHTTP1's decoder): routes, limits, signature,
/// answer, then the handler in a task. Runs on its channel's event loop only.
final class SlackHTTPRequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum Phase {
        /// Between requests.
        case idle
        /// Reading the body of a request to a known route.
        case receiving(SlackHTTPRoute, HTTPRequestHead, ByteBuffer)
        /// Answered already (404, 405, 413) with `Connection: close`: the rest of the request is
        /// read and dropped, so the client gets to read the answer instead of a reset, and the
        /// connection closes at its end.
        case discarding(dropped: Int)
    }

    private let shared: SlackHTTPReceiver.Context
    private var phase = Phase.idle
    private var timer: Scheduled<Void>?
    private var lastWrite: EventLoopFuture<Void>?

    init(_ shared: SlackHTTPReceiver.Context) {
        self.shared = shared
    }

    /// The most of a refused body read and dropped before the connection is simply closed.
    private var discardLimit: Int { max(shared.configuration.maxBodyBytes, 1 << 20) * 4 }

    func handlerAdded(context: ChannelHandlerContext) {
        armTimer(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        shared.logger.debug(
            "Slack HTTP mode: connection error",
            metadata: ["remote": "\(remote(context))", "error": "\(SlackWireFormat.printable("\(error)"))"]
        )
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            begin(context: context, head: head)
        case .body(var chunk):
            switch phase {
            case .receiving(let route, let head, var body):
                if body.readableBytes + chunk.readableBytes > shared.configuration.maxBodyBytes {
                    refuseEarly(context: context, head: head, status: .payloadTooLarge)
                } else {
                    phase = .idle  // drop the reference so the append does not copy
                    body.writeBuffer(&chunk)
                    phase = .receiving(route, head, body)
                }
            case .discarding(let dropped):
                let total = dropped + chunk.readableBytes
                phase = .discarding(dropped: total)
                if total > discardLimit { closeAfterWrites(context: context) }
            case .idle:
                break
            }
        case .end:
            switch phase {
            case .receiving(let route, let head, let body):
                phase = .idle
                finish(context: context, route: route, head: head, body: body)
            case .discarding:
                closeAfterWrites(context: context)
            case .idle:
                break
            }
        }
    }

    // MARK: - Requests

    private func begin(context: ChannelHandlerContext, head: HTTPRequestHead) {
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        guard let route = SlackHTTPRoute(rawValue: String(path)) else {
            refuseEarly(context: context, head: head, status: .notFound)
            return
        }
        guard head.method == .POST else {
            refuseEarly(context: context, head: head, status: .methodNotAllowed)
            return
        }
        let limit = shared.configuration.maxBodyBytes
        let declared = head.headers.first(name: "Content-Length").flatMap { Int($0) }
        if let declared, declared > limit {
            refuseEarly(context: context, head: head, status: .payloadTooLarge)
            return
        }
        let buffer = context.channel.allocator.buffer(capacity: min(declared ?? 4096, limit))
        phase = .receiving(route, head, buffer)
    }

    /// Answers before the body was read, closing the connection once the request is over.
    private func refuseEarly(context: ChannelHandlerContext, head: HTTPRequestHead, status: HTTPResponseStatus) {
        let path = SlackWireFormat.printable(String(head.uri.prefix { $0 != "?" }), limit: 100)
        let metadata: Logger.Metadata = ["remote": "\(remote(context))", "path": "\(path)"]
        switch status {
        case .payloadTooLarge:
            shared.logger.notice(
                "Slack HTTP request refused: the body is larger than \(shared.configuration.maxBodyBytes) bytes",
                metadata: metadata
            )
        default:
            shared.logger.debug("Slack HTTP request refused: \(status.code) \(head.method)", metadata: metadata)
        }
        let extra: [(String, String)] = status == .methodNotAllowed ? [("Allow", "POST")] : []
        write(context: context, head: head, status: status, body: "", contentType: nil, close: true, extra: extra)
        phase = .discarding(dropped: 0)
    }

    private func finish(context: ChannelHandlerContext, route: SlackHTTPRoute, head: HTTPRequestHead, body: ByteBuffer)
    {
        let decision = SlackHTTPDecision.decide(
            route: route,
            headers: head.headers,
            body: Array(body.readableBytesView),
            secret: shared.configuration.signingSecret,
            now: shared.configuration.clock(),
            replays: shared.replays
        )
        if let refusal = decision.refusal {
            let metadata: Logger.Metadata = ["remote": "\(remote(context))", "path": "\(route.rawValue)"]
            if decision.status == .unauthorized {
                shared.logger.warning("Slack HTTP request refused (401): \(refusal)", metadata: metadata)
            } else {
                shared.logger.notice(
                    "Slack HTTP request refused (\(decision.status.code)): \(refusal)",
                    metadata: metadata
                )
            }
        }
        let written = write(
            context: context,
            head: head,
            status: decision.status,
            body: decision.body,
            contentType: decision.contentType,
            close: !head.isKeepAlive,
            extra: []
        )
        if let inbound = decision.inbound {
            // Only once the answer is on its way: the handler never delays Slack's 200.
            let handler = shared.handler
            written.whenSuccess { Task { await handler(inbound) } }
        }
        if head.isKeepAlive {
            armTimer(context: context)
        } else {
            closeAfterWrites(context: context)
        }
    }

    // MARK: - Writing

    @discardableResult
    private func write(
        context: ChannelHandlerContext,
        head request: HTTPRequestHead,
        status: HTTPResponseStatus,
        body: String,
        contentType: String?,
        close: Bool,
        extra: [(String, String)]
    ) -> EventLoopFuture<Void> {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        if let contentType { headers.add(name: "Content-Type", value: contentType) }
        if close { headers.add(name: "Connection", value: "close") }
        for (name, value) in extra { headers.add(name: name, value: value) }
        let version = request.version.major == 1 && request.version.minor == 0 ? request.version : .http1_1
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: version, status: status, headers: headers))),
            promise: nil
        )
        if !body.isEmpty {
            context.write(
                wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))),
                promise: nil
            )
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        lastWrite = done
        return done
    }

    /// Closes the connection once everything written so far is out.
    private func closeAfterWrites(context: ChannelHandlerContext) {
        let channel = context.channel
        if let lastWrite {
            lastWrite.whenComplete { _ in channel.close(promise: nil) }
        } else {
            channel.close(promise: nil)
        }
    }

    /// (Re)starts the clock within which the next request must arrive whole.
    private func armTimer(context: ChannelHandlerContext) {
        timer?.cancel()
        let channel = context.channel
        let logger = shared.logger
        let seconds = shared.configuration.requestTimeoutSeconds
        timer = context.eventLoop.scheduleTask(in: .seconds(Int64(seconds))) {
            logger.debug(
                "Slack HTTP mode: closing a connection that sent no whole request in \(seconds) s",
                metadata: ["remote": "\(channel.remoteAddress?.description ?? "?")"]
            )
            channel.close(promise: nil)
        }
    }

    private func remote(_ context: ChannelHandlerContext) -> String {
        context.channel.remoteAddress?.description ?? "?"
    }
}
