import Crypto
import WritCore

/// Slack's request signing (v0), for HTTP mode: every slash command and interaction Slack posts
/// carries `X-Slack-Signature: v0=<hex HMAC-SHA256(signing secret, "v0:<timestamp>:<raw body>")>`
/// and `X-Slack-Request-Timestamp`. A request is accepted only with a matching signature over the
/// raw body as received, and a timestamp within five minutes (replays are refused).
public enum SlackSignature {
    /// Why a request was refused; one line for the log (the secret never appears).
    public enum Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        case missingHeaders
        case malformedTimestamp
        /// `age` in seconds (negative: from the future).
        case stale(age: Int64)
        case malformedSignature
        case mismatch

        public var description: String {
            switch self {
            case .missingHeaders: "no X-Slack-Signature or X-Slack-Request-Timestamp header: not a request from Slack"
            case .malformedTimestamp: "X-Slack-Request-Timestamp is not a number of seconds"
            case .stale(let age):
                "the request was signed \(age) s \(age < 0 ? "in the future" : "ago"), outside Slack's 5-minute window: a replay, or a clock that is off (check NTP)"
            case .malformedSignature: "X-Slack-Signature is not v0=<64 hex digits>"
            case .mismatch:
                "the signature does not match the body: the signing secret is wrong, or the body was changed"
            }
        }
    }

    /// How far a request's timestamp may be from now, in seconds (Slack's own recommendation).
    public static let window: Int64 = 300

    /// `v0=<hex>` for `body` sent at `timestamp`.
    public static func sign(secret: String, timestamp: String, body: [UInt8]) -> String {
        var message = Array("v0:\(timestamp):".utf8)
        message += body
        let mac = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: Array(secret.utf8)))
        return "v0=" + Hex.lowercase(mac)
    }

    /// Checks a request: the timestamp within `window` of `now`, then the signature, compared in
    /// constant time.
    public static func verify(
        secret: String,
        signature: String?,
        timestamp: String?,
        body: [UInt8],
        now: Int64
    ) -> Result<Void, Refusal> {
        guard let signature, let timestamp else { return .failure(.missingHeaders) }
        // Seconds since 1970 as Slack sends them: 1 to 12 digits, so nothing below can overflow
        // (a hostile "-9223372036854775808" would otherwise trap in the subtraction).
        guard (1...12).contains(timestamp.utf8.count), timestamp.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
            let sent = Int64(timestamp)
        else { return .failure(.malformedTimestamp) }
        let age = now - sent
        guard age <= window && age >= -window else { return .failure(.stale(age: age)) }
        let given = Array(signature.utf8)
        guard given.count == 67, signature.hasPrefix("v0="),
            given.dropFirst(3).allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) })
        else { return .failure(.malformedSignature) }
        let expected = Array(sign(secret: secret, timestamp: timestamp, body: body).utf8)
        // Constant time: every byte is compared whatever the first difference.
        var difference: UInt8 = 0
        for (a, b) in zip(given, expected) { difference |= a ^ b }
        return difference == 0 ? .success(()) : .failure(.mismatch)
    }
}
