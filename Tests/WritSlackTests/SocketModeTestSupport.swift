import AsyncHTTPClient
import FoundationEssentials
import Glibc
import Logging
import NIOCore
import Synchronization
import Testing
import WritExpr

@testable import WritSlack

/// `apps.connections.open` on the fake with the app-level token, as writd's own caller will do it.
func openSocketModeURL(_ fake: FakeSlack) async throws(SlackError) -> String {
    let method = "apps.connections.open"
    var request = HTTPClientRequest(url: fake.url + "/api/" + method)
    request.method = .POST
    request.headers.add(name: "Authorization", value: "Bearer \(FakeSlack.appToken)")
    request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
    let text: String
    let status: UInt
    do {
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        status = response.status.code
        text = String(buffer: try await response.body.collect(upTo: 1 << 20))
    } catch {
        throw .transport(method: method, message: "\(error)")
    }
    guard status == 200 else { throw .http(method: method, status: Int(status)) }
    guard case .success(let answer) = JSONValue.parse(Array(text.utf8)) else {
        throw .malformed(method: method, message: "not JSON")
    }
    guard answer["ok"]?.boolValue == true else {
        throw .api(method: method, code: answer["error"]?.stringValue ?? "?")
    }
    guard let url = answer["url"]?.stringValue else { throw .malformed(method: method, message: "no url") }
    return url
}

/// Log lines kept for assertions (and echoed to stderr to make failures readable).
final class CapturedLog: Sendable {
    struct Line: Sendable {
        var level: Logger.Level
        var message: String
    }

    private let lines = Mutex<[Line]>([])

    var all: [Line] { lines.withLock { $0 } }

    func append(_ line: Line) {
        lines.withLock { $0.append(line) }
        print("[\(line.level)] \(line.message)")
    }

    func logger() -> Logger {
        Logger(label: "writ.slack.socket-mode.test") { _ in CapturingLogHandler(log: self) }
    }
}

struct CapturingLogHandler: LogHandler {
    let log: CapturedLog
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .debug

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        log.append(.init(level: event.level, message: "\(event.message)"))
    }
}

/// What the handler received, in order.
final class Inbox: Sendable {
    private let items = Mutex<[SlackInbound]>([])

    var all: [SlackInbound] { items.withLock { $0 } }

    func append(_ item: SlackInbound) { items.withLock { $0.append(item) } }

    /// `event_id`s of the Events API callbacks received.
    var eventIDs: [String] {
        all.compactMap { item in
            if case .event(let payload) = item { return payload["event_id"]?.stringValue }
            return nil
        }
    }
}

/// A client under test, running in its own task.
struct RunningClient {
    let client: SocketModeClient
    let task: Task<Void, Never>
    let inbox: Inbox
    let log: CapturedLog
    /// How often `openURL` was called.
    let opens: Counter
    /// 1 once `run()` returned.
    let finished: Counter

    /// Cancels `run()` and waits for it; how long that took.
    @discardableResult
    func stop() async -> Duration {
        let clock = ContinuousClock()
        let started = clock.now
        task.cancel()
        await task.value
        return clock.now - started
    }
}

/// A counter a closure and a test can both hold.
final class Counter: Sendable {
    private let count = Mutex(0)
    var value: Int { count.withLock { $0 } }
    func increment() { count.withLock { $0 += 1 } }
}

/// Holds handlers back until the test opens it.
final class Gate: Sendable {
    private let open = Mutex(false)
    var isOpen: Bool { open.withLock { $0 } }
    func release() { open.withLock { $0 = true } }

    /// Returns once the gate is open (or the task is cancelled).
    func wait() async {
        while !isOpen && !Task.isCancelled { try? await Task.sleep(for: .milliseconds(10)) }
    }
}

/// Options short enough for tests.
func quickOptions() -> SocketModeClient.Options {
    var options = SocketModeClient.Options()
    options.pingInterval = .milliseconds(300)
    options.deadAfter = .seconds(2)
    options.backoffBase = .milliseconds(100)
    options.backoffCap = .milliseconds(400)
    options.tooManyWebsocketsDelay = .milliseconds(1500)
    options.helloTimeout = .seconds(3)
    options.closeTimeout = .milliseconds(500)
    return options
}

/// Starts a client against `fake`, whose `openURL` calls `apps.connections.open` on the fake.
func startClient(
    _ fake: FakeSlack,
    options: SocketModeClient.Options = quickOptions(),
    handlerGate: Gate? = nil
) -> RunningClient {
    startClient(options: options, handlerGate: handlerGate) { () throws(SlackError) -> String in
        try await openSocketModeURL(fake)
    }
}

/// Starts a client with this `openURL`.
func startClient(
    options: SocketModeClient.Options = quickOptions(),
    handlerGate: Gate? = nil,
    openURL: @escaping @Sendable () async throws(SlackError) -> String
) -> RunningClient {
    let inbox = Inbox()
    let log = CapturedLog()
    let opens = Counter()
    let finished = Counter()
    let client = SocketModeClient(
        openURL: { () throws(SlackError) -> String in
            opens.increment()
            return try await openURL()
        },
        options: options,
        logger: log.logger(),
        handler: { inbound in
            await handlerGate?.wait()
            inbox.append(inbound)
        }
    )
    let task = Task {
        await client.run()
        finished.increment()
    }
    return RunningClient(client: client, task: task, inbox: inbox, log: log, opens: opens, finished: finished)
}

/// Polls `condition` every 20 ms until it holds; false after `timeout`.
func eventually(
    timeout: Duration = .seconds(10),
    _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

extension SocketModeClient.Status {
    var isConnected: Bool {
        if case .connected = self { return true }
        return false
    }
}

extension FakeSlack {
    /// `/_fake/connections`, rejected handshakes left out.
    func sockets() async throws -> [JSONValue] {
        try await items("connections").filter { $0["state"]?.stringValue != "rejected" }
    }

    /// Seconds since the epoch, as the fake records times.
    func number(_ value: JSONValue?) -> Double? {
        switch value {
        case .int(let i)?: Double(i)
        case .number(let d)?: d
        default: nil
        }
    }
}

/// `value` as JSON text (to send a payload back to the fake).
func jsonText(_ value: JSONValue) throws -> String {
    String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
}
