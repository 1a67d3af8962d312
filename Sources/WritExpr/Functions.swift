/// The built-in functions and methods at run time (the checker has already checked the static
/// types; these check the dynamic ones).
extension Evaluator {
    mutating func call(_ builtin: Builtin, _ arguments: [Code]) throws(EvalError) -> Value {
        let subject = try evaluate(arguments[0])
        switch builtin {
        case .size:
            switch subject {
            case .string(let s):
                try charge(s.utf8.count / 64)
                return .int(Int64(s.unicodeScalars.count))
            case .list(let l): return .int(Int64(l.count))
            case .map(let m): return .int(Int64(m.count))
            default: throw EvalError("size() needs a string, list or map, not \(Self.article(subject))")
            }
        case .startsWith, .endsWith, .contains:
            let argument = try evaluate(arguments[1])
            guard case .string(let s) = subject, case .string(let t) = argument else {
                throw EvalError(
                    "\(builtin)() needs strings, not \(Self.article(subject)) and \(Self.article(argument))"
                )
            }
            try charge(s.utf8.count / 64)
            switch builtin {
            case .startsWith: return .bool(s.utf8.starts(with: t.utf8))
            case .endsWith:
                let n = t.utf8.count
                return .bool(s.utf8.count >= n && s.utf8.suffix(n).elementsEqual(t.utf8))
            default: return .bool(Self.find(t, in: s))
            }
        case .lowerAscii, .upperAscii:
            guard case .string(let s) = subject else {
                throw EvalError("\(builtin)() needs a string, not \(Self.article(subject))")
            }
            try charge(s.utf8.count / 64)
            let (from, to): (UInt8, UInt8) = builtin == .lowerAscii ? (65, 90) : (97, 122)
            let bytes = s.utf8.map { $0 >= from && $0 <= to ? $0 ^ 0x20 : $0 }
            return .string(String(decoding: bytes, as: UTF8.self))
        case .duration:
            switch subject {
            case .string(let s): return .duration(try Time.parseDuration(s))
            case .duration: return subject
            default: throw EvalError("duration() needs a string, not \(Self.article(subject))")
            }
        case .timestamp:
            switch subject {
            case .string(let s): return .timestamp(try Time.parseTimestamp(s))
            case .timestamp: return subject
            default: throw EvalError("timestamp() needs a string, not \(Self.article(subject))")
            }
        case .int:
            switch subject {
            case .int(let i), .duration(let i), .timestamp(let i): return .int(i)
            case .string(let s): return .int(try Self.parseInt(s))
            default:
                throw EvalError("int() needs a string, int, duration or timestamp, not \(Self.article(subject))")
            }
        case .string:
            switch subject {
            case .string: return subject
            case .int(let i): return .string(String(i))
            case .bool(let b): return .string(b ? "true" : "false")
            case .duration(let d): return .string("\(d)s")
            case .timestamp(let t):
                guard t >= Time.minTimestamp, t <= Time.maxTimestamp else {
                    throw EvalError("the timestamp is outside the years 0001 to 9999")
                }
                return .string(Time.format(timestamp: t))
            default:
                throw EvalError(
                    "string() needs an int, string, bool, duration or timestamp, not \(Self.article(subject))"
                )
            }
        case .timePart(let part, let fixedOffset):
            guard case .timestamp(let t) = subject else {
                throw EvalError("\(part.rawValue)() needs a timestamp, not \(Self.article(subject))")
            }
            guard t >= Time.minTimestamp, t <= Time.maxTimestamp else {
                throw EvalError("the timestamp is outside the years 0001 to 9999")
            }
            var offset = fixedOffset ?? 0
            if fixedOffset == nil {
                let zone = try evaluate(arguments[1])
                guard case .string(let text) = zone else {
                    throw EvalError("the time zone of \(part.rawValue)() must be a string, not \(Self.article(zone))")
                }
                offset = try Time.parseZone(text)
            }
            return .int(Time.part(part, of: t, offset: offset))
        }
    }

    /// A decimal int with an optional sign.
    static func parseInt(_ text: String) throws(EvalError) -> Int64 {
        let failure = EvalError("int(\(Time.quoted(text))): not a whole number")
        var bytes = Substring(text).utf8[...]
        var negative = false
        if let first = bytes.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") {
            negative = first == UInt8(ascii: "-")
            bytes = bytes.dropFirst()
        }
        guard !bytes.isEmpty else { throw failure }
        var value: Int64 = 0
        for b in bytes {
            guard b >= 48 && b <= 57 else { throw failure }
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (r, o2) =
                negative ? m.subtractingReportingOverflow(Int64(b - 48)) : m.addingReportingOverflow(Int64(b - 48))
            guard !o1, !o2 else { throw EvalError("int(\(Time.quoted(text))): out of the int range") }
            value = r
        }
        return value
    }

    /// Whether `needle` occurs in `haystack`, by UTF-8 bytes, in linear time (Knuth-Morris-Pratt).
    static func find(_ needle: String, in haystack: String) -> Bool {
        let pattern = Array(needle.utf8)
        if pattern.isEmpty { return true }
        var failure = [Int](repeating: 0, count: pattern.count)
        var k = 0
        for i in 1..<pattern.count {
            while k > 0 && pattern[i] != pattern[k] { k = failure[k - 1] }
            if pattern[i] == pattern[k] { k += 1 }
            failure[i] = k
        }
        k = 0
        for byte in haystack.utf8 {
            while k > 0 && byte != pattern[k] { k = failure[k - 1] }
            if byte == pattern[k] { k += 1 }
            if k == pattern.count { return true }
        }
        return false
    }
}
