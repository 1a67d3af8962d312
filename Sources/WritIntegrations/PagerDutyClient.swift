import AsyncHTTPClient
import FoundationEssentials
import NIOCore
import NIOHTTP1
import WritCore

/// A client for the part of PagerDuty's REST API v2 that break-glass needs: who a user is (by
/// e-mail), what they are on call for right now, and a cheap authenticated ping.
///
/// Every public call runs within one deadline (`PagerDutyConfiguration.timeoutMilliseconds`) that
/// covers all its pages and its waits after HTTP 429. Every failure is a `PagerDutyError`; none is
/// ever an answer, so a caller that auto-approves only on a returned entry fails closed. Every
/// request carries `Accept: application/vnd.pagerduty+json;version=2` and
/// `Authorization: Token token=…`; the client logs nothing.
public final class PagerDutyClient: Sendable {
    /// PagerDuty's version override header value.
    static let acceptV2 = "application/vnd.pagerduty+json;version=2"
    /// Items asked for per page (PagerDuty's maximum).
    static let pageSize = 100
    /// Pages followed before giving up with `.malformed("too many pages")`.
    static let maxPages = 20
    /// The largest successful answer read (a full page of on-calls is well under 1 MiB).
    static let bodyLimit = 8 << 20
    /// The most read of an error answer.
    static let errorBodyLimit = 64 << 10

    private let configuration: PagerDutyConfiguration
    private let httpClient: HTTPClient

    /// A client for `configuration`, sending through `httpClient` (by default
    /// `IntegrationHTTP.client`, which follows no redirect: only the configured origin answers).
    public init(configuration: PagerDutyConfiguration, httpClient: HTTPClient? = nil) {
        self.configuration = configuration
        self.httpClient = httpClient ?? IntegrationHTTP.client
    }

    /// The PD user whose email is exactly `email` (PD's query matches substrings and names: filter exactly).
    ///
    /// Compared case-insensitively; follows the pages of `GET /users?query=` until a match.
    /// `.noSuchUser` when none has it.
    public func userID(email: String) async throws(PagerDutyError) -> String {
        try await withDeadline { (deadline) async throws(PagerDutyError) -> String in
            try await self.lookUpUser(email: email, deadline: deadline)
        }
    }

    /// Who `userID` is on call for at `now`, across every page, optionally limited to escalation policies and/or schedules.
    ///
    /// An entry is returned when its escalation policy is in `escalationPolicies` or its schedule is
    /// in `schedules` (an empty list adds no condition; both empty: every entry), it is `userID`'s,
    /// and its shift covers `now` (epoch seconds). With one kind of list the filter is also sent to
    /// PagerDuty; with both, PagerDuty would require both to match, so only the user is sent and the
    /// union is taken here.
    public func onCalls(
        userID: String,
        escalationPolicies: [String] = [],
        schedules: [String] = [],
        now: Int64
    ) async throws(PagerDutyError) -> [OnCall] {
        try await withDeadline { (deadline) async throws(PagerDutyError) -> [OnCall] in
            try await self.lookUpOnCalls(
                userID: userID,
                escalationPolicies: escalationPolicies,
                schedules: schedules,
                now: now,
                deadline: deadline
            )
        }
    }

    /// `onCalls` for the user with this email, within one deadline.
    public func onCalls(
        email: String,
        escalationPolicies: [String] = [],
        schedules: [String] = [],
        now: Int64
    ) async throws(PagerDutyError) -> [OnCall] {
        try await withDeadline { (deadline) async throws(PagerDutyError) -> [OnCall] in
            let userID = try await self.lookUpUser(email: email, deadline: deadline)
            return try await self.lookUpOnCalls(
                userID: userID,
                escalationPolicies: escalationPolicies,
                schedules: schedules,
                now: now,
                deadline: deadline
            )
        }
    }

    /// A cheap authenticated call (GET /abilities) for `writ doctor`.
    ///
    /// nil when PagerDuty accepted the token and answered as documented; else what went wrong.
    public func ping() async -> PagerDutyError? {
        do {
            _ = try await withDeadline { (deadline) async throws(PagerDutyError) -> Bool in
                _ = try await self.getJSON(PagerDutyWire.Abilities.self, "/abilities", [], deadline: deadline)
                return true
            }
            return nil
        } catch {
            return error
        }
    }

