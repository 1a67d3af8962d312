import WritExpr
import WritIntegrations

/// The byte-level encodings the Web API client and the HTTP-mode receiver share: JSON text,
/// `application/x-www-form-urlencoded` both ways, and URL checks. No Foundation.
package enum SlackWireFormat {
    // MARK: - JSON

    /// `value` as compact JSON text, object keys sorted (so a recorded request is reproducible).
    /// A non-finite number, which JSON cannot express, is written as `null`.
    package static func json(_ value: JSONValue) -> String {
        var out = ""
        appendJSON(value, to: &out)
        return out
    }

    private static func appendJSON(_ value: JSONValue, to out: inout String) {
        switch value {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .number(let d): out += d.isFinite ? String(d) : "null"
        case .string(let s): appendJSONString(s, to: &out)
        case .array(let items):
            out += "["
            for (index, item) in items.enumerated() {
                if index > 0 { out += "," }
                appendJSON(item, to: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (index, key) in members.keys.sorted().enumerated() {
                if index > 0 { out += "," }
                appendJSONString(key, to: &out)
                out += ":"
                if let member = members[key] { appendJSON(member, to: &out) }
            }
            out += "}"
        }
    }

    private static func appendJSONString(_ text: String, to out: inout String) {
        let hex = Array("0123456789abcdef".unicodeScalars)
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x22: out += "\\\""
            case 0x5C: out += "\\\\"
            case 0x0A: out += "\\n"
            case 0x0D: out += "\\r"
            case 0x09: out += "\\t"
            case 0..<0x20, 0x2028, 0x2029:
                // U+2028/2029 are valid in JSON but not in JavaScript string literals; escaping
                // them costs nothing and keeps the text safe wherever it is pasted.
                let v = Int(scalar.value)
                out += "\\u"
                for shift in [12, 8, 4, 0] { out.unicodeScalars.append(hex[(v >> shift) & 0xF]) }
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }

    // MARK: - Forms

    /// `arguments` as an `application/x-www-form-urlencoded` body, names sorted: strings as they
    /// are, numbers and booleans as their JSON text, arrays and objects (`blocks`, `view`) as JSON
    /// strings, `null` left out.
    static func form(_ arguments: [String: JSONValue]) -> String {
        var fields: [String] = []
        for name in arguments.keys.sorted() {
            guard let value = arguments[name] else { continue }
            let text: String
            switch value {
            case .null: continue
            case .string(let s): text = s
            default: text = json(value)
            }
            fields.append(percentEncode(name) + "=" + percentEncode(text))
        }
        return fields.joined(separator: "&")
    }

    /// Percent-encoding of every byte outside RFC 3986's unreserved characters (so `+` in an
    /// e-mail stays a plus, and a space is `%20`).
    static func percentEncode(_ text: String) -> String { IntegrationHTTP.percentEncode(text) }

    /// Decodes an `application/x-www-form-urlencoded` body (`+` is a space, `%XX` a byte).
    ///
    /// nil for a malformed escape, invalid UTF-8 or a field named twice: a request whose meaning
    /// depends on which duplicate a parser keeps is refused rather than guessed at.
    package static func parseForm(_ body: [UInt8]) -> [String: String]? {
        var fields: [String: String] = [:]
        for pair in body.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            guard let first = parts.first, let name = percentDecode(first) else { return nil }
            let value = parts.count > 1 ? percentDecode(parts[1]) : ""
            guard let value, fields[name] == nil else { return nil }
            fields[name] = value
        }
        return fields
    }

    private static func percentDecode(_ bytes: ArraySlice<UInt8>) -> String? {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var iterator = bytes.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "+"):
                out.append(0x20)
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                    return nil
                }
                out.append(high << 4 | low)
            default:
                out.append(byte)
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: byte - 0x30
        case 0x41...0x46: byte - 0x41 + 10
        case 0x61...0x66: byte - 0x61 + 10
        default: nil
        }
    }

    // MARK: - URLs

    /// A URL that passed `checkURL`.
    struct CheckedURL: Equatable {
        /// The URL as given.
        var url: String
        /// `host` or `host:port` (IPv6 in brackets), for messages.
        var authority: String
        var isHTTPS: Bool
    }

    /// `text` checked before anything is sent to it: `https://` (or plain `http://` to a loopback
    /// address only, since a token or an interaction's answer would otherwise cross the network
    /// in clear), a host, no user information, no fragment, printable ASCII. `what` names the
    /// setting in the error ("the Slack API URL"); `reveal` false keeps the URL itself out of it
    /// (a `response_url` is a credential).
    static func checkURL(
        _ text: String,
        what: String,
        allowQuery: Bool,
        reveal: Bool = true
    ) -> Result<CheckedURL, SlackError> {
        func refuse(_ why: String) -> Result<CheckedURL, SlackError> {
            .failure(.configuration("not sent: \(what) \(why)"))
        }
        guard text.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
            return refuse("holds spaces, control or non-ASCII characters")
        }
        let shown = reveal ? "\"" + String(text.prefix(100)) + "\"" : "the URL"
        let lower = text.lowercased()
        let isHTTPS = lower.hasPrefix("https://")
        guard isHTTPS || lower.hasPrefix("http://") else { return refuse("\(shown) does not start with https://") }
        guard !text.contains("#"), allowQuery || !text.contains("?") else {
            return refuse("\(shown) has a query or fragment")
        }
        let rest = text.dropFirst(isHTTPS ? 8 : 7)
        let authority = String(rest.prefix { $0 != "/" && $0 != "?" })
        guard !authority.isEmpty else { return refuse("\(shown) has no host") }
        guard !authority.contains("@") else { return refuse("holds user information") }
        if !isHTTPS && !isLoopback(host(of: authority)) {
            return refuse(
                "uses plain http to \(printable(authority, limit: 100)), which is not this host: use https://"
            )
        }
        return .success(CheckedURL(url: text, authority: authority, isHTTPS: isHTTPS))
    }

    static func host(of authority: String) -> String { IntegrationHTTP.host(of: authority) }

    static func isLoopback(_ host: String) -> Bool { IntegrationHTTP.isLoopback(host) }

    /// `text` for a log line or an error: control characters and quotes escaped, at most `limit`
    /// characters.
    static func printable(_ text: String, limit: Int = 160) -> String {
        var out = ""
        for (count, scalar) in text.unicodeScalars.enumerated() {
            if count >= limit {
                out += "…"
                break
            }
            switch scalar.value {
            case 0x22: out += "\\\""
            case 0x5C: out += "\\\\"
            case 0..<0x20, 0x7F, 0x80..<0xA0, 0x2028, 0x2029, 0x202A...0x202E, 0x2066...0x2069:
                out += "\\u{" + String(scalar.value, radix: 16) + "}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
