import WritCore

/// Why a PagerDuty lookup gave no answer. Every case means "not known to be on call": writd never
/// auto-approves on an error and sends the request to people instead.
///
/// Texts never contain the API token (the client removes it from anything PagerDuty or the network
/// stack sent back before building an error).
public enum PagerDutyError: Error, Sendable, Equatable, CustomStringConvertible {
    /// HTTP 401 or 403: the token is wrong, revoked, or lacks access.
    case unauthorized
    /// HTTP 429 still, after the retries the deadline allows. `retryAfterSeconds` is the last wait
    /// PagerDuty asked for (`Retry-After` or `ratelimit-reset`), nil when it named none.
    case rateLimited(retryAfterSeconds: Int?)
    /// The lookup's deadline (`PagerDutyConfiguration.timeoutMilliseconds`) passed.
    case timedOut(milliseconds: Int)
    /// Another non-2xx answer; `message` is PagerDuty's error message (and its `errors`), escaped
    /// and at most 200 characters, or the HTTP reason phrase when the body has none.
    case http(status: Int, message: String)
    /// No answer at all: connection refused or reset, DNS, TLS, a bad `apiURL` or token format
    /// (nothing sent). The text says what happened and what to check.
    case transport(String)
    /// An answer that is not what PagerDuty's API documents (not JSON, a missing field, a
    /// pagination that does not end).
    case malformed(String)
    /// No PagerDuty user has exactly this e-mail address (compared case-insensitively).
    case noSuchUser(email: String)

    /// One line for the log: what happened and what to do about it.
    public var description: String {
        switch self {
        case .unauthorized:
            "PagerDuty refused the API token (401/403): check pagerduty.token in /etc/writ/integrations.yaml "
                + "(a REST API key that can read users and on-calls)"
        case .rateLimited(let seconds):
            "PagerDuty is rate-limiting writ (429\(seconds.map { ", retry after \($0) s" } ?? "")): requests go to "
                + "people meanwhile; if this persists give writd its own API key (limits are per key)"
        case .timedOut(let milliseconds):
            "PagerDuty did not answer within \(milliseconds) ms: check the network path to pagerduty.api_url "
                + "(proxy, firewall) or raise pagerduty.timeout in /etc/writ/integrations.yaml"
        case .http(let status, let message):
            "PagerDuty answered HTTP \(status) (\"\(message)\"): \(Self.advice(status: status))"
        case .transport(let what):
            "PagerDuty request failed: \(what)"
        case .malformed(let what):
            "PagerDuty's answer is not what its REST API v2 documents (\(what)): check that pagerduty.api_url "
                + "is https://api.pagerduty.com (or a proxy that passes it through unchanged)"
        case .noSuchUser(let email):
            "no PagerDuty user has the e-mail \"\(LogText.escape(email, limit: 100))\": the requester's PagerDuty "
                + "e-mail must equal their writ e-mail (case aside)"
        }
    }

    private static func advice(status: Int) -> String {
        switch status {
        case 404:
            "check pagerduty.api_url in /etc/writ/integrations.yaml (normally https://api.pagerduty.com)"
        case 400, 402, 405...428, 430...499:
            "PagerDuty rejected writ's request; check the escalation policy and schedule IDs in the policy, "
                + "else report a writ bug with this message"
        case 500...599:
            "PagerDuty (or a proxy in front of it) is failing; see status.pagerduty.com, requests go to people "
                + "meanwhile"
        default:
            "unexpected answer; check pagerduty.api_url in /etc/writ/integrations.yaml"
        }
    }
}
