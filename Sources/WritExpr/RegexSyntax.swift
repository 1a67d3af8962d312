/// A parsed regular expression (the RE2 subset `LinearRegex` accepts).
indirect enum RegexNode: Sendable {
    case empty
    /// One scalar; `fold`: also its other cases (`(?i)`).
    case scalar(UInt32, fold: Bool)
    /// `.`: any scalar but a newline.
    case any
    case set(CharSet)
    case assertion(RegexAssertion)
    case concat([RegexNode])
    case alternation([RegexNode])
    /// `max == nil`: no upper bound.
    case repeated(RegexNode, min: Int, max: Int?)
}

/// Zero-width conditions.
enum RegexAssertion: Sendable {
    /// `^` and `\A`.
    case beginText
    /// `$` and `\z`.
    case endText
    /// `\b`.
    case wordBoundary
    /// `\B`.
    case notWordBoundary
}

/// A character class: sorted, non-overlapping ranges of scalar values.
struct CharSet: Sendable {
    var ranges: [ClosedRange<UInt32>]
    var negated = false
    /// `(?i)`: a scalar also matches when one of its other cases is in the ranges.
    var fold = false

    init(_ ranges: [ClosedRange<UInt32>], negated: Bool = false, fold: Bool = false) {
        self.ranges = Self.normalized(ranges)
        self.negated = negated
        self.fold = fold
    }

    static func normalized(_ ranges: [ClosedRange<UInt32>]) -> [ClosedRange<UInt32>] {
        let sorted = ranges.sorted { $0.lowerBound < $1.lowerBound }
        var result: [ClosedRange<UInt32>] = []
        for r in sorted {
            if let last = result.last, r.lowerBound <= last.upperBound &+ 1 {
                result[result.count - 1] = last.lowerBound...max(last.upperBound, r.upperBound)
            } else {
                result.append(r)
            }
        }
        return result
    }

    /// Every scalar value not in `ranges` (which must be normalized).
    static func complement(_ ranges: [ClosedRange<UInt32>]) -> [ClosedRange<UInt32>] {
        var result: [ClosedRange<UInt32>] = []
        var next: UInt32 = 0
        for r in ranges {
            if r.lowerBound > next { result.append(next...(r.lowerBound - 1)) }
            next = r.upperBound &+ 1
        }
        if next <= 0x10FFFF { result.append(next...0x10FFFF) }
        return result
    }

    private func inRanges(_ v: UInt32) -> Bool {
        var low = 0
        var high = ranges.count - 1
        while low <= high {
            let mid = (low + high) / 2
            let r = ranges[mid]
            if v < r.lowerBound {
                high = mid - 1
            } else if v > r.upperBound {
                low = mid + 1
            } else {
                return true
            }
        }
        return false
    }

    func contains(_ v: UInt32) -> Bool {
        var found = inRanges(v)
        if !found && fold {
            for other in caseVariants(v) where other != v && inRanges(other) {
                found = true
                break
            }
        }
        return found != negated
    }

    static let digit: [ClosedRange<UInt32>] = [48...57]
    static let word: [ClosedRange<UInt32>] = [48...57, 65...90, 95...95, 97...122]
    static let space: [ClosedRange<UInt32>] = [9...10, 12...13, 32...32]

    /// `[:name:]` classes (ASCII, as RE2).
    static let posix: [String: [ClosedRange<UInt32>]] = [
        "alnum": [48...57, 65...90, 97...122],
        "alpha": [65...90, 97...122],
        "ascii": [0...127],
        "blank": [9...9, 32...32],
        "cntrl": [0...31, 127...127],
        "digit": [48...57],
        "graph": [33...126],
        "lower": [97...122],
        "print": [32...126],
        "punct": [33...47, 58...64, 91...96, 123...126],
        "space": [9...13, 32...32],
        "upper": [65...90],
        "word": word,
        "xdigit": [48...57, 65...70, 97...102],
    ]
}

/// The scalar value and its simple lower- and uppercase mappings (one scalar each), without
/// duplicates.
func caseVariants(_ v: UInt32) -> [UInt32] {
    if v < 128 {
        if (v >= 65 && v <= 90) || (v >= 97 && v <= 122) { return [v, v ^ 0x20] }
        return [v]
    }
    guard let scalar = Unicode.Scalar(v) else { return [v] }
    var result = [v]
    for mapping in [scalar.properties.lowercaseMapping, scalar.properties.uppercaseMapping] {
        let scalars = mapping.unicodeScalars
        if scalars.count == 1, let other = scalars.first?.value, !result.contains(other) {
            result.append(other)
        }
    }
    return result
}

