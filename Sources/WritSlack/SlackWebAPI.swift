import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import WritExpr
import WritIntegrations

/// A client for the Slack Web API methods writd uses: posting and updating approval messages,
/// ephemeral notes, DMs, modals, user and user-group lookups, and the Socket Mode URL; plus
/// answers to an interaction's `response_url`.
///
/// Every call runs within one deadline (`Configuration.timeoutMilliseconds`) that also covers its
/// waits after HTTP 429. Every failure is a `SlackError`; none is ever an answer, so a caller
/// that acts only on a returned value fails closed. The token travels only in
/// `Authorization: Bearer` (never in a URL or body), and is removed from every error text. The
/// client logs nothing.
///
/// Arguments are sent as `application/x-www-form-urlencoded` to every method, with `blocks` and
/// `view` as JSON strings. Slack documents form bodies for every method, while JSON bodies are
/// accepted only by "most write methods" (not by `users.info`, `users.lookupByEmail`,
/// `usergroups.users.list`, …): one encoding that every method reads keeps a single code path.
public final class SlackWebAPI: Sendable {
    /// Where Slack is and how to authenticate.
    public struct Configuration: Sendable {
        /// The Web API base URL, ending with `/` (a missing one is added). `https://`, or plain
        /// `http://` to a loopback address only (tests, a local proxy).
        public var apiURL: String
        /// The bot token (`xoxb-…`), for every method but `apps.connections.open`.
        public var botToken: String
        /// The app-level token (`xapp-…`), only for `apps.connections.open` (Socket Mode).
        public var appToken: String?
        /// One deadline per public call, covering its waits after HTTP 429.
        public var timeoutMilliseconds: Int

        /// A configuration; `timeoutMilliseconds` is at least 1.
        public init(
            apiURL: String = "https://slack.com/api/",
            botToken: String,
            appToken: String? = nil,
            timeoutMilliseconds: Int = 10_000
        ) {
            self.apiURL = apiURL
            self.botToken = botToken
            self.appToken = appToken
            self.timeoutMilliseconds = timeoutMilliseconds
        }

        var effectiveTimeoutMilliseconds: Int { max(1, timeoutMilliseconds) }
    }

    /// The largest answer read; anything bigger is refused as `.malformed`.
    static let bodyLimit = 4 << 20
    /// The most read of an answer that is an error anyway.
    static let errorBodyLimit = 64 << 10
    /// What `respond(responseURL:_:)` names in its errors.
    static let responseURLMethod = "response_url"

    let configuration: Configuration
    private let httpClient: HTTPClient

    /// A client for `configuration`, sending through `httpClient` (by default
    /// `IntegrationHTTP.client`, which follows no redirect).
    public init(configuration: Configuration, httpClient: HTTPClient? = nil) {
        self.configuration = configuration
        self.httpClient = httpClient ?? IntegrationHTTP.client
    }

    // MARK: - Any method

    /// Calls `method` with `arguments` (POST, form-encoded; arrays and objects as JSON strings)
    /// and returns Slack's whole answer object when it says `"ok": true`.
    ///
    /// HTTP 429 → waits `Retry-After` and tries again while that fits before the deadline, else
    /// `.rateLimited`; `{"ok": false, "error": c}` → `.api(method, c)`; any other status →
    /// `.http`; no answer → `.transport` or `.timeout`. `appToken` sends the app-level token
    /// instead of the bot token (only `apps.connections.open` wants it).
    public func call(
        _ method: String,
        _ arguments: [String: JSONValue],
        appToken: Bool = false
    ) async throws(SlackError) -> JSONValue {
        try await withDeadline(method) { (deadline) async throws(SlackError) -> JSONValue in
            try await self.send(method, arguments, appToken: appToken, deadline: deadline)
        }
    }

    // MARK: - Methods

    /// `auth.test`: which workspace and bot user the bot token belongs to.
    public func authTest() async throws(SlackError) -> SlackIdentity {
        let method = "auth.test"
        let answer = try await call(method, [:])
        return SlackIdentity(
            teamID: try Self.string(answer, "team_id", method),
            team: answer["team"]?.stringValue ?? "",
            userID: try Self.string(answer, "user_id", method),
            botID: answer["bot_id"]?.stringValue,
            url: answer["url"]?.stringValue ?? ""
        )
    }

