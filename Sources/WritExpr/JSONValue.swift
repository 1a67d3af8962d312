import WritCore

/// Any JSON value: the `context` of a hook's input (integration facts such as `on_call`), and what
/// a hook's output is parsed into before it is checked.
///
/// Numbers that are integral and fit in 64 bits are `.int` (so `1800`, `1.0` and `1e3` are all
/// ints); others are `.number`.
public indirect enum JSONValue: Codable, Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case int(Int64)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Decodes any JSON value (objects and arrays recursively).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .int(value)
        } else if let value = try? container.decode(Double.self) {
            self = Self.integral(value).map { .int($0) } ?? .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    /// Encodes the value as the JSON it stands for.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    /// `value` as an Int64 when it is integral and in range.
    static func integral(_ value: Double) -> Int64? {
        guard value.isFinite, value.rounded(.towardZero) == value,
            value >= -9_223_372_036_854_775_808.0, value < 9_223_372_036_854_775_808.0
        else { return nil }
        return Int64(value)
    }

    /// What kind of value this is, for error messages ("a string", "an array").
    public var kindDescription: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number with a fraction"
        case .int: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

// Not ExpressibleByDictionaryLiteral: its associated types `Key` and `Value` would shadow other
// modules' types named `Value` inside every extension of JSONValue. Use `.object([...])`.
extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral
{
    /// `nil` is JSON `null`.
    public init(nilLiteral: ()) { self = .null }
    /// `true` / `false`.
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    /// An integer literal is `.int`.
    public init(integerLiteral value: Int64) { self = .int(value) }
    /// A literal with a fraction is `.number` (`.int` when integral, as when decoded).
    public init(floatLiteral value: Double) { self = Self.integral(value).map { .int($0) } ?? .number(value) }
    /// A string literal.
    public init(stringLiteral value: String) { self = .string(value) }
    /// An array literal.
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
}

/// Why bytes are not exactly one JSON value: one line, for `HookFailure.garbage`.
/// Why bytes are not one JSON value.
public struct JSONSyntaxError: Error, Equatable {
    public var message: String
    public init(message: String) { self.message = message }
}

extension JSONValue {
    /// Parses exactly one JSON value (RFC 8259), surrounded by optional whitespace, strictly:
    /// invalid UTF-8, a byte order mark, duplicate keys, lone surrogates, nesting deeper than 64
    /// and anything after the value are errors. A hook's decision must not depend on which of two
    /// `"decision"` keys a parser happens to keep.
    public static func parse(_ bytes: [UInt8]) -> Result<JSONValue, JSONSyntaxError> {
        var parser = StrictJSONParser(bytes: bytes)
        do throws(JSONSyntaxError) {
            parser.skipWhitespace()
            if parser.atEnd { throw JSONSyntaxError(message: "no output; expected one JSON object") }
            let value = try parser.value(depth: 0)
            parser.skipWhitespace()
            if !parser.atEnd {
                throw JSONSyntaxError(
                    message: "more than one JSON value (\(parser.describeCurrent) at byte \(parser.index))"
                )
            }
            return .success(value)
        } catch {
            return .failure(error)
        }
    }
}

/// A recursive-descent parser over UTF-8 bytes; see `JSONValue.parse`.
private struct StrictJSONParser {
    let bytes: [UInt8]
    var index = 0
    static let maximumDepth = 64

    init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    var atEnd: Bool { index >= bytes.count }

    /// The byte at `index`, quoted for an error message.
    var describeCurrent: String {
        guard !atEnd else { return "end of output" }
        let byte = bytes[index]
        if byte >= 0x21 && byte < 0x7F { return "'\(String(UnicodeScalar(byte)))'" }
        return "byte 0x" + String(byte, radix: 16)
    }

    func unexpected(_ expected: String) -> JSONSyntaxError {
        JSONSyntaxError(message: "not JSON: \(describeCurrent) at byte \(index), expected \(expected)")
    }

    mutating func skipWhitespace() {
        while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
    }

    mutating func value(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        guard depth < Self.maximumDepth else {
            throw JSONSyntaxError(message: "JSON nested deeper than \(Self.maximumDepth) levels")
        }
        guard !atEnd else { throw unexpected("a value") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try object(depth: depth)
        case UInt8(ascii: "["): return try array(depth: depth)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "n"): return try literal("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: throw unexpected("a value")
        }
    }

    mutating func literal(_ word: String, _ value: JSONValue) throws(JSONSyntaxError) -> JSONValue {
        for byte in word.utf8 {
            guard !atEnd, bytes[index] == byte else { throw unexpected("'\(word)'") }
            index += 1
        }
        return value
    }

    mutating func object(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        index += 1
        var members: [String: JSONValue] = [:]
        skipWhitespace()
        if !atEnd, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard !atEnd, bytes[index] == UInt8(ascii: "\"") else { throw unexpected("a key in double quotes") }
            let key = try string()
            skipWhitespace()
            guard !atEnd, bytes[index] == UInt8(ascii: ":") else { throw unexpected("':'") }
            index += 1
            skipWhitespace()
            let member = try value(depth: depth + 1)
            if members.updateValue(member, forKey: key) != nil {
                throw JSONSyntaxError(message: "duplicate key \"\(LogText.escape(key, limit: 60))\" in an object")
            }
            skipWhitespace()
            guard !atEnd else { throw unexpected("',' or '}'") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            guard bytes[index] == UInt8(ascii: "}") else { throw unexpected("',' or '}'") }
            index += 1
            return .object(members)
        }
    }

    mutating func array(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        index += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if !atEnd, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try value(depth: depth + 1))
            skipWhitespace()
            guard !atEnd else { throw unexpected("',' or ']'") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            guard bytes[index] == UInt8(ascii: "]") else { throw unexpected("',' or ']'") }
            index += 1
            return .array(elements)
        }
    }

    mutating func string() throws(JSONSyntaxError) -> String {
        let start = index
        index += 1
        var raw: [UInt8] = []
        while true {
            guard !atEnd else {
                throw JSONSyntaxError(message: "not JSON: the string at byte \(start) is not closed")
            }
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                guard let text = String(validating: raw, as: UTF8.self) else {
                    throw JSONSyntaxError(message: "not JSON: the string at byte \(start) is not valid UTF-8")
                }
                return text
            case UInt8(ascii: "\\"):
                index += 1
                guard !atEnd else { throw unexpected("an escape") }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): raw.append(escape)
                case UInt8(ascii: "b"): raw.append(0x08)
                case UInt8(ascii: "f"): raw.append(0x0C)
                case UInt8(ascii: "n"): raw.append(0x0A)
                case UInt8(ascii: "r"): raw.append(0x0D)
                case UInt8(ascii: "t"): raw.append(0x09)
                case UInt8(ascii: "u"): raw.append(contentsOf: try unicodeEscape())
                default:
                    index -= 1
                    throw unexpected("an escape (\\\", \\\\, \\/, \\b, \\f, \\n, \\r, \\t or \\u)")
                }
            case 0..<0x20:
                throw JSONSyntaxError(message: "not JSON: a control character inside the string at byte \(start)")
            default:
                raw.append(byte)
                index += 1
            }
        }
    }

    /// After `\u`: four hex digits, a surrogate pair for characters beyond the BMP; UTF-8 bytes.
    mutating func unicodeEscape() throws(JSONSyntaxError) -> [UInt8] {
        let first = try hex4()
        var scalarValue = first
        if (0xD800..<0xDC00).contains(first) {
            guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u")
            else { throw JSONSyntaxError(message: "not JSON: a lone surrogate \\u escape before byte \(index)") }
            index += 2
            let second = try hex4()
            guard (0xDC00..<0xE000).contains(second) else {
                throw JSONSyntaxError(message: "not JSON: a lone surrogate \\u escape before byte \(index)")
            }
            scalarValue = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
        } else if (0xDC00..<0xE000).contains(first) {
            throw JSONSyntaxError(message: "not JSON: a lone surrogate \\u escape before byte \(index)")
        }
        guard let scalar = Unicode.Scalar(scalarValue) else { throw unexpected("a Unicode scalar") }
        return Array(String(Character(scalar)).utf8)
    }

    mutating func hex4() throws(JSONSyntaxError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard !atEnd else { throw unexpected("a hex digit") }
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw unexpected("a hex digit")
            }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }

    mutating func number() throws(JSONSyntaxError) -> JSONValue {
        let start = index
        var integral = true
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard !atEnd, isDigit(bytes[index]) else { throw unexpected("a digit") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else {
            while !atEnd, isDigit(bytes[index]) { index += 1 }
        }
        if !atEnd, bytes[index] == UInt8(ascii: ".") {
            integral = false
            index += 1
            guard !atEnd, isDigit(bytes[index]) else { throw unexpected("a digit after '.'") }
            while !atEnd, isDigit(bytes[index]) { index += 1 }
        }
        if !atEnd, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            integral = false
            index += 1
            if !atEnd, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard !atEnd, isDigit(bytes[index]) else { throw unexpected("a digit in the exponent") }
            while !atEnd, isDigit(bytes[index]) { index += 1 }
        }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        if integral, let value = Int64(text) { return .int(value) }
        guard let value = Double(text), value.isFinite else {
            throw JSONSyntaxError(message: "not JSON: the number at byte \(start) is out of range")
        }
        return JSONValue.integral(value).map { .int($0) } ?? .number(value)
    }

    func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
}