/// Parses the RE2 subset into a `RegexNode`; offsets in errors are scalars into the pattern.
struct RegexParser {
    private let pattern: [Unicode.Scalar]
    private let maxDepth: Int
    private var position = 0
    private var depth = 0
    private var foldCase = false

    init(_ pattern: [Unicode.Scalar], maxDepth: Int) {
        self.pattern = pattern
        self.maxDepth = maxDepth
    }

    /// Parses the whole pattern.
    mutating func parse() throws(ExprError) -> RegexNode {
        let node = try alternation()
        if position < pattern.count {
            // Only an unmatched ')' stops `alternation` early.
            throw ExprError("unmatched ')': remove it or write \\) for a literal parenthesis", at: position)
        }
        return node
    }

    private func peek(_ ahead: Int = 0) -> Unicode.Scalar? {
        position + ahead < pattern.count ? pattern[position + ahead] : nil
    }

    private mutating func alternation() throws(ExprError) -> RegexNode {
        var branches = [try concatenation()]
        while peek() == "|" {
            position += 1
            branches.append(try concatenation())
        }
        return branches.count == 1 ? branches[0] : .alternation(branches)
    }

    private mutating func concatenation() throws(ExprError) -> RegexNode {
        var items: [RegexNode] = []
        while let c = peek(), c != "|", c != ")" {
            guard var atom = try parseAtom() else { continue }
            var repeated = false
            var quantifierStart = position
            while let q = peek(), let bounds = try quantifier(q) {
                if repeated {
                    throw ExprError(
                        "a repeat cannot follow a repeat directly: group the first one, e.g. (?:a+)*",
                        at: quantifierStart
                    )
                }
                if case .assertion = atom {
                    throw ExprError(
                        "'\(q)' must follow a character, class or group, not an anchor: write \\\(q) for a literal",
                        at: quantifierStart
                    )
                }
                // Lazy (`*?`): only whether there is a match matters, so it is the same.
                if peek() == "?" { position += 1 }
                atom = .repeated(atom, min: bounds.min, max: bounds.max)
                repeated = true
                quantifierStart = position
            }
            items.append(atom)
        }
        switch items.count {
        case 0: return .empty
        case 1: return items[0]
        default: return .concat(items)
        }
    }

    /// Consumes a quantifier starting with `q`, if there is one. A `{` that does not start
    /// `{n}`, `{n,}` or `{n,m}` is a literal, as in RE2.
    private mutating func quantifier(_ q: Unicode.Scalar) throws(ExprError) -> (min: Int, max: Int?)? {
        switch q {
        case "*":
            position += 1
            return (0, nil)
        case "+":
            position += 1
            return (1, nil)
        case "?":
            position += 1
            return (0, 1)
        case "{":
            let start = position
            var p = position + 1
            func number(_ p: inout Int) -> Int? {
                var value = 0
                var digits = 0
                while p < pattern.count, Lexer.isDigit(pattern[p]) {
                    value = min(value * 10 + Int(pattern[p].value - 48), 100_000)
                    digits += 1
                    p += 1
                }
                return digits > 0 ? value : nil
            }
            guard let low = number(&p) else { return nil }
            var high: Int? = low
            if p < pattern.count, pattern[p] == "," {
                p += 1
                high = number(&p)
            }
            guard p < pattern.count, pattern[p] == "}" else { return nil }
            position = p + 1
            if low > 1000 || (high ?? 0) > 1000 {
                throw ExprError("a repeat count must be at most 1000: write a smaller {n,m}", at: start)
            }
            if let high, high < low {
                throw ExprError("in {n,m}, n must not be larger than m: write {\(high),\(low)}", at: start)
            }
            return (low, high)
        default:
            return nil
        }
    }

    /// One atom, or nil for a flag group like `(?i)` that matches nothing.
    private mutating func parseAtom() throws(ExprError) -> RegexNode? {
        let start = position
        let c = pattern[position]
        position += 1
        switch c {
        case "*", "+", "?":
            throw ExprError(
                "'\(c)' has nothing to repeat: put it after a character, class or group, or write \\\(c) for a literal",
                at: start
            )
        case ".":
            return .any
        case "^":
            return .assertion(.beginText)
        case "$":
            return .assertion(.endText)
        case "[":
            return .set(try characterClass(start: start))
        case "(":
            return try group(start: start)
        case "\\":
            return try escape(start: start)
        default:
            return literal(c.value)
        }
    }