    /// `chat.postMessage`; the channel (a DM's `D…` id when `channel` was a user) and the `ts`
    /// that name the message for `update`.
    public func postMessage(
        channel: String,
        text: String,
        blocks: JSONValue? = nil,
        threadTS: String? = nil
    ) async throws(SlackError) -> (channel: String, ts: String) {
        let method = "chat.postMessage"
        var arguments: [String: JSONValue] = ["channel": .string(channel), "text": .string(text)]
        if let blocks { arguments["blocks"] = blocks }
        if let threadTS { arguments["thread_ts"] = .string(threadTS) }
        let answer = try await call(method, arguments)
        return (try Self.string(answer, "channel", method), try Self.string(answer, "ts", method))
    }

    /// `chat.update`: replaces the text (and blocks, when given) of the message `ts` in `channel`.
    public func update(channel: String, ts: String, text: String, blocks: JSONValue? = nil) async throws(SlackError) {
        var arguments: [String: JSONValue] = ["channel": .string(channel), "ts": .string(ts), "text": .string(text)]
        if let blocks { arguments["blocks"] = blocks }
        _ = try await call("chat.update", arguments)
    }

    /// `chat.postEphemeral`: a message in `channel` that only `user` sees.
    public func postEphemeral(
        channel: String,
        user: String,
        text: String,
        blocks: JSONValue? = nil
    ) async throws(SlackError) {
        var arguments: [String: JSONValue] = [
            "channel": .string(channel), "user": .string(user), "text": .string(text),
        ]
        if let blocks { arguments["blocks"] = blocks }
        _ = try await call("chat.postEphemeral", arguments)
    }

    /// `conversations.open` with one user: the id of the bot's DM channel with them (`D…`).
    public func openDM(user: String) async throws(SlackError) -> String {
        let method = "conversations.open"
        let answer = try await call(method, ["users": .string(user)])
        guard let id = answer["channel"]?["id"]?.stringValue, !id.isEmpty else {
            throw .malformed(method: method, message: "no \"channel.id\"")
        }
        return id
    }

    /// `users.lookupByEmail`; `.api(method, "users_not_found")` when no one has that address.
    ///
    /// Slack may return a deactivated user (`deleted`); the caller decides what that means.
    public func lookupByEmail(_ email: String) async throws(SlackError) -> SlackUser {
        let method = "users.lookupByEmail"
        return try Self.user(try await call(method, ["email": .string(email)]), method)
    }

    /// `users.info`; `.api(method, "user_not_found")` for an unknown id.
    public func userInfo(_ id: String) async throws(SlackError) -> SlackUser {
        let method = "users.info"
        return try Self.user(try await call(method, ["user": .string(id)]), method)
    }

    /// `usergroups.users.list`: the user ids in the user group `id` (`S…`).
    public func usergroupMembers(_ id: String) async throws(SlackError) -> [String] {
        let method = "usergroups.users.list"
        let answer = try await call(method, ["usergroup": .string(id)])
        guard let users = answer["users"]?.arrayValue else {
            throw .malformed(method: method, message: "no \"users\" array")
        }
        var ids: [String] = []
        for user in users {
            guard let id = user.stringValue else {
                throw .malformed(method: method, message: "\"users\" holds something other than a string")
            }
            ids.append(id)
        }
        return ids
    }

    /// `views.open`: opens the modal `view` for the interaction `triggerID` (valid 3 s, once);
    /// the new view's id.
    public func openView(triggerID: String, view: JSONValue) async throws(SlackError) -> String {
        let method = "views.open"
        let answer = try await call(method, ["trigger_id": .string(triggerID), "view": view])
        guard let id = answer["view"]?["id"]?.stringValue, !id.isEmpty else {
            throw .malformed(method: method, message: "no \"view.id\"")
        }
        return id
    }

