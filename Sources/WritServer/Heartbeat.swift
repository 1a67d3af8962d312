import FoundationEssentials
import HTTPTypes
import Hummingbird
import NIOConcurrencyHelpers
import NIOCore
import WritEngine

/// A long-poll that asks for heartbeats (`heartbeat=N` on `grantChanges`) hears a space every N
/// seconds while it waits, then the JSON page: leading whitespace is valid JSON, so the body is
/// the same document to any client. What it buys the agent: a connection that falls silent for
/// longer than a few heartbeats is dead (a partition, a replica gone without a word), and the
/// agent drops it and connects again instead of waiting out the whole poll. Without it a poll
/// sent before a partition only heals through TCP's retransmissions, seconds after the network.
///
/// Two steps. The route's handler (`FleetAPI.grantChanges`) checks the host and the cursor and
/// waits for the first interval as any poll does: a refusal, a bad cursor or changes waiting
/// are answered then with their own status. When that interval passes with nothing, it leaves
/// the rest of the wait in the request's `HeartbeatSlot`, and this middleware answers 200 with a
/// body that waits for it while it writes the heartbeats. A failure after the 200 went out ends
/// the connection without the rest of the body, which the client reads as a lost connection.
struct HeartbeatMiddleware: RouterMiddleware {
    typealias Context = FleetRequestContext
    static let path = "/v1/agent/grants/changes"
    let hub: GrantFeedHub

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard request.method == .get, request.uri.path == Self.path,
            request.uri.queryParameters["heartbeat"] != nil
        else {
            return try await next(request, context)
        }
        let slot = HeartbeatSlot()
        let response = try await HeartbeatSlot.$current.withValue(slot) { try await next(request, context) }
        guard response.status == .ok, let rest = slot.rest else { return response }
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(
            status: .ok,
            headers: headers,
            body: ResponseBody { [hub] writer in
                try await rest.answer(from: hub, to: &writer)
                try await writer.finish(nil)
            }
        )
    }
}

/// Where a poll's handler leaves the rest of its wait for `HeartbeatMiddleware`.
final class HeartbeatSlot: Sendable {
    @TaskLocal static var current: HeartbeatSlot?

    /// The wait still to come, after the first interval passed with nothing.
    struct Rest: Sendable {
        var host: String
        var cursor: Int64
        var remaining: Int
        var interval: Int

        /// A space now and each interval until the hub answers, then the page.
        func answer(from hub: GrantFeedHub, to writer: inout any ResponseBodyWriter) async throws {
            enum Step: Sendable {
                case tick
                case answer(GrantFeedHub.Answer)
            }
            let space = ByteBuffer(string: " ")
            try await writer.write(space)
            try await withThrowingTaskGroup(of: Step.self) { group in
                group.addTask { [self] in
                    .answer(try await hub.wait(host: host, after: cursor, timeout: .seconds(remaining)))
                }
                group.addTask { [interval] in
                    try await Task.sleep(for: .seconds(interval))
                    return .tick
                }
                while let step = try await group.next() {
                    switch step {
                    case .tick:
                        // A client gone makes this throw: the group's wait is cancelled with it.
                        try await writer.write(space)
                        group.addTask { [interval] in
                            try await Task.sleep(for: .seconds(interval))
                            return .tick
                        }
                    case .answer(let a):
                        group.cancelAll()
                        let page = FleetAPI.page(a.grants, cursor: a.cursor, more: a.more)
                        try await writer.write(ByteBuffer(bytes: try JSONEncoder().encode(page)))
                        return
                    }
                }
            }
        }
    }

    private let state = NIOLockedValueBox<Rest?>(nil)

    var rest: Rest? {
        get { state.withLockedValue { $0 } }
        set { state.withLockedValue { $0 = newValue } }
    }
}