    private func literal(_ v: UInt32) -> RegexNode {
        .scalar(v, fold: foldCase && caseVariants(v).count > 1)
    }

    private mutating func group(start: Int) throws(ExprError) -> RegexNode? {
        let savedFold = foldCase
        if peek() == "?" {
            position += 1
            switch peek() {
            case ":":
                position += 1
            case "=", "!":
                throw ExprError(
                    "lookahead ((?= and (?!) is not supported (matching is linear-time): rewrite the pattern without it",
                    at: start
                )
            case "<" where peek(1) == "=" || peek(1) == "!":
                throw ExprError(
                    "lookbehind ((?<= and (?<!) is not supported (matching is linear-time): rewrite the pattern without it",
                    at: start
                )
            case "P" where peek(1) == "=":
                throw ExprError("backreferences are not supported (matching is linear-time)", at: start)
            case "P" where peek(1) == "<", "<":
                // A named group: the name does not matter here.
                position += peek() == "P" ? 2 : 1
                let nameStart = position
                while let n = peek(), Lexer.isIdentifierStart(n) || Lexer.isDigit(n) { position += 1 }
                guard position > nameStart, peek() == ">" else {
                    throw ExprError("a group name must be letters, digits or _, closed by '>'", at: start)
                }
                position += 1
            case "i":
                position += 1
                foldCase = true
                if peek() == ")" {
                    // `(?i)`: for the rest of the enclosing group.
                    position += 1
                    return nil
                }
                guard peek() == ":" else { throw unsupportedFlags(at: start) }
                position += 1
            default:
                throw unsupportedFlags(at: start)
            }
        }
        depth += 1
        guard depth <= maxDepth else {
            throw ExprError("groups are nested more than \(maxDepth) deep: simplify the pattern", at: start)
        }
        let inner = try alternation()
        depth -= 1
        guard peek() == ")" else {
            throw ExprError("this group is not closed: add a ')' (or write \\( for a literal parenthesis)", at: start)
        }
        position += 1
        foldCase = savedFold
        return inner
    }

    private func unsupportedFlags(at offset: Int) -> ExprError {
        ExprError(
            "only the flag (?i) (or (?i:…)) is supported: multi-line, dot-all and other flags are not",
            at: offset
        )
    }

    private mutating func escape(start: Int) throws(ExprError) -> RegexNode {
        guard let e = peek() else {
            throw ExprError("the pattern ends in a lone backslash: write \\\\ for a backslash", at: start)
        }
        position += 1
        switch e {
        case "d": return .set(CharSet(CharSet.digit))
        case "D": return .set(CharSet(CharSet.digit, negated: true))
        case "w": return .set(CharSet(CharSet.word))
        case "W": return .set(CharSet(CharSet.word, negated: true))
        case "s": return .set(CharSet(CharSet.space))
        case "S": return .set(CharSet(CharSet.space, negated: true))
        case "b": return .assertion(.wordBoundary)
        case "B": return .assertion(.notWordBoundary)
        case "A": return .assertion(.beginText)
        case "z": return .assertion(.endText)
        default: return literal(try escapedScalar(e, start: start))
        }
    }

    /// The scalar an escape other than a class or assertion stands for; `e` is consumed.
    private mutating func escapedScalar(_ e: Unicode.Scalar, start: Int) throws(ExprError) -> UInt32 {
        switch e {
        case "n": return 10
        case "t": return 9
        case "r": return 13
        case "f": return 12
        case "v": return 11
        case "a": return 7
        case "x": return try hexEscape(start: start)
        case "1"..."9", "k", "g":
            throw ExprError("backreferences are not supported (matching is linear-time)", at: start)
        case "0":
            throw ExprError("octal escapes are not supported: write \\x{…} with the hex value", at: start)
        case "p", "P":
            throw ExprError(
                "Unicode classes (\\p{…}) are not supported: use a class such as [a-z] or \\w",
                at: start
            )
        default:
            if e.value < 128 && !Lexer.isIdentifierStart(e) && !Lexer.isDigit(e) {
                return e.value
            }
            throw ExprError(
                "unknown escape \\\(Lexer.printable(e)): escape only punctuation, or use \\d \\w \\s \\b \\n \\t \\x{…}",
                at: start
            )
        }
    }