    /// `apps.connections.open` with the app-level token: a single-use Socket Mode WebSocket URL
    /// (`wss://…`; plain `ws://` is accepted only to a loopback address).
    public func openSocketURL() async throws(SlackError) -> String {
        let method = "apps.connections.open"
        let answer = try await call(method, [:], appToken: true)
        let url = try Self.string(answer, "url", method)
        let lower = url.lowercased()
        let plain = lower.hasPrefix("ws://")
        guard lower.hasPrefix("wss://") || plain else {
            throw .malformed(method: method, message: "\"url\" is not a ws:// or wss:// URL")
        }
        if plain {
            let authority = String(url.dropFirst(5).prefix { $0 != "/" && $0 != "?" })
            guard SlackWireFormat.isLoopback(SlackWireFormat.host(of: authority)) else {
                throw .malformed(method: method, message: "\"url\" is plain ws:// to \(authority), not wss://")
            }
        }
        return url
    }

    /// POSTs `body` as JSON to an interaction's or a slash command's `response_url` (no token:
    /// the URL is its own credential). The URL must be `https://`, or `http://` to a loopback
    /// address. Slack's refusal (`{"ok": false, "error": "used_url"}`, also with HTTP 404) is
    /// `.api("response_url", code)`; errors never show the URL's path, which is a credential.
    public func respond(responseURL: String, _ body: JSONValue) async throws(SlackError) {
        let method = Self.responseURLMethod
        let target = try SlackWireFormat.checkURL(
            responseURL,
            what: "the response_url",
            allowQuery: true,
            reveal: false
        ).get()
        _ = try await withDeadline(method) { (deadline) async throws(SlackError) -> Bool in
            let answer = try await self.exchange(
                method,
                target: target,
                body: SlackWireFormat.json(body),
                contentType: "application/json; charset=utf-8",
                token: nil,
                deadline: deadline
            )
            let parsed = JSONValue.parse(Array(answer.body.readableBytesView))
            if case .success(let object) = parsed, object["ok"]?.boolValue == false {
                throw .api(method: method, code: object["error"]?.stringValue ?? "unknown_error")
            }
            guard (200...299).contains(answer.status) else { throw .http(method: method, status: answer.status) }
            return true
        }
    }

    // MARK: - Answers

    /// `answer[key]` as a non-empty string, else `.malformed`.
    static func string(_ answer: JSONValue, _ key: String, _ method: String) throws(SlackError) -> String {
        guard let value = answer[key]?.stringValue, !value.isEmpty else {
            throw .malformed(method: method, message: "no \"\(key)\" string")
        }
        return value
    }

    /// The `user` object of a `users.info` / `users.lookupByEmail` answer.
    static func user(_ answer: JSONValue, _ method: String) throws(SlackError) -> SlackUser {
        guard let user = answer["user"], case .object = user else {
            throw .malformed(method: method, message: "no \"user\" object")
        }
        guard let id = user["id"]?.stringValue, !id.isEmpty else {
            throw .malformed(method: method, message: "no \"user.id\"")
        }
        func flag(_ key: String) -> Bool { user[key]?.boolValue ?? false }
        let profile = user["profile"]
        let email = profile?["email"]?.stringValue
        return SlackUser(
            id: id,
            teamID: user["team_id"]?.stringValue ?? "",
            name: user["name"]?.stringValue ?? "",
            realName: user["real_name"]?.stringValue ?? profile?["real_name"]?.stringValue ?? "",
            email: email?.isEmpty == false ? email : nil,
            deleted: flag("deleted"),
            // Slackbot has is_bot false but is no person either.
            isBot: flag("is_bot") || flag("is_app_user") || id == "USLACKBOT",
            isGuest: flag("is_restricted") || flag("is_ultra_restricted")
        )
    }

    // MARK: - HTTP