    // MARK: - Lookups

    private func lookUpUser(email: String, deadline: NIODeadline) async throws(PagerDutyError) -> String {
        // Compared as EmailAddress does (ASCII case folding; a non-ASCII address matches nobody), so
        // a look-alike address is never taken for the one asked about.
        guard EmailAddress.folded(email) != nil else { throw .noSuchUser(email: email) }
        var offset = 0
        for _ in 0..<Self.maxPages {
            let page = try await getJSON(
                PagerDutyWire.UsersPage.self,
                "/users",
                [("query", email), ("limit", String(Self.pageSize)), ("offset", String(offset))],
                deadline: deadline
            )
            if let user = page.users.first(where: { EmailAddress.same($0.email ?? "", email) }) {
                guard !user.id.isEmpty else { throw .malformed("/users: a user with an empty \"id\"") }
                return user.id
            }
            guard page.more == true else { throw .noSuchUser(email: email) }
            guard !page.users.isEmpty else { throw .malformed("/users: \"more\" is true on an empty page") }
            offset += page.users.count
        }
        throw .malformed("too many pages")
    }

    private func lookUpOnCalls(
        userID: String,
        escalationPolicies: [String],
        schedules: [String],
        now: Int64,
        deadline: NIODeadline
    ) async throws(PagerDutyError) -> [OnCall] {
        guard !userID.isEmpty else { return [] }
        let instant = ISO8601Time.format(now)
        var query: [(String, String)] = [("user_ids[]", userID)]
        if schedules.isEmpty {
            query += escalationPolicies.map { ("escalation_policy_ids[]", $0) }
        }
        if escalationPolicies.isEmpty {
            query += schedules.map { ("schedule_ids[]", $0) }
        }
        query += [("since", instant), ("until", instant), ("limit", String(Self.pageSize))]

        func wanted(_ entry: OnCall) -> Bool {
            guard entry.userID == userID, entry.covers(now) else { return false }
            if escalationPolicies.isEmpty && schedules.isEmpty { return true }
            return escalationPolicies.contains(entry.escalationPolicyID)
                || entry.scheduleID.map { schedules.contains($0) } ?? false
        }

        var found: [OnCall] = []
        var offset = 0
        for _ in 0..<Self.maxPages {
            let page = try await getJSON(
                PagerDutyWire.OnCallsPage.self,
                "/oncalls",
                query + [("offset", String(offset))],
                deadline: deadline
            )
            for (index, entry) in page.oncalls.enumerated() {
                let onCall = try Self.onCall(entry, at: offset + index)
                if wanted(onCall) { found.append(onCall) }
            }
            guard page.more == true else { return found }
            guard !page.oncalls.isEmpty else { throw .malformed("/oncalls: \"more\" is true on an empty page") }
            offset += page.oncalls.count
        }
        throw .malformed("too many pages")
    }

    /// An entry of `GET /oncalls` checked and converted; `index` is its position for messages.
    package static func onCall(_ entry: PagerDutyWire.Entry, at index: Int) throws(PagerDutyError) -> OnCall {
        func time(_ text: String?, _ field: String) throws(PagerDutyError) -> Int64? {
            guard let text else { return nil }
            guard let seconds = ISO8601Time.parse(text) else {
                throw .malformed(
                    "/oncalls: \"oncalls[\(index)].\(field)\" is \"\(LogText.escape(text, limit: 40))\", "
                        + "not an ISO 8601 time"
                )
            }
            return seconds
        }
        guard !entry.user.id.isEmpty, !entry.escalationPolicy.id.isEmpty else {
            throw .malformed("/oncalls: \"oncalls[\(index)]\" has an empty user or escalation policy id")
        }
        let start = try time(entry.start, "start")
        let end = try time(entry.end, "end")
        return OnCall(
            userID: entry.user.id,
            escalationPolicyID: entry.escalationPolicy.id,
            escalationPolicyName: entry.escalationPolicy.displayName,
            scheduleID: entry.schedule?.id,
            scheduleName: entry.schedule?.displayName,
            level: entry.escalationLevel,
            start: start,
            end: end
        )
    }

