/// Runs `Code` against one set of variable values, counting steps.
///
/// Recursion follows the code tree (bounded by the parser's depth limit); loops (macros, list
/// scans, regex) charge steps, so every evaluation ends within `Limits.maxSteps`.
struct Evaluator {
    let limits: Limits
    var globals: [Value?]
    let globalNames: [String]
    var locals: [Value]
    var steps = 0
    /// Set once the budget is spent: from then on no error may be absorbed by && or ||.
    var exhausted = false

    init(limits: Limits, globals: [Value?], globalNames: [String], localCount: Int) {
        self.limits = limits
        self.globals = globals
        self.globalNames = globalNames
        self.locals = [Value](repeating: .null, count: localCount)
    }

    mutating func charge(_ amount: Int = 1) throws(EvalError) {
        steps += amount
        if steps > limits.maxSteps {
            exhausted = true
            throw EvalError("the condition took too many steps (limit \(limits.maxSteps))")
        }
    }

    static func typeName(_ value: Value) -> String {
        switch value {
        case .null: "null"
        case .bool: "bool"
        case .int: "int"
        case .string: "string"
        case .duration: "duration"
        case .timestamp: "timestamp"
        case .list: "list"
        case .map: "map"
        }
    }

    /// "a string", "an int".
    static func article(_ value: Value) -> String {
        let name = typeName(value)
        return (name == "int" ? "an " : "a ") + name
    }

    mutating func evaluate(_ code: Code) throws(EvalError) -> Value {
        try charge()
        switch code {
        case .constant(let value):
            return value
        case .global(let slot):
            guard let value = globals[slot] else {
                throw EvalError("no value was given for the variable '\(globalNames[slot])'")
            }
            return value
        case .local(let slot):
            return locals[slot]
        case .select(let base, let field, let label):
            let value = try evaluate(base)
            guard case .map(let map) = value else {
                throw EvalError("cannot read '.\(field)' of \(label): it is \(Self.article(value)), not a map")
            }
            guard let result = map[field] else {
                throw EvalError("\(label) has no '\(field)': test for it first with has(\(label).\(field))")
            }
            return result
        case .has(let base, let field, let label):
            let value = try evaluate(base)
            guard case .map(let map) = value else {
                throw EvalError("has(\(label).\(field)) needs a map, but \(label) is \(Self.article(value))")
            }
            return .bool(map[field] != nil)
        case .index(let base, let index, let label):
            return try self.index(try evaluate(base), try evaluate(index), label: label)
        case .list(let elements):
            var result: [Value] = []
            result.reserveCapacity(elements.count)
            for element in elements { result.append(try evaluate(element)) }
            return .list(result)
        case .map(let entries):
            var result: [String: Value] = [:]
            for (keyCode, valueCode) in entries {
                let key = try evaluate(keyCode)
                guard case .string(let text) = key else {
                    throw EvalError("map keys must be strings, not \(Self.article(key))")
                }
                guard result.updateValue(try evaluate(valueCode), forKey: text) == nil else {
                    throw EvalError("the key \(Time.quoted(text)) appears twice in a map")
                }
            }
            return .map(result)
        case .not(let operand):
            let value = try evaluate(operand)
            guard case .bool(let b) = value else { throw EvalError("! needs a bool, not \(Self.article(value))") }
            return .bool(!b)
        case .negate(let operand):
            let value = try evaluate(operand)
            guard case .int(let i) = value else { throw EvalError("- needs an int, not \(Self.article(value))") }
            guard i != .min else { throw EvalError("int overflow in -") }
            return .int(-i)
        case .and(let operands):
            return .bool(try logical(operands, decisive: false, symbol: "&&"))
        case .or(let operands):
            return .bool(try logical(operands, decisive: true, symbol: "||"))
        case .conditional(let condition, let then, let otherwise):
            let value = try evaluate(condition)
            guard case .bool(let b) = value else {
                throw EvalError("the condition before '?' must be a bool, not \(Self.article(value))")
            }
            return try evaluate(b ? then : otherwise)
        case .binary(let op, let left, let right):
            return try binary(op, try evaluate(left), try evaluate(right))
        case .call(let builtin, let arguments):
            return try call(builtin, arguments)
        case .matches(let subject, let regex):
            let value = try evaluate(subject)
            guard case .string(let text) = value else {
                throw EvalError("matches() needs a string, not \(Self.article(value))")
            }
            let (budget, overflow) = max(0, limits.maxSteps - steps).multipliedReportingOverflow(
                by: Self.regexWorkPerStep
            )
            let (matched, work) = regex.program.run(text, workLimit: overflow ? .max : budget)
            try charge(work / Self.regexWorkPerStep)
            guard let matched else { throw EvalError("the condition took too many steps (limit \(limits.maxSteps))") }
            return .bool(matched)
        case .comprehension(let macro, let range, let slot, let body):
            return try comprehension(macro, range: try evaluate(range), slot: slot, body: body)
        }
    }