    private mutating func hexEscape(start: Int) throws(ExprError) -> UInt32 {
        var value: UInt32 = 0
        if peek() == "{" {
            position += 1
            var digits = 0
            while let h = peek(), let d = Lexer.hexValue(h) {
                value = min(value * 16 + d, 0x110000)
                digits += 1
                position += 1
            }
            guard digits > 0, peek() == "}" else {
                throw ExprError("\\x{…} needs hex digits and a closing '}', e.g. \\x{e9}", at: start)
            }
            position += 1
        } else {
            for _ in 0..<2 {
                guard let h = peek(), let d = Lexer.hexValue(h) else {
                    throw ExprError("\\x needs two hex digits (\\x41) or braces (\\x{e9})", at: start)
                }
                value = value * 16 + d
                position += 1
            }
        }
        guard value <= 0x10FFFF, !(0xD800...0xDFFF).contains(value) else {
            throw ExprError("\\x{…} is not a Unicode scalar value", at: start)
        }
        return value
    }

    private mutating func characterClass(start: Int) throws(ExprError) -> CharSet {
        var negated = false
        if peek() == "^" {
            negated = true
            position += 1
        }
        var ranges: [ClosedRange<UInt32>] = []
        var first = true
        while true {
            guard let c = peek() else {
                throw ExprError("this class is not closed: add a ']' (or write \\[ for a literal bracket)", at: start)
            }
            if c == "]" && !first {
                position += 1
                break
            }
            first = false
            let itemStart = position
            if c == "[" && peek(1) == ":" {
                ranges += try posixClass()
                continue
            }
            guard let low = try classAtom(into: &ranges) else { continue }
            if peek() == "-", let after = peek(1), after != "]" {
                position += 1
                var dummy: [ClosedRange<UInt32>] = []
                guard let high = try classAtom(into: &dummy) else {
                    throw ExprError("a range must end in a single character, not a class like \\d", at: itemStart)
                }
                guard low <= high else {
                    throw ExprError(
                        "the range \(Self.show(low))-\(Self.show(high)) is backwards: write the smaller character first",
                        at: itemStart
                    )
                }
                ranges.append(low...high)
            } else {
                ranges.append(low...low)
            }
        }
        if foldCase {
            return CharSet(ranges, negated: negated, fold: true)
        }
        return CharSet(ranges, negated: negated)
    }

    private static func show(_ v: UInt32) -> String {
        Unicode.Scalar(v).map(Lexer.printable) ?? "?"
    }

    /// One character of a class, or nil after adding a class escape (`\d`) to `ranges`.
    private mutating func classAtom(into ranges: inout [ClosedRange<UInt32>]) throws(ExprError) -> UInt32? {
        let start = position
        let c = pattern[position]
        position += 1
        guard c == "\\" else { return c.value }
        guard let e = peek() else {
            throw ExprError("the pattern ends in a lone backslash: write \\\\ for a backslash", at: start)
        }
        position += 1
        switch e {
        case "d": ranges += CharSet.digit
        case "D": ranges += CharSet.complement(CharSet.digit)
        case "w": ranges += CharSet.word
        case "W": ranges += CharSet.complement(CharSet.word)
        case "s": ranges += CharSet.space
        case "S": ranges += CharSet.complement(CharSet.space)
        case "b", "B", "A", "z":
            throw ExprError("\\\(e) is an anchor and cannot be used inside [ ]", at: start)
        default: return try escapedScalar(e, start: start)
        }
        return nil
    }

    /// `[:alpha:]` or `[:^alpha:]` inside a class; the current scalar is the `[`.
    private mutating func posixClass() throws(ExprError) -> [ClosedRange<UInt32>] {
        let start = position
        position += 2
        var negated = false
        if peek() == "^" {
            negated = true
            position += 1
        }
        var name = ""
        while let c = peek(), Lexer.isIdentifierStart(c) {
            name.unicodeScalars.append(c)
            position += 1
        }
        guard peek() == ":", peek(1) == "]", let ranges = CharSet.posix[name] else {
            let known = CharSet.posix.keys.sorted().joined(separator: " ")
            throw ExprError("unknown class [:\(name):]: the known ones are \(known)", at: start)
        }
        position += 2
        return negated ? CharSet.complement(ranges) : ranges
    }
}
