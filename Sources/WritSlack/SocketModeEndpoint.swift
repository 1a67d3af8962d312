import WritIntegrations

/// Where a Socket Mode WebSocket goes, parsed from the URL `apps.connections.open` returned
/// (`wss://wss-primary.slack.com/link/?ticket=…&app_id=…`).
struct SocketModeEndpoint: Sendable, Equatable {
    /// `wss` (TLS) or `ws`.
    var secure: Bool
    /// The host without IPv6 brackets, lower-cased.
    var host: String
    var port: Int
    /// Path and query, as sent in the request line.
    var target: String
    /// The `Host` header's value.
    var hostHeader: String

    /// For log lines: scheme, host, port and path, without the query. The query carries the
    /// connection ticket, which is single-use and short-lived but still a credential until used.
    var logDescription: String {
        let path = target.prefix { $0 != "?" }
        return "\(secure ? "wss" : "ws")://\(hostHeader)\(path)"
    }

    /// Parses and vets `url`. `ws://` is refused unless the host is loopback (a test fake): Slack
    /// traffic carries users' requests and approvals, and must not cross a network in clear text.
    init(parsing url: String) throws(SlackError) {
        // The URL goes into an HTTP request line: a space, CR or LF in it would let whoever
        // controls the answer of apps.connections.open inject headers.
        guard !url.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F }) else {
            throw .configuration("the Socket Mode URL from apps.connections.open contains spaces or control characters")
        }
        guard let schemeEnd = url.firstRange(of: "://") else {
            throw .configuration("the Socket Mode URL from apps.connections.open is not a ws:// or wss:// URL")
        }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "wss" || scheme == "ws" else {
            throw .configuration("the Socket Mode URL from apps.connections.open is \(scheme)://, not wss://")
        }
        secure = scheme == "wss"
        var rest = url[schemeEnd.upperBound...]
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        let pathAndQuery = rest[authorityEnd...]
        target = pathAndQuery.isEmpty ? "/" : (pathAndQuery.first == "?" ? "/" + pathAndQuery : String(pathAndQuery))
        guard !authority.contains("@") else {
            throw .configuration("the Socket Mode URL from apps.connections.open carries user information")
        }

        var hostPart: Substring
        var portPart: Substring?
        if authority.first == "[" {
            guard let close = authority.firstIndex(of: "]") else {
                throw .configuration("the Socket Mode URL from apps.connections.open has a malformed IPv6 host")
            }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.first == ":" else {
                    throw .configuration("the Socket Mode URL from apps.connections.open has a malformed IPv6 host")
                }
                portPart = after.dropFirst()
            }
        } else if let colon = authority.lastIndex(of: ":") {
            hostPart = authority[..<colon]
            portPart = authority[authority.index(after: colon)...]
        } else {
            hostPart = authority
        }
        host = hostPart.lowercased()
        guard !host.isEmpty else {
            throw .configuration("the Socket Mode URL from apps.connections.open has no host")
        }
        if let portPart {
            guard let number = Int(portPart), (1...65535).contains(number) else {
                throw .configuration("the Socket Mode URL from apps.connections.open has an invalid port")
            }
            port = number
        } else {
            port = secure ? 443 : 80
        }
        let bracketed = host.contains(":") ? "[\(host)]" : host
        hostHeader = port == (secure ? 443 : 80) ? bracketed : "\(bracketed):\(port)"

        if !secure && !Self.isLoopback(host) {
            throw .configuration(
                "refusing the unencrypted Socket Mode URL ws://\(hostHeader): only wss:// is allowed, "
                    + "ws:// only to 127.0.0.1, ::1 or localhost"
            )
        }
        if secure && Self.isIPAddress(host) {
            // Certificates are checked against the host name; an address would leave the name unchecked.
            throw .configuration(
                "refusing the Socket Mode URL wss://\(hostHeader): a host name is needed, not an address"
            )
        }
    }

    static func isLoopback(_ host: String) -> Bool { IntegrationHTTP.isLoopback(host) }

    /// True for a dotted IPv4 address or anything with a colon (IPv6).
    static func isIPAddress(_ host: String) -> Bool {
        if host.contains(":") { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isASCII) && UInt8($0) != nil }
    }
}