    /// Regex work (NFA states visited) that costs one step.
    static let regexWorkPerStep = 16

    /// `&&` (`decisive` false) or `||` (`decisive` true) over all operands, left to right: an
    /// operand equal to `decisive` decides even when another failed (CEL's error absorption);
    /// otherwise the first error is the result. A spent budget is never absorbed.
    private mutating func logical(_ operands: [Code], decisive: Bool, symbol: String) throws(EvalError) -> Bool {
        var firstError: EvalError? = nil
        for operand in operands {
            do {
                let value = try evaluate(operand)
                guard case .bool(let b) = value else {
                    if firstError == nil {
                        firstError = EvalError("\(symbol) needs bool operands, not \(Self.article(value))")
                    }
                    continue
                }
                if b == decisive { return decisive }
            } catch {
                if exhausted { throw error }
                if firstError == nil { firstError = error }
            }
        }
        if let firstError { throw firstError }
        return !decisive
    }

    private mutating func index(_ base: Value, _ index: Value, label: String) throws(EvalError) -> Value {
        switch (base, index) {
        case (.list(let list), .int(let i)):
            guard i >= 0, i < list.count else {
                throw EvalError("index \(i) is out of range: \(label) has \(list.count) elements")
            }
            return list[Int(i)]
        case (.map(let map), .string(let key)):
            guard let value = map[key] else {
                throw EvalError("\(label) has no key \(Time.quoted(key)): test with \(Time.quoted(key)) in \(label)")
            }
            return value
        case (.list, _):
            throw EvalError("a list index must be an int, not \(Self.article(index))")
        case (.map, _):
            throw EvalError("a map key must be a string, not \(Self.article(index))")
        default:
            throw EvalError("\(label) is \(Self.article(base)), which cannot be indexed")
        }
    }

    // MARK: - Equality and order

