import AsyncHTTPClient
import FakeServices
import FoundationEssentials
import Glibc
import NIOCore
import Testing

@testable import WritIntegrations

/// Tests/Fakes/fake_pagerduty.py (see FakeServices).
typealias FakePagerDuty = FakeService
typealias HarnessError = FakeServices.HarnessError

extension FakeService {
    /// The token the fake accepts by default.
    static let token = "pd-fake-token"

    /// Runs `body` with a fresh fake PagerDuty and stops it afterwards, whatever happens.
    static func with<T>(_ body: (FakeService) async throws -> T) async throws -> T {
        try await with(script: "fake_pagerduty.py", body)
    }

    /// Seeds users, escalation policies, schedules and on-calls.
    func seed(_ seed: Seed) async throws {
        let data = try JSONEncoder().encode(seed)
        try await post("seed", String(decoding: data, as: UTF8.self))
    }

    /// The API requests the fake recorded, optionally only those to `path`.
    func requests(path: String? = nil) async throws -> [RecordedRequest] {
        let text = try await get("requests" + (path.map { "?path=" + $0 } ?? ""))
        return try JSONDecoder().decode(RecordedRequests.self, from: Data(text.utf8)).items
    }
}

/// The body of `POST /_fake/seed`.
struct Seed: Encodable {
    struct User: Encodable {
        var id: String
        var name: String
        var email: String
    }
    struct Named: Encodable {
        var id: String
        var name: String
    }
    struct Shift: Encodable {
        var user: String
        var escalation_policy: String
        var schedule: String?
        var escalation_level: Int
        var start: String?
        var end: String?

        init(
            user: String,
            policy: String,
            schedule: String? = nil,
            level: Int = 1,
            start: Int64? = nil,
            end: Int64? = nil
        ) {
            self.user = user
            self.escalation_policy = policy
            self.schedule = schedule
            self.escalation_level = level
            self.start = start.map(ISO8601Time.format)
            self.end = end.map(ISO8601Time.format)
        }
    }

    var users: [User] = []
    var escalation_policies: [Named] = []
    var schedules: [Named] = []
    var oncalls: [Shift] = []
}

/// `GET /_fake/requests`.
struct RecordedRequests: Decodable {
    var items: [RecordedRequest]
}

/// One API request as the fake recorded it.
struct RecordedRequest: Decodable {
    var path: String
    var params: [String: [String]]
    var authorization: String?
    var accept: String?
    var accept_v2: Bool
    var status: Int?
}

/// Seconds since the epoch, now.
func currentTime() -> Int64 {
    Int64(time(nil))
}

/// A client of `fake` with the fake's token (or `token`) and a deadline of `timeout` ms. The default deadline is long enough for a loaded machine (three pages
/// took over 3 s under AddressSanitizer with every suite at once); tests of deadlines give
/// theirs.
func client(_ fake: FakePagerDuty, token: String = FakePagerDuty.token, timeout: Int = 10_000) -> PagerDutyClient {
    PagerDutyClient(configuration: PagerDutyConfiguration(apiURL: fake.url, token: token, timeoutMilliseconds: timeout))
}

/// What `body` threw as a `PagerDutyError`, or nil when it returned (another error fails the test).
func failure<T>(_ body: () async throws -> T) async -> PagerDutyError? {
    do {
        _ = try await body()
        return nil
    } catch let error as PagerDutyError {
        return error
    } catch {
        Issue.record("not a PagerDutyError: \(error)")
        return nil
    }
}

/// Seconds `body` took, and its result.
func timed<T>(_ body: () async -> T) async -> (T, Double) {
    let clock = ContinuousClock()
    let start = clock.now
    let result = await body()
    let elapsed = clock.now - start
    return (result, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
}