    // MARK: - HTTP

    /// Runs `operation` with the deadline `timeoutMilliseconds` from now; a backstop timer turns a
    /// stall past it into `.timedOut`. Errors leave with the token removed from their texts.
    private func withDeadline<T: Sendable>(
        _ operation: @escaping @Sendable (NIODeadline) async throws(PagerDutyError) -> T
    ) async throws(PagerDutyError) -> T {
        let outcome = await IntegrationHTTP.run(
            milliseconds: configuration.effectiveTimeoutMilliseconds,
            timedOut: PagerDutyError.timedOut(milliseconds: configuration.effectiveTimeoutMilliseconds),
            cancelled: PagerDutyError.transport("the lookup was cancelled"),
            operation
        )
        switch outcome {
        case .success(let value): return value
        case .failure(let error): throw redacted(error)
        }
    }

    /// `GET path?query` decoded as `type`; `.malformed` naming the field when it does not fit.
    private func getJSON<T: Decodable>(
        _ type: T.Type,
        _ path: String,
        _ query: [(String, String)],
        deadline: NIODeadline
    ) async throws(PagerDutyError) -> T {
        let body = try await get(path, query, deadline: deadline)
        return try PagerDutyWire.decode(T.self, path: path, body: Array(body.readableBytesView))
    }

