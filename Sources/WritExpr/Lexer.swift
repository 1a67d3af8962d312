/// One token of a condition.
struct Token: Sendable {
    enum Kind: Sendable, Equatable {
        case identifier(String)
        /// The magnitude of a decimal literal (at most 2^63: the parser folds a leading `-`).
        case int(UInt64)
        /// The decoded text, and the source offset of each of its scalars plus one for the
        /// closing quote (for errors inside a regular expression literal).
        case string(String, offsets: [Int])
        case leftParen
        case rightParen
        case leftBracket
        case rightBracket
        case leftBrace
        case rightBrace
        case dot
        case comma
        case colon
        case question
        case plus
        case minus
        case star
        case slash
        case percent
        case bang
        case less
        case lessEqual
        case greater
        case greaterEqual
        case equalEqual
        case notEqual
        case andAnd
        case orOr
        case end
    }

    var kind: Kind
    /// Unicode scalars from the start of the source.
    var offset: Int

    /// The token as messages quote it.
    var spelling: String {
        switch kind {
        case .identifier(let name): "'\(name)'"
        case .int(let value): "'\(value)'"
        case .string: "a string"
        case .leftParen: "'('"
        case .rightParen: "')'"
        case .leftBracket: "'['"
        case .rightBracket: "']'"
        case .leftBrace: "'{'"
        case .rightBrace: "'}'"
        case .dot: "'.'"
        case .comma: "','"
        case .colon: "':'"
        case .question: "'?'"
        case .plus: "'+'"
        case .minus: "'-'"
        case .star: "'*'"
        case .slash: "'/'"
        case .percent: "'%'"
        case .bang: "'!'"
        case .less: "'<'"
        case .lessEqual: "'<='"
        case .greater: "'>'"
        case .greaterEqual: "'>='"
        case .equalEqual: "'=='"
        case .notEqual: "'!='"
        case .andAnd: "'&&'"
        case .orOr: "'||'"
        case .end: "the end of the condition"
        }
    }
}

/// Splits a condition into tokens on demand, so that the first error in the source is the one
/// reported (a parse error before a bad literal further on wins).
struct Lexer {
    private let scalars: [Unicode.Scalar]
    private let limits: Limits
    private var position = 0

    init(_ scalars: [Unicode.Scalar], limits: Limits) {
        self.scalars = scalars
        self.limits = limits
    }

    private func peek(_ ahead: Int = 0) -> Unicode.Scalar? {
        position + ahead < scalars.count ? scalars[position + ahead] : nil
    }

    /// The next token; `.end` once the source is used up.
    mutating func next() throws(ExprError) -> Token {
        skipSpaceAndComments()
        let start = position
        guard let c = peek() else { return Token(kind: .end, offset: start) }
        if Self.isIdentifierStart(c) { return try identifier() }
        if Self.isDigit(c) { return try number() }
        if c == "\"" || c == "'" { return try string() }
        position += 1
        let kind: Token.Kind
        switch c {
        case "(": kind = .leftParen
        case ")": kind = .rightParen
        case "[": kind = .leftBracket
        case "]": kind = .rightBracket
        case "{": kind = .leftBrace
        case "}": kind = .rightBrace
        case ".":
            if let d = peek(), Self.isDigit(d) {
                throw ExprError(
                    "numbers with a fraction are not supported: conditions use whole numbers (int)",
                    at: start
                )
            }
            kind = .dot
        case ",": kind = .comma
        case ":": kind = .colon
        case "?": kind = .question
        case "+": kind = .plus
        case "-": kind = .minus
        case "*": kind = .star
        case "/": kind = .slash
        case "%": kind = .percent
        case "!": kind = pair("=", .notEqual, else: .bang)
        case "<": kind = pair("=", .lessEqual, else: .less)
        case ">": kind = pair("=", .greaterEqual, else: .greater)
        case "=":
            guard peek() == "=" else { throw ExprError("'=' is not an operator: write == to compare", at: start) }
            position += 1
            kind = .equalEqual
        case "&":
            guard peek() == "&" else { throw ExprError("'&' is not an operator: write && for 'and'", at: start) }
            position += 1
            kind = .andAnd
        case "|":
            guard peek() == "|" else { throw ExprError("'|' is not an operator: write || for 'or'", at: start) }
            position += 1
            kind = .orOr
        default:
            throw ExprError("unexpected character '\(Self.printable(c))'", at: start)
        }
        return Token(kind: kind, offset: start)
    }

    private mutating func pair(_ second: Unicode.Scalar, _ both: Token.Kind, else single: Token.Kind) -> Token.Kind {
        guard peek() == second else { return single }
        position += 1
        return both
    }

    private mutating func skipSpaceAndComments() {
        while let c = peek() {
            if c == " " || c == "\t" || c == "\n" || c == "\r" || c == "\u{0C}" {
                position += 1
            } else if c == "/" && peek(1) == "/" {
                while let d = peek(), d != "\n" { position += 1 }
            } else {
                return
            }
        }
    }

