import FakeServices
import Testing
import WritExpr

@testable import WritSlack

/// Tests/Fakes/fake_slack.py (see FakeServices).
typealias FakeSlack = FakeService
typealias HarnessError = FakeServices.HarnessError

extension FakeService {
    /// The fake workspace's tokens and secret (Tests/Fakes/README.md).
    static let botToken = "xoxb-writ-fake-bot-token"
    static let appToken = "xapp-1-A0WRITTEST-1-writ-fake-app-token"
    static let signingSecret = "writ-fake-signing-secret"
    static let teamID = "T0WRITTEST"

    /// Runs `body` with a fresh fake Slack and stops it afterwards, whatever happens.
    static func with<T>(arguments: [String] = [], _ body: (FakeService) async throws -> T) async throws -> T {
        try await with(script: "fake_slack.py", arguments: arguments, body)
    }

    /// Starts a fake Slack (the caller stops it).
    static func start() async throws -> FakeService {
        try await start(script: "fake_slack.py")
    }

    /// `POST /_fake/<path>` with `json`, parsed.
    @discardableResult
    func control(_ path: String, _ json: String = "{}") async throws -> JSONValue {
        try parseJSON(try await post(path, json))
    }

    /// `GET /_fake/<pathAndQuery>`, parsed.
    func read(_ pathAndQuery: String) async throws -> JSONValue {
        try parseJSON(try await get(pathAndQuery))
    }

    /// The `items` of a recording (`calls?method=chat.postMessage`, `acks`, `connections`, …).
    func items(_ pathAndQuery: String) async throws -> [JSONValue] {
        let v = try await read(pathAndQuery)
        return v["items"]?.arrayValue ?? []
    }
}

func parseJSON(_ text: String) throws -> JSONValue {
    switch JSONValue.parse(Array(text.utf8)) {
    case .success(let v): return v
    case .failure(let e): throw HarnessError("not JSON (\(e.message)): \(text.prefix(300))")
    }
}