    /// CEL equality: same types compare by value (strings by bytes), lists and maps
    /// structurally, null equals only null. Other type pairs are an error (`strict`) or unequal.
    mutating func equal(_ a: Value, _ b: Value, strict: Bool, depth: Int = 0) throws(EvalError) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.null, _), (_, .null): return false
        case (.bool(let x), .bool(let y)): return x == y
        case (.int(let x), .int(let y)): return x == y
        case (.duration(let x), .duration(let y)): return x == y
        case (.timestamp(let x), .timestamp(let y)): return x == y
        case (.string(let x), .string(let y)):
            try charge(min(x.utf8.count, y.utf8.count) / 64)
            return x.utf8.elementsEqual(y.utf8)
        case (.list(let x), .list(let y)):
            guard x.count == y.count else { return false }
            guard depth < limits.maxDepth else { throw EvalError("the values are nested too deeply to compare") }
            for (u, v) in zip(x, y) {
                try charge()
                if !(try equal(u, v, strict: strict, depth: depth + 1)) { return false }
            }
            return true
        case (.map(let x), .map(let y)):
            guard x.count == y.count else { return false }
            guard depth < limits.maxDepth else { throw EvalError("the values are nested too deeply to compare") }
            for (key, u) in x {
                try charge()
                guard let v = y[key], try equal(u, v, strict: strict, depth: depth + 1) else { return false }
            }
            return true
        default:
            if strict {
                throw EvalError("cannot compare \(Self.article(a)) with \(Self.article(b))")
            }
            return false
        }
    }

    /// -1, 0 or 1 for ints, strings (byte order), durations and timestamps of the same type.
    private mutating func order(_ a: Value, _ b: Value, symbol: String) throws(EvalError) -> Int {
        func sign<T: Comparable>(_ x: T, _ y: T) -> Int { x < y ? -1 : x == y ? 0 : 1 }
        switch (a, b) {
        case (.int(let x), .int(let y)), (.duration(let x), .duration(let y)), (.timestamp(let x), .timestamp(let y)):
            return sign(x, y)
        case (.string(let x), .string(let y)):
            try charge(min(x.utf8.count, y.utf8.count) / 64)
            if x.utf8.elementsEqual(y.utf8) { return 0 }
            return x.utf8.lexicographicallyPrecedes(y.utf8) ? -1 : 1
        default:
            throw EvalError(
                "cannot compare \(Self.article(a)) with \(Self.article(b)) using \(symbol): "
                    + "both must be ints, strings, durations or timestamps"
            )
        }
    }

    // MARK: - Operators

    private func checkedTimestamp(_ t: Int64, overflow: Bool) throws(EvalError) -> Value {
        guard !overflow, t >= Time.minTimestamp, t <= Time.maxTimestamp else {
            throw EvalError("the timestamp is outside the years 0001 to 9999")
        }
        return .timestamp(t)
    }

    private mutating func binary(_ op: BinaryOperator, _ a: Value, _ b: Value) throws(EvalError) -> Value {
        switch op {
        case .equal: return .bool(try equal(a, b, strict: true))
        case .notEqual: return .bool(!(try equal(a, b, strict: true)))
        case .less: return .bool(try order(a, b, symbol: "<") < 0)
        case .lessEqual: return .bool(try order(a, b, symbol: "<=") <= 0)
        case .greater: return .bool(try order(a, b, symbol: ">") > 0)
        case .greaterEqual: return .bool(try order(a, b, symbol: ">=") >= 0)
        case .in:
            switch b {
            case .list(let list):
                for element in list {
                    try charge()
                    if try equal(a, element, strict: false) { return .bool(true) }
                }
                return .bool(false)
            case .map(let map):
                guard case .string(let key) = a else {
                    throw EvalError("'in' a map needs a string key, not \(Self.article(a))")
                }
                return .bool(map[key] != nil)
            default:
                throw EvalError("'in' needs a list or map on its right, not \(Self.article(b))")
            }
        case .add:
            switch (a, b) {
            case (.int(let x), .int(let y)):
                let (r, o) = x.addingReportingOverflow(y)
                guard !o else { throw EvalError("int overflow in +") }
                return .int(r)
            case (.string(let x), .string(let y)):
                let bytes = x.utf8.count + y.utf8.count
                guard bytes <= limits.maxStringBytes else {
                    throw EvalError("the string would be longer than \(limits.maxStringBytes) bytes")
                }
                try charge(bytes / 64)
                return .string(x + y)
            case (.list(let x), .list(let y)):
                guard x.count + y.count <= limits.maxListElements else {
                    throw EvalError("the list would have more than \(limits.maxListElements) elements")
                }
                try charge((x.count + y.count) / 8)
                return .list(x + y)
            case (.timestamp(let t), .duration(let d)), (.duration(let d), .timestamp(let t)):
                let (r, o) = t.addingReportingOverflow(d)
                return try checkedTimestamp(r, overflow: o)
            case (.duration(let x), .duration(let y)):
                let (r, o) = x.addingReportingOverflow(y)
                guard !o else { throw EvalError("duration overflow in +") }
                return .duration(r)
            default:
                throw EvalError("cannot apply + to \(Self.article(a)) and \(Self.article(b))")
            }
        case .subtract:
            switch (a, b) {
            case (.int(let x), .int(let y)):
                let (r, o) = x.subtractingReportingOverflow(y)
                guard !o else { throw EvalError("int overflow in -") }
                return .int(r)
            case (.timestamp(let t), .duration(let d)):
                let (r, o) = t.subtractingReportingOverflow(d)
                return try checkedTimestamp(r, overflow: o)
            case (.timestamp(let x), .timestamp(let y)):
                let (r, o) = x.subtractingReportingOverflow(y)
                guard !o else { throw EvalError("duration overflow in -") }
                return .duration(r)
            case (.duration(let x), .duration(let y)):
                let (r, o) = x.subtractingReportingOverflow(y)
                guard !o else { throw EvalError("duration overflow in -") }
                return .duration(r)
            default:
                throw EvalError("cannot apply - to \(Self.article(a)) and \(Self.article(b))")
            }
        case .multiply, .divide, .remainder:
            guard case .int(let x) = a, case .int(let y) = b else {
                throw EvalError("cannot apply \(op.symbol) to \(Self.article(a)) and \(Self.article(b)): ints only")
            }
            if op != .multiply && y == 0 {
                throw EvalError(op == .divide ? "division by zero" : "modulus by zero")
            }
            let (r, o) =
                switch op {
                case .multiply: x.multipliedReportingOverflow(by: y)
                case .divide: x.dividedReportingOverflow(by: y)
                default: x.remainderReportingOverflow(dividingBy: y)
                }
            guard !o else { throw EvalError("int overflow in \(op.symbol)") }
            return .int(r)
        }
    }

    // MARK: - Macros

    private mutating func comprehension(_ macro: Macro, range: Value, slot: Int, body: Code) throws(EvalError) -> Value
    {
        let items: [Value]
        switch range {
        case .list(let list):
            items = list
        case .map(let map):
            try charge(map.count)
            items = map.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }.map { .string($0) }
        default:
            throw EvalError("\(macro.rawValue)() needs a list or map, not \(Self.article(range))")
        }
        switch macro {
        case .all, .exists:
            // all: false decides; exists: true decides; errors only when nothing decided.
            let decisive = macro == .exists
            var firstError: EvalError? = nil
            for item in items {
                try charge()
                locals[slot] = item
                do {
                    let value = try evaluate(body)
                    guard case .bool(let b) = value else {
                        if firstError == nil {
                            firstError = EvalError("the predicate of \(macro.rawValue)() gave \(Self.article(value))")
                        }
                        continue
                    }
                    if b == decisive { return .bool(decisive) }
                } catch {
                    if exhausted { throw error }
                    if firstError == nil { firstError = error }
                }
            }
            if let firstError { throw firstError }
            return .bool(!decisive)
        case .existsOne, .filter:
            var count = 0
            var kept: [Value] = []
            for item in items {
                try charge()
                locals[slot] = item
                let value = try evaluate(body)
                guard case .bool(let b) = value else {
                    throw EvalError("the predicate of \(macro.rawValue)() gave \(Self.article(value))")
                }
                if b {
                    count += 1
                    if macro == .filter {
                        guard kept.count < limits.maxListElements else {
                            throw EvalError("the list would have more than \(limits.maxListElements) elements")
                        }
                        kept.append(item)
                    }
                }
            }
            return macro == .filter ? .list(kept) : .bool(count == 1)
        case .map:
            var result: [Value] = []
            for item in items {
                try charge()
                locals[slot] = item
                guard result.count < limits.maxListElements else {
                    throw EvalError("the list would have more than \(limits.maxListElements) elements")
                }
                result.append(try evaluate(body))
            }
            return .list(result)
        }
    }
}
