import AsyncHTTPClient
import NIOCore

/// What the HTTPS clients of the integrations (PagerDuty here, Slack in WritSlack) share: one
/// deadline per call, the rule that plain http is for loopback only, and percent-encoding.
package enum IntegrationHTTP {
    /// The HTTP client of every integration: AsyncHTTPClient's defaults except that it never
    /// follows a redirect. Only the configured origin may answer (a 302 elsewhere would hand the
    /// decision, "who is on call", to whoever the redirect names); a 3xx is an error that names
    /// the URL to fix. Lives for the process, like `HTTPClient.shared`.
    package static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    /// How long after the deadline the backstop timer fires: AsyncHTTPClient enforces the deadline
    /// itself until a response's head (and then reports connection errors precisely); the timer
    /// catches a body that stalls.
    package static let backstopGraceMilliseconds = 250

    /// Runs `operation` with a deadline `milliseconds` from now; a stall past it (plus the grace)
    /// ends as `timedOut`, a cancellation as `cancelled`.
    package static func run<T: Sendable, E: Error>(
        milliseconds: Int,
        timedOut: E,
        cancelled: E,
        _ operation: @escaping @Sendable (NIODeadline) async throws(E) -> T
    ) async -> Result<T, E> {
        let deadline = NIODeadline.now() + .milliseconds(Int64(milliseconds))
        return await withTaskGroup(of: Result<T, E>?.self) { group in
            group.addTask {
                do throws(E) {
                    return .success(try await operation(deadline))
                } catch {
                    return .failure(error)
                }
            }
            group.addTask {
                let wait = UInt64(milliseconds + backstopGraceMilliseconds) * 1_000_000
                try? await Task.sleep(nanoseconds: wait)
                return Task.isCancelled ? nil : .failure(timedOut)
            }
            var first: Result<T, E> = .failure(cancelled)
            for await result in group {
                guard let result else { continue }
                first = result
                group.cancelAll()
                break
            }
            return first
        }
    }

    /// The host part of an authority (`[::1]:80` → `::1`, `h:443` → `h`).
    package static func host(of authority: String) -> String {
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            return String(authority[authority.index(after: authority.startIndex)..<close])
        }
        return String(authority.prefix { $0 != ":" })
    }

    /// Whether `host` is `localhost`, an address in 127.0.0.0/8 or `::1`.
    package static func isLoopback(_ host: String) -> Bool {
        let lower = host.lowercased()
        if lower == "localhost" || lower == "::1" { return true }
        let parts = lower.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }

    /// Percent-encoding of every byte outside RFC 3986's unreserved characters (so `+` in an
    /// e-mail stays a plus, and a space is `%20`).
    package static func percentEncode(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x2D, 0x2E, 0x5F, 0x7E:
                bytes.append(byte)
            default:
                bytes += [0x25, hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
