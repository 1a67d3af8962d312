import NIOHTTP1
import Testing

@testable import WritIntegrations

@Suite("PagerDuty client pieces")
struct PagerDutyUnitTests {
    @Test func baseURLs() throws {
        let pd = try PagerDutyURL.base("https://api.pagerduty.com/").get()
        #expect(pd == PagerDutyURL.Base(url: "https://api.pagerduty.com", authority: "api.pagerduty.com"))
        #expect((try? PagerDutyURL.base("https://proxy.example:8443/pd").get())?.url == "https://proxy.example:8443/pd")
        #expect((try? PagerDutyURL.base("http://127.0.0.1:8080").get())?.authority == "127.0.0.1:8080")
        #expect((try? PagerDutyURL.base("HTTP://localhost:1").get()) != nil)
        #expect((try? PagerDutyURL.base("http://[::1]:80").get()) != nil)
        for refused in [
            "http://api.pagerduty.com", "http://127.0.0.1.example.com", "http://128.0.0.1", "ftp://api.pagerduty.com",
            "api.pagerduty.com", "https://", "https:///users", "https://user:pw@api.pagerduty.com",
            "https://api.pagerduty.com/?token=x", "https://api.pagerduty.com/#x", "https://api.pager duty.com",
            "https://api.pagerduty.com\n", "",
        ] {
            guard case .failure(.transport(let why)) = PagerDutyURL.base(refused) else {
                Issue.record("accepted \(refused)")
                continue
            }
            #expect(why.hasPrefix("not sent: pagerduty.api_url") && !why.contains("\n"), "\(why)")
        }
    }

    @Test func queryEncoding() throws {
        let base = try PagerDutyURL.base("https://api.pagerduty.com").get()
        let url = PagerDutyURL.url(
            base,
            path: "/oncalls",
            query: [("user_ids[]", "PABC1"), ("query", "a.b+c@x.com"), ("since", "2026-11-25T10:00:00Z")]
        )
        #expect(
            url == "https://api.pagerduty.com/oncalls?user_ids%5B%5D=PABC1&query=a.b%2Bc%40x.com"
                + "&since=2026-11-25T10%3A00%3A00Z"
        )
        #expect(PagerDutyURL.encode("é &=~_-.") == "%C3%A9%20%26%3D~_-.")
        #expect(PagerDutyURL.url(base, path: "/abilities", query: []) == "https://api.pagerduty.com/abilities")
    }

    @Test func retryAfter() {
        func wait(_ pairs: [(String, String)]) -> Int? {
            PagerDutyClient.retryAfterSeconds(HTTPHeaders(pairs))
        }
        #expect(wait([]) == nil)
        #expect(wait([("Retry-After", "7")]) == 7)
        #expect(wait([("retry-after", " 3 ")]) == 3)
        #expect(wait([("ratelimit-reset", "12")]) == 12)
        #expect(wait([("Retry-After", "2"), ("ratelimit-reset", "40")]) == 2, "Retry-After first")
        #expect(wait([("Retry-After", "Wed, 21 Oct 2026 07:28:00 GMT"), ("ratelimit-reset", "5")]) == 5)
        #expect(wait([("Retry-After", "-1")]) == nil)
        #expect(wait([("Retry-After", "9999999")]) == 86_400)
    }

    @Test func errorDescriptionsAreOneLineWithAdvice() {
        let errors: [PagerDutyError] = [
            .unauthorized, .rateLimited(retryAfterSeconds: 4), .rateLimited(retryAfterSeconds: nil),
            .timedOut(milliseconds: 3000), .http(status: 503, message: "Service Unavailable"),
            .http(status: 404, message: "Not Found"), .http(status: 400, message: "Invalid Input Provided"),
            .http(status: 302, message: "Found"), .transport("connection refused by 127.0.0.1:1: check x"),
            .malformed("too many pages"), .noSuchUser(email: "eve\n@x.com"),
        ]
        for error in errors {
            let text = error.description
            #expect(!text.contains("\n") && text.count < 400, "\(text)")
            #expect(text.contains(":"), "says what to do: \(text)")
        }
        #expect(
            PagerDutyError.unauthorized.description
                == "PagerDuty refused the API token (401/403): check pagerduty.token in /etc/writ/integrations.yaml "
                + "(a REST API key that can read users and on-calls)"
        )
        #expect(PagerDutyError.rateLimited(retryAfterSeconds: 4).description.contains("retry after 4 s"))
        #expect(PagerDutyError.noSuchUser(email: "eve\n@x.com").description.contains("eve\\n@x.com"))
    }

    @Test func configurationHidesTheToken() {
        let configuration = PagerDutyConfiguration(token: "u+sekrit-token")
        #expect(configuration.apiURL == "https://api.pagerduty.com" && configuration.timeoutMilliseconds == 3000)
        var dumped = ""
        dump(configuration, to: &dumped)
        for shown in [
            "\(configuration)", String(describing: configuration), String(reflecting: configuration), dumped,
        ] {
            #expect(!shown.contains("sekrit"), "\(shown)")
            #expect(shown.contains("api.pagerduty.com"))
        }
        #expect(PagerDutyConfiguration(token: "t", timeoutMilliseconds: -5).effectiveTimeoutMilliseconds == 1)
        #expect(
            PagerDutyConfiguration(token: "t", timeoutMilliseconds: .max).effectiveTimeoutMilliseconds == 3_600_000
        )
    }

    @Test func onCallEntries() throws {
        func entry(start: String?, end: String?, schedule: PagerDutyWire.Reference?) -> PagerDutyWire.Entry {
            PagerDutyWire.Entry(
                user: .init(id: "PALICE1", summary: "Alice"),
                escalationPolicy: .init(id: "PEP1", summary: "Infra"),
                schedule: schedule,
                escalationLevel: 2,
                start: start,
                end: end
            )
        }
        let scheduled = try PagerDutyClient.onCall(
            entry(
                start: "2026-11-25T11:00:00+01:00",
                end: "2026-11-26T10:00:00Z",
                schedule: .init(id: "PS1", summary: "ref", name: "Primary")
            ),
            at: 0
        )
        #expect(
            scheduled
                == OnCall(
                    userID: "PALICE1",
                    escalationPolicyID: "PEP1",
                    escalationPolicyName: "Infra",
                    scheduleID: "PS1",
                    scheduleName: "Primary",
                    level: 2,
                    start: 1_795_600_800,
                    end: 1_795_687_200
                )
        )
        let permanent = try PagerDutyClient.onCall(entry(start: nil, end: nil, schedule: nil), at: 0)
        #expect(permanent.start == nil && permanent.end == nil && permanent.scheduleID == nil)
        #expect(permanent.covers(0) && permanent.covers(.max))

        #expect(throws: PagerDutyError.self) {
            try PagerDutyClient.onCall(entry(start: "yesterday", end: nil, schedule: nil), at: 3)
        }
        do {
            _ = try PagerDutyClient.onCall(entry(start: nil, end: "2026-11-25T10:00:00", schedule: nil), at: 3)
            Issue.record("a time without a zone was accepted")
        } catch {
            #expect(
                error
                    == .malformed(
                        "/oncalls: \"oncalls[3].end\" is \"2026-11-25T10:00:00\", not an ISO 8601 time"
                    )
            )
        }
    }
}
