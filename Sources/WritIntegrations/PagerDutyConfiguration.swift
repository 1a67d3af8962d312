/// How writd reaches PagerDuty's REST API v2 (the `pagerduty` section of
/// /etc/writ/integrations.yaml).
///
/// The token is a secret: `description`, `debugDescription` and the mirror (what `print`, `dump`
/// and string interpolation show) leave it out.
public struct PagerDutyConfiguration: Sendable, Equatable {
    /// The API's base URL, without a trailing path for the endpoints: `https://api.pagerduty.com`.
    /// Plain `http` is only accepted for loopback addresses (tests), so the token never crosses a
    /// network in clear.
    public var apiURL: String
    /// The REST API key, sent as `Authorization: Token token=<key>`. Never in descriptions, errors
    /// or logs.
    public var token: String
    /// The deadline for one whole lookup (every page, every retry after a 429), in milliseconds.
    /// Values are clamped to 1 ms … 1 hour.
    public var timeoutMilliseconds: Int

    /// A configuration; see the properties.
    public init(apiURL: String = "https://api.pagerduty.com", token: String, timeoutMilliseconds: Int = 3000) {
        self.apiURL = apiURL
        self.token = token
        self.timeoutMilliseconds = timeoutMilliseconds
    }

    /// `timeoutMilliseconds` within 1 ms … 1 hour.
    var effectiveTimeoutMilliseconds: Int {
        min(max(timeoutMilliseconds, 1), 3_600_000)
    }
}

extension PagerDutyConfiguration: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The URL and timeout; the token only as `<redacted>` (or `<empty>`).
    public var description: String {
        let shownToken = token.isEmpty ? "<empty>" : "<redacted>"
        return "PagerDutyConfiguration(apiURL: \"\(apiURL)\", token: \(shownToken), "
            + "timeoutMilliseconds: \(timeoutMilliseconds))"
    }

    /// Same as `description`.
    public var debugDescription: String { description }

    /// The fields `dump` shows, with the token redacted.
    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "apiURL": apiURL, "token": token.isEmpty ? "<empty>" : "<redacted>",
                "timeoutMilliseconds": timeoutMilliseconds,
            ]
        )
    }
}