    /// One GET with PagerDuty's headers, repeated after a 429 while the wait fits before the
    /// deadline; the body of a 2xx answer.
    private func get(
        _ path: String,
        _ query: [(String, String)],
        deadline: NIODeadline
    ) async throws(PagerDutyError) -> ByteBuffer {
        let base = try PagerDutyURL.base(configuration.apiURL).get()
        guard !configuration.token.isEmpty,
            configuration.token.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F })
        else {
            throw .transport(
                "not sent: pagerduty.token is empty or holds spaces, control or non-ASCII characters; "
                    + "set it in /etc/writ/integrations.yaml"
            )
        }
        var request = HTTPClientRequest(url: PagerDutyURL.url(base, path: path, query: query))
        request.method = .GET
        request.headers.add(name: "Accept", value: Self.acceptV2)
        request.headers.add(name: "Authorization", value: "Token token=" + configuration.token)
        request.headers.add(name: "User-Agent", value: "writd")

        while true {
            let response: HTTPClientResponse
            do {
                response = try await httpClient.execute(request, deadline: deadline)
            } catch {
                throw transportError(error, base: base)
            }
            let status = Int(response.status.code)
            switch status {
            case 200...299:
                do {
                    return try await response.body.collect(upTo: Self.bodyLimit)
                } catch is NIOTooManyBytesError {
                    throw .malformed("\(path): the answer is larger than \(Self.bodyLimit >> 20) MiB")
                } catch {
                    throw transportError(error, base: base)
                }
            case 429:
                let asked = Self.retryAfterSeconds(response.headers)
                _ = try? await response.body.collect(upTo: Self.errorBodyLimit)
                let wait = Int64(max(asked ?? 1, 1))
                guard NIODeadline.now() + .seconds(wait) + .milliseconds(50) < deadline else {
                    throw .rateLimited(retryAfterSeconds: asked)
                }
                do {
                    try await Task.sleep(nanoseconds: UInt64(wait) * 1_000_000_000)
                } catch {
                    throw .transport("the lookup was cancelled")
                }
            case 401, 403:
                _ = try? await response.body.collect(upTo: Self.errorBodyLimit)
                throw .unauthorized
            case 300...399:
                _ = try? await response.body.collect(upTo: Self.errorBodyLimit)
                throw .http(
                    status: status,
                    message: "a redirect (not followed: only pagerduty.api_url may answer); check pagerduty.api_url"
                )
            default:
                let body = try? await response.body.collect(upTo: Self.errorBodyLimit)
                throw .http(status: status, message: errorMessage(body, status: response.status))
            }
        }
    }

    /// The wait a 429 asks for: `Retry-After` in seconds, else PagerDuty's `ratelimit-reset`
    /// (documented as the seconds until the limit resets); nil when neither is a whole number of
    /// seconds. At most a day.
    static func retryAfterSeconds(_ headers: HTTPHeaders) -> Int? {
        for name in ["Retry-After", "ratelimit-reset"] {
            guard let value = headers.first(name: name) else { continue }
            let words = value.split(whereSeparator: \.isWhitespace)
            if words.count == 1, let seconds = Int(words[0]), seconds >= 0 {
                return min(seconds, 86_400)
            }
        }
        return nil
    }

    /// PagerDuty's error message (and its `errors` details) from an error body, else the reason
    /// phrase: token removed, escaped, at most 200 characters.
    private func errorMessage(_ body: ByteBuffer?, status: HTTPResponseStatus) -> String {
        var text = ""
        if let body,
            let parsed = try? JSONDecoder().decode(PagerDutyWire.ErrorBody.self, from: Data(body.readableBytesView))
        {
            text = parsed.error.message ?? ""
            let details = (parsed.error.errors ?? []).filter { !$0.isEmpty }
            if !details.isEmpty {
                text += (text.isEmpty ? "" : ": ") + details.joined(separator: "; ")
            }
        }
        if text.isEmpty {
            text = status.reasonPhrase.isEmpty ? "no error message" : status.reasonPhrase
        }
        return LogText.escape(redact(text), limit: 200)
    }

    /// What AsyncHTTPClient or NIO threw, as a `PagerDutyError` saying what to check.
    private func transportError(_ error: any Error, base: PagerDutyURL.Base) -> PagerDutyError {
        let milliseconds = configuration.effectiveTimeoutMilliseconds
        if error is CancellationError { return .transport("the lookup was cancelled") }
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .writeTimeout, .connectTimeout, .tlsHandshakeTimeout,
                .getConnectionFromPoolTimeout, .httpProxyHandshakeTimeout, .socksHandshakeTimeout:
                return .timedOut(milliseconds: milliseconds)
            case .cancelled:
                return .transport("the lookup was cancelled")
            case .remoteConnectionClosed:
                return .transport(
                    "\(base.authority) closed the connection without answering; check pagerduty.api_url and any "
                        + "proxy in between"
                )
            case .redirectLimitReached, .redirectCycleDetected:
                return .transport("\(base.authority) redirects too often; check pagerduty.api_url")
            default:
                break
            }
        }
        let text = redact(String(describing: error))
        let short = LogText.escape(text, limit: 160)
        let authority = base.authority
        if text.contains("Connection refused") {
            return .transport(
                "connection refused by \(authority): check pagerduty.api_url and that this host may connect to it"
            )
        }
        if text.contains("Connection reset") {
            return .transport(
                "connection reset by \(authority): check pagerduty.api_url and any proxy or firewall in between"
            )
        }
        if text.contains("dnsAError: Optional") || text.contains("dnsAAAAError: Optional")
            || text.contains("SocketAddressError")
        {
            return .transport(
                "cannot resolve \(PagerDutyURL.host(of: authority)): check DNS on this host and pagerduty.api_url"
            )
        }
        if text.contains("SSL") || text.contains("TLS") || text.contains("certificate") {
            return .transport(
                "TLS with \(authority) failed (\(short)): check the system CA certificates, the clock and any "
                    + "TLS-intercepting proxy"
            )
        }
        return .transport("\(authority): \(short); check pagerduty.api_url and the network (DNS, proxy, firewall)")
    }

    /// `error` with the token removed from its texts.
    private func redacted(_ error: PagerDutyError) -> PagerDutyError {
        switch error {
        case .http(let status, let message): .http(status: status, message: redact(message))
        case .transport(let what): .transport(redact(what))
        case .malformed(let what): .malformed(redact(what))
        default: error
        }
    }

    /// `text` with every occurrence of the token replaced by `<redacted>`.
    private func redact(_ text: String) -> String {
        let token = configuration.token
        guard !token.isEmpty else { return text }
        return text.replacing(token, with: "<redacted>")
    }
}