    /// One Web API call: checks, then `exchange`, then Slack's `ok` envelope.
    private func send(
        _ method: String,
        _ arguments: [String: JSONValue],
        appToken: Bool,
        deadline: NIODeadline
    ) async throws(SlackError) -> JSONValue {
        // The method name becomes part of the URL path: nothing but Slack's method alphabet.
        guard Self.isMethodName(method) else {
            throw .configuration(
                "not sent: \"\(SlackWireFormat.printable(method, limit: 60))\" is not a Slack method name"
            )
        }
        var base = configuration.apiURL
        if !base.hasSuffix("/") { base += "/" }
        let checked = try SlackWireFormat.checkURL(base, what: "the Slack API URL", allowQuery: false).get()
        let token: String
        if appToken {
            guard let app = configuration.appToken, !app.isEmpty else {
                throw .configuration("not sent: \(method) needs the app-level token (xapp-…), which is not set")
            }
            token = app
        } else {
            token = configuration.botToken
        }
        guard !token.isEmpty, token.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
            throw .configuration(
                "not sent: the Slack \(appToken ? "app-level" : "bot") token is empty or holds spaces, control or "
                    + "non-ASCII characters"
            )
        }
        let target = SlackWireFormat.CheckedURL(
            url: checked.url + method,
            authority: checked.authority,
            isHTTPS: checked.isHTTPS
        )
        let answer = try await exchange(
            method,
            target: target,
            body: SlackWireFormat.form(arguments),
            contentType: "application/x-www-form-urlencoded",
            token: token,
            deadline: deadline
        )
        guard answer.status == 200 else { throw .http(method: method, status: answer.status) }
        let parsed: JSONValue
        switch JSONValue.parse(Array(answer.body.readableBytesView)) {
        case .success(let value): parsed = value
        case .failure(let error):
            throw .malformed(method: method, message: SlackWireFormat.printable(error.message, limit: 120))
        }
        guard let ok = parsed["ok"]?.boolValue else {
            throw .malformed(method: method, message: "no \"ok\" boolean")
        }
        guard ok else {
            let code = parsed["error"]?.stringValue ?? "unknown_error"
            throw .api(method: method, code: SlackWireFormat.printable(code, limit: 80))
        }
        return parsed
    }

    /// Whether `name` looks like a Slack method (`chat.postMessage`): letters, digits, `.` and `_`.
    static func isMethodName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 100
            && name.utf8.allSatisfy { byte in
                switch byte {
                case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x2E, 0x5F: true
                default: false
                }
            }
    }

    /// One POST, repeated after HTTP 429 while the wait `Retry-After` asks for fits before the
    /// deadline; the status and body of the first other answer (read up to `bodyLimit`, or
    /// `errorBodyLimit` for a status that is not 2xx).
    private func exchange(
        _ method: String,
        target: SlackWireFormat.CheckedURL,
        body: String,
        contentType: String,
        token: String?,
        deadline: NIODeadline
    ) async throws(SlackError) -> (status: Int, body: ByteBuffer) {
        var request = HTTPClientRequest(url: target.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: contentType)
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: "writd")
        if let token { request.headers.add(name: "Authorization", value: "Bearer " + token) }
        let bytes = ByteBuffer(string: body)

        while true {
            request.body = .bytes(bytes)
            let response: HTTPClientResponse
            do {
                response = try await httpClient.execute(request, deadline: deadline)
            } catch {
                throw transportError(error, method: method, authority: target.authority)
            }
            let status = Int(response.status.code)
            if status == 429 {
                let asked = Self.retryAfterSeconds(response.headers)
                _ = try? await response.body.collect(upTo: Self.errorBodyLimit)
                let wait = Int64(max(asked ?? 1, 1))
                guard NIODeadline.now() + .seconds(wait) + .milliseconds(50) < deadline else {
                    throw .rateLimited(method: method, retryAfter: asked ?? 1)
                }
                do {
                    try await Task.sleep(nanoseconds: UInt64(wait) * 1_000_000_000)
                } catch {
                    throw .transport(method: method, message: "the call was cancelled")
                }
                continue
            }
            let limit = (200...299).contains(status) ? Self.bodyLimit : Self.errorBodyLimit
            do {
                return (status, try await response.body.collect(upTo: limit))
            } catch is NIOTooManyBytesError {
                if limit == Self.errorBodyLimit { return (status, ByteBuffer()) }
                throw .malformed(method: method, message: "the answer is larger than \(Self.bodyLimit >> 20) MiB")
            } catch {
                throw transportError(error, method: method, authority: target.authority)
            }
        }
    }

    /// The wait a 429 asks for: `Retry-After` in whole seconds, at most an hour; nil when absent
    /// or not a number.
    static func retryAfterSeconds(_ headers: HTTPHeaders) -> Int? {
        guard let value = headers.first(name: "Retry-After") else { return nil }
        let words = value.split(whereSeparator: \.isWhitespace)
        guard words.count == 1, let seconds = Int(words[0]), seconds >= 0 else { return nil }
        return min(seconds, 3_600)
    }

    /// Runs `operation` with the deadline `timeoutMilliseconds` from now; a backstop timer turns a
    /// stall past it into `.timeout`. Errors leave with the tokens removed from their texts.
    private func withDeadline<T: Sendable>(
        _ method: String,
        _ operation: @escaping @Sendable (NIODeadline) async throws(SlackError) -> T
    ) async throws(SlackError) -> T {
        let outcome = await IntegrationHTTP.run(
            milliseconds: configuration.effectiveTimeoutMilliseconds,
            timedOut: SlackError.timeout(method: method),
            cancelled: SlackError.transport(method: method, message: "the call was cancelled"),
            operation
        )
        switch outcome {
        case .success(let value): return value
        case .failure(let error): throw redacted(error)
        }
    }

    /// What AsyncHTTPClient or NIO threw, as a `SlackError` saying what to check.
    private func transportError(_ error: any Error, method: String, authority: String) -> SlackError {
        if error is CancellationError { return .transport(method: method, message: "the call was cancelled") }
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .writeTimeout, .connectTimeout, .tlsHandshakeTimeout,
                .getConnectionFromPoolTimeout, .httpProxyHandshakeTimeout, .socksHandshakeTimeout:
                return .timeout(method: method)
            case .cancelled:
                return .transport(method: method, message: "the call was cancelled")
            case .remoteConnectionClosed:
                return .transport(
                    method: method,
                    message: "\(authority) closed the connection without answering; check any proxy in between"
                )
            case .redirectLimitReached, .redirectCycleDetected:
                return .transport(method: method, message: "\(authority) redirects too often")
            default:
                break
            }
        }
        let text = redact(String(describing: error))
        let short = SlackWireFormat.printable(text, limit: 160)
        if text.contains("Connection refused") {
            return .transport(
                method: method,
                message: "connection refused by \(authority): check the URL and that this host may connect to it"
            )
        }
        if text.contains("Connection reset") {
            return .transport(
                method: method,
                message: "connection reset by \(authority): check any proxy or firewall in between"
            )
        }
        if text.contains("dnsAError: Optional") || text.contains("dnsAAAAError: Optional")
            || text.contains("SocketAddressError")
        {
            return .transport(
                method: method,
                message: "cannot resolve \(SlackWireFormat.host(of: authority)): check DNS on this host"
            )
        }
        if text.contains("SSL") || text.contains("TLS") || text.contains("certificate") {
            return .transport(
                method: method,
                message: "TLS with \(authority) failed (\(short)): check the system CA certificates, the clock and "
                    + "any TLS-intercepting proxy"
            )
        }
        return .transport(method: method, message: "\(authority): \(short); check the network (DNS, proxy, firewall)")
    }

    /// `error` with the tokens removed from its texts.
    private func redacted(_ error: SlackError) -> SlackError {
        switch error {
        case .api(let method, let code): .api(method: redact(method), code: redact(code))
        case .transport(let method, let message): .transport(method: redact(method), message: redact(message))
        case .malformed(let method, let message): .malformed(method: redact(method), message: redact(message))
        case .configuration(let message): .configuration(redact(message))
        case .rateLimited(let method, let seconds): .rateLimited(method: redact(method), retryAfter: seconds)
        case .http(let method, let status): .http(method: redact(method), status: status)
        case .timeout(let method): .timeout(method: redact(method))
        }
    }

    /// `text` with every occurrence of either token replaced by `<redacted>`.
    private func redact(_ text: String) -> String {
        var out = text
        for token in [configuration.botToken, configuration.appToken ?? ""] where token.count >= 4 {
            out = out.replacing(token, with: "<redacted>")
        }
        return out
    }
}