    private mutating func identifier() throws(ExprError) -> Token {
        let start = position
        var name = String.UnicodeScalarView()
        while let c = peek(), Self.isIdentifierStart(c) || Self.isDigit(c) {
            name.append(c)
            position += 1
        }
        let text = String(name)
        if let q = peek(), q == "\"" || q == "'" {
            switch text.lowercased() {
            case "r":
                throw ExprError(
                    "raw strings (r\"…\") are not supported: write an ordinary string and double each backslash",
                    at: start
                )
            case "b", "rb", "br":
                throw ExprError("byte strings (b\"…\") are not supported: write an ordinary string", at: start)
            default: break
            }
        }
        return Token(kind: .identifier(text), offset: start)
    }

    private mutating func number() throws(ExprError) -> Token {
        let start = position
        if peek() == "0", let x = peek(1), x == "x" || x == "X" {
            throw ExprError("hexadecimal numbers are not supported: write the decimal value", at: start)
        }
        if peek() == "0", let d = peek(1), Self.isDigit(d) {
            throw ExprError("numbers must not start with 0: write the number without leading zeros", at: start)
        }
        var value: UInt64 = 0
        var overflow = false
        while let c = peek(), Self.isDigit(c) {
            if !overflow {
                let (m, o1) = value.multipliedReportingOverflow(by: 10)
                let (s, o2) = m.addingReportingOverflow(UInt64(c.value - 48))
                if o1 || o2 || s > 1 << 63 { overflow = true } else { value = s }
            }
            position += 1
        }
        if let c = peek() {
            if c == "." && peek(1).map(Self.isDigit) == true || c == "e" || c == "E" {
                throw ExprError(
                    "numbers with a fraction or exponent are not supported: conditions use whole numbers (int)",
                    at: start
                )
            }
            if c == "u" || c == "U" {
                throw ExprError("unsigned numbers (1u) are not supported: write the number without 'u'", at: start)
            }
            if Self.isIdentifierStart(c) {
                throw ExprError(
                    "unexpected '\(c)' after a number: put an operator or a space between them",
                    at: position
                )
            }
        }
        if overflow {
            throw ExprError(Self.outOfRange, at: start)
        }
        return Token(kind: .int(value), offset: start)
    }

    static let outOfRange =
        "the number is out of the int range (-9223372036854775808 to 9223372036854775807)"

    private mutating func string() throws(ExprError) -> Token {
        let start = position
        let quote = scalars[position]
        if peek(1) == quote && peek(2) == quote {
            throw ExprError(
                "triple-quoted strings are not supported: write one string with \\n for line breaks",
                at: start
            )
        }
        position += 1
        var text = String.UnicodeScalarView()
        var offsets: [Int] = []
        var bytes = 0
        while true {
            guard let c = peek(), c != "\n", c != "\r" else {
                throw ExprError(
                    "this string is not closed: end it with \(quote) on the same line",
                    at: start
                )
            }
            let at = position
            if c == quote {
                position += 1
                break
            }
            var decoded = c
            position += 1
            if c == "\\" {
                decoded = try escape(at: at)
            }
            bytes += UTF8.width(decoded)
            guard bytes <= limits.maxStringLiteralBytes else {
                throw ExprError(
                    "this string is longer than \(limits.maxStringLiteralBytes) bytes: shorten it",
                    at: start
                )
            }
            text.append(decoded)
            offsets.append(at)
        }
        offsets.append(position - 1)
        return Token(kind: .string(String(text), offsets: offsets), offset: start)
    }

    /// Decodes the escape whose backslash is at `at` (already consumed).
    private mutating func escape(at: Int) throws(ExprError) -> Unicode.Scalar {
        guard let e = peek() else {
            throw ExprError("the string ends in a lone backslash: write \\\\ for a backslash", at: at)
        }
        position += 1
        switch e {
        case "\\": return "\\"
        case "\"": return "\""
        case "'": return "'"
        case "n": return "\n"
        case "t": return "\t"
        case "r": return "\r"
        case "u":
            var v: UInt32 = 0
            for _ in 0..<4 {
                guard let h = peek(), let d = Self.hexValue(h) else {
                    throw ExprError("\\u needs exactly four hex digits, e.g. \\u00e9", at: at)
                }
                v = v * 16 + d
                position += 1
            }
            guard let s = Unicode.Scalar(v) else {
                throw ExprError(
                    "\\u\(Self.hex4(v)) is a surrogate, not a character: write the character itself",
                    at: at
                )
            }
            return s
        default:
            throw ExprError(
                "unknown escape '\\\(Self.printable(e))': use \\\\ \\\" \\' \\n \\t \\r or \\uXXXX "
                    + "(in a regular expression, double the backslash: \"\\\\d\")",
                at: at
            )
        }
    }

    static func isIdentifierStart(_ c: Unicode.Scalar) -> Bool {
        (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c == "_"
    }

    static func isDigit(_ c: Unicode.Scalar) -> Bool { c >= "0" && c <= "9" }

    static func hexValue(_ c: Unicode.Scalar) -> UInt32? {
        switch c {
        case "0"..."9": c.value - 48
        case "a"..."f": c.value - 87
        case "A"..."F": c.value - 55
        default: nil
        }
    }

    static func hex4(_ v: UInt32) -> String {
        let digits = String(v, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    /// A scalar as messages show it: itself when printable ASCII, else `U+XXXX`.
    static func printable(_ c: Unicode.Scalar) -> String {
        c.value >= 0x20 && c.value < 0x7F ? String(c) : "U+\(hex4(c.value))"
    }
}
