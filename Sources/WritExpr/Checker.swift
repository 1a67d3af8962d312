/// Type-checks a parsed condition against the declarations and lowers it to `Code`.
///
/// Recursion follows the tree, whose height the parser bounded.
struct Checker {
    /// A checked node: its code and its static type.
    typealias Checked = (code: Code, type: ExprType)

    private let declarations: [String: ExprType]
    private let limits: Limits
    /// Top-level variables the condition reads, in slot order.
    private(set) var globalNames: [String] = []
    private var globalSlots: [String: Int] = [:]
    /// Macro variables in scope, innermost last; a variable's slot is its position.
    private var scopes: [(name: String, type: ExprType)] = []
    /// How many macro variables are in scope at most.
    private(set) var localCount = 0
    /// Variable paths read (`request.reason`), for `Expression.references`.
    private(set) var references: Set<String> = []

    init(_ declarations: Declarations, limits: Limits) {
        self.declarations = declarations.variables
        self.limits = limits
    }

    // MARK: - Names and messages

    /// `request.reason`, `request.fields["ticket"]`: how messages name a value, when the node is
    /// a variable path.
    static func path(_ node: Node) -> String? {
        switch node.kind {
        case .identifier(let name):
            return name
        case .member(let base, let field, _):
            return path(base).map { "\($0).\(field)" }
        case .index(let base, let index):
            guard case .string(let key, _) = index.kind, let base = path(base) else { return nil }
            return "\(base)[\"\(key)\"]"
        default:
            return nil
        }
    }

    private static func label(_ node: Node) -> String {
        switch node.kind {
        case .int(let magnitude): "\(magnitude)"
        case .negativeInt(let value): "\(value)"
        case .bool(let value): "\(value)"
        case .null: "null"
        case .string(let text, _): Time.quoted(text)
        default: path(node) ?? "the value"
        }
    }

    /// "a string", "an int".
    static func article(_ type: ExprType) -> String {
        let text = type.description
        let vowel = text.first.map { "aeiou".contains($0) } ?? false
        return (vowel ? "an " : "a ") + text
    }

    /// The path of a member chain rooted at a top-level variable (not a macro variable).
    private func globalPath(_ node: Node) -> String? {
        switch node.kind {
        case .identifier(let name):
            return scopes.contains { $0.name == name } ? nil : name
        case .member(let base, let field, _):
            return globalPath(base).map { "\($0).\(field)" }
        default:
            return nil
        }
    }

    static let signatures: [String: String] = [
        "size": "size(x) or x.size(), x a string, list or map -> int",
        "matches": "s.matches(\"pattern\") or matches(s, \"pattern\") -> bool",
        "startsWith": "s.startsWith(string) -> bool",
        "endsWith": "s.endsWith(string) -> bool",
        "contains": "s.contains(string) -> bool",
        "lowerAscii": "s.lowerAscii() -> string",
        "upperAscii": "s.upperAscii() -> string",
        "duration": "duration(\"1h30m\") -> duration",
        "timestamp": "timestamp(\"2026-11-25T10:00:00Z\") -> timestamp",
        "int": "int(x), x a string, int, duration or timestamp -> int",
        "string": "string(x), x an int, string, bool, duration or timestamp -> string",
        "has": "has(map.key) or has(object.field) -> bool",
        "exists": "list.exists(x, predicate) -> bool",
        "all": "list.all(x, predicate) -> bool",
        "exists_one": "list.exists_one(x, predicate) -> bool",
        "filter": "list.filter(x, predicate) -> list",
        "map": "list.map(x, expression) -> list",
        "getHours": "t.getHours() or t.getHours(\"+02:00\") -> int",
        "getMinutes": "t.getMinutes() or t.getMinutes(\"+02:00\") -> int",
        "getDayOfWeek": "t.getDayOfWeek() or t.getDayOfWeek(\"+02:00\") -> int (0 = Sunday)",
        "getDate": "t.getDate() or t.getDate(\"+02:00\") -> int (1-31)",
        "getMonth": "t.getMonth() or t.getMonth(\"+02:00\") -> int (0 = January)",
        "getFullYear": "t.getFullYear() or t.getFullYear(\"+02:00\") -> int",
    ]
    static let functions = ["duration", "has", "int", "matches", "size", "string", "timestamp"]
    /// Names other languages use, and the one to write instead.
    static let aliases = [
        "len": "size", "length": "size", "count": "size", "lower": "lowerAscii", "toLowerCase": "lowerAscii",
        "toLower": "lowerAscii", "upper": "upperAscii", "toUpperCase": "upperAscii", "toUpper": "upperAscii",
        "includes": "contains", "any": "exists", "every": "all", "where": "filter", "select": "map",
    ]
    static let methods = [
        "all", "contains", "endsWith", "exists", "exists_one", "filter", "getDate", "getDayOfWeek",
        "getFullYear", "getHours", "getMinutes", "getMonth", "lowerAscii", "map", "matches", "size",
        "startsWith", "upperAscii",
    ]

    // MARK: - Type rules

    private static func isString(_ t: ExprType) -> Bool { t == .string || t == .dyn }
    private static func isBool(_ t: ExprType) -> Bool { t == .bool || t == .dyn }

    private static func isSized(_ t: ExprType) -> Bool {
        switch t {
        case .string, .list, .map, .dyn: true
        default: false
        }
    }

    /// Whether `==` may compare values of these types (dyn: decided at run time).
    static func comparable(_ a: ExprType, _ b: ExprType) -> Bool {
        switch (a, b) {
        case (.dyn, _), (_, .dyn): true
        case (.list(let x), .list(let y)): comparable(x, y)
        case (.map(let x), .map(let y)): comparable(x, y)
        case (.object(let x, _), .object(let y, _)): x == y
        case (.object, .map), (.map, .object): true
        default: a == b
        }
    }

    /// The type both branches of `?:` (or two lists being joined) have.
    static func join(_ a: ExprType, _ b: ExprType) -> ExprType? {
        if a == b { return a }
        switch (a, b) {
        case (.dyn, _), (_, .dyn): return .dyn
        case (.list(let x), .list(let y)): return join(x, y).map { .list($0) }
        case (.map(let x), .map(let y)): return join(x, y).map { .map($0) }
        default: return nil
        }
    }

    private static func isOrdered(_ t: ExprType) -> Bool {
        switch t {
        case .int, .string, .duration, .timestamp, .dyn: true
        default: false
        }
    }

    /// The result type of `left op right`, or nil when no overload applies.
    static func binaryType(_ op: BinaryOperator, _ left: ExprType, _ right: ExprType) -> ExprType? {
        switch op {
        case .equal, .notEqual:
            return comparable(left, right) ? .bool : nil
        case .less, .lessEqual, .greater, .greaterEqual:
            guard isOrdered(left), isOrdered(right) else { return nil }
            return left == right || left == .dyn || right == .dyn ? .bool : nil
        case .in:
            switch right {
            case .list(let element): return comparable(left, element) ? .bool : nil
            case .map: return isString(left) ? .bool : nil
            case .dyn: return .bool
            default: return nil
            }
        case .add:
            switch (left, right) {
            case (.int, .int): return .int
            case (.string, .string): return .string
            case (.list(let x), .list(let y)): return .list(join(x, y) ?? .dyn)
            case (.timestamp, .duration), (.duration, .timestamp): return .timestamp
            case (.duration, .duration): return .duration
            case (.dyn, let other), (let other, .dyn):
                switch other {
                case .int, .string, .list, .duration, .timestamp, .dyn: return .dyn
                default: return nil
                }
            default: return nil
            }
        case .subtract:
            switch (left, right) {
            case (.int, .int): return .int
            case (.timestamp, .duration): return .timestamp
            case (.timestamp, .timestamp), (.duration, .duration): return .duration
            case (.dyn, let other), (let other, .dyn):
                switch other {
                case .int, .duration, .timestamp, .dyn: return .dyn
                default: return nil
                }
            default: return nil
            }
        case .multiply, .divide, .remainder:
            switch (left, right) {
            case (.int, .int), (.int, .dyn), (.dyn, .int), (.dyn, .dyn): return .int
            default: return nil
            }
        }
    }

    /// What to write instead, for a binary operator applied to the wrong types.
    private static func binaryHint(_ op: BinaryOperator, _ left: ExprType, _ right: ExprType) -> String {
        let types = [left, right]
        switch op {
        case .in: return "'in' needs a list or map on its right, with elements of the left side's type"
        case .multiply, .divide, .remainder: return "\(op.symbol) works on ints only"
        default: break
        }
        if types.contains(.duration) && types.contains(.int) {
            return "write the number as a duration, e.g. duration(\"1h\"), or convert with int(d) (seconds)"
        }
        if types.contains(.timestamp) && types.contains(.string) {
            return "convert the string with timestamp(\"2026-11-25T10:00:00Z\")"
        }
        if types.contains(.duration) && types.contains(.string) {
            return "convert the string with duration(\"1h\")"
        }
        if types.contains(.int) && types.contains(.string) {
            return "convert with int(s) or string(n) so both sides have the same type"
        }
        if types.contains(.null) { return "only values of type dyn (e.g. in context) can be compared with null" }
        switch op {
        case .add:
            return "+ adds ints and durations, joins strings and lists, and adds a duration to a timestamp"
        case .subtract: return "- works on ints, durations, and timestamps (minus a duration or a timestamp)"
        default: return "both sides must have the same type"
        }
    }

    // MARK: - Checking

    mutating func check(_ node: Node, inPath: Bool = false) throws(ExprError) -> Checked {
        switch node.kind {
        case .null:
            return (.constant(.null), .null)
        case .bool(let value):
            return (.constant(.bool(value)), .bool)
        case .int(let magnitude):
            guard magnitude <= UInt64(Int64.max) else { throw ExprError(Lexer.outOfRange, at: node.offset) }
            return (.constant(.int(Int64(magnitude))), .int)
        case .negativeInt(let value):
            return (.constant(.int(value)), .int)
        case .string(let text, _):
            return (.constant(.string(text)), .string)
        case .identifier(let name):
            return try identifier(name, at: node.offset, inPath: inPath)
        case .list(let elements):
            var codes: [Code] = []
            var elementType: ExprType? = nil
            for element in elements {
                let (code, type) = try check(element)
                codes.append(code)
                elementType = elementType.map { $0 == type ? $0 : .dyn } ?? type
            }
            return (.list(codes), .list(elementType ?? .dyn))
        case .map(let entries):
            return try map(entries)
        case .member(let base, let field, let nameOffset):
            return try member(node, base, field, nameOffset: nameOffset, inPath: inPath)
        case .index(let base, let index):
            return try self.index(base, index)
        case .call(let target, let name, let nameOffset, let arguments):
            return try call(target: target, name: name, nameOffset: nameOffset, arguments: arguments)
        case .not(let operand):
            let (code, type) = try check(operand)
            guard Self.isBool(type) else {
                throw ExprError(
                    "! needs a bool, but \(Self.label(operand)) is \(Self.article(type)): compare it first, e.g. x == 0",
                    at: node.offset
                )
            }
            return (.not(code), .bool)
        case .negate(let operand):
            let (code, type) = try check(operand)
            guard type == .int || type == .dyn else {
                throw ExprError(
                    "- needs an int, but \(Self.label(operand)) is \(Self.article(type))",
                    at: node.offset
                )
            }
            return (.negate(code), type)
        case .and(let operands), .or(let operands):
            let isAnd: Bool
            if case .and = node.kind { isAnd = true } else { isAnd = false }
            var codes: [Code] = []
            for operand in operands {
                let (code, type) = try check(operand)
                guard Self.isBool(type) else {
                    throw ExprError(
                        "\(isAnd ? "&&" : "||") needs true or false on both sides, but \(Self.label(operand)) is "
                            + "\(Self.article(type)): compare it, e.g. x != \"\"",
                        at: operand.offset
                    )
                }
                codes.append(code)
            }
            return (isAnd ? .and(codes) : .or(codes), .bool)
        case .binary(let op, let left, let right, let operatorOffset):
            let (leftCode, leftType) = try check(left)
            let (rightCode, rightType) = try check(right)
            guard let type = Self.binaryType(op, leftType, rightType) else {
                let what =
                    switch op {
                    case .equal, .notEqual, .less, .lessEqual, .greater, .greaterEqual:
                        "compare \(leftType) with \(rightType) using \(op.symbol)"
                    case .in: "use 'in' with \(leftType) and \(rightType)"
                    default: "apply \(op.symbol) to \(leftType) and \(rightType)"
                    }
                throw ExprError(
                    "cannot \(what): \(Self.binaryHint(op, leftType, rightType))",
                    at: operatorOffset
                )
            }
            return (.binary(op, leftCode, rightCode), type)
        case .conditional(let condition, let then, let otherwise):
            let (conditionCode, conditionType) = try check(condition)
            guard Self.isBool(conditionType) else {
                throw ExprError(
                    "the condition before '?' must be true or false, but \(Self.label(condition)) is "
                        + "\(Self.article(conditionType))",
                    at: condition.offset
                )
            }
            let (thenCode, thenType) = try check(then)
            let (elseCode, elseType) = try check(otherwise)
            guard let type = Self.join(thenType, elseType) else {
                throw ExprError(
                    "both branches of ?: must have the same type, but they are \(thenType) and \(elseType)",
                    at: otherwise.offset
                )
            }
            return (.conditional(conditionCode, thenCode, elseCode), type)
        }
    }

    private mutating func identifier(_ name: String, at offset: Int, inPath: Bool) throws(ExprError) -> Checked {
        if let slot = scopes.lastIndex(where: { $0.name == name }) {
            return (.local(slot), scopes[slot].type)
        }
        guard let type = declarations[name] else {
            let known = Array(declarations.keys) + scopes.map(\.name)
            throw ExprError(
                "unknown variable '\(name)'" + Suggestions.help(for: name, among: known, kind: "variables"),
                at: offset
            )
        }
        if !inPath { references.insert(name) }
        if let slot = globalSlots[name] { return (.global(slot), type) }
        globalSlots[name] = globalNames.count
        globalNames.append(name)
        return (.global(globalNames.count - 1), type)
    }

    private mutating func map(_ entries: [(key: Node, value: Node)]) throws(ExprError) -> Checked {
        var codes: [(key: Code, value: Code)] = []
        var valueType: ExprType? = nil
        var literalKeys: Set<String> = []
        for (key, value) in entries {
            let (keyCode, keyType) = try check(key)
            guard Self.isString(keyType) else {
                throw ExprError("map keys must be strings, but this key is \(Self.article(keyType))", at: key.offset)
            }
            if case .string(let text, _) = key.kind, !literalKeys.insert(text).inserted {
                throw ExprError("the key \"\(text)\" appears twice in this map: keep one", at: key.offset)
            }
            let (valueCode, type) = try check(value)
            codes.append((keyCode, valueCode))
            valueType = valueType.map { $0 == type ? $0 : .dyn } ?? type
        }
        return (.map(codes), .map(valueType ?? .dyn))
    }

    private func unknownField(
        _ field: String,
        of base: Node,
        in fields: [String: ExprType],
        at offset: Int
    ) -> ExprError {
        ExprError(
            "\(Self.label(base)) has no field '\(field)'"
                + Suggestions.help(for: field, among: Array(fields.keys), kind: "fields"),
            at: offset
        )
    }

    private mutating func member(
        _ node: Node,
        _ base: Node,
        _ field: String,
        nameOffset: Int,
        inPath: Bool
    ) throws(ExprError) -> Checked {
        let (baseCode, baseType) = try check(base, inPath: true)
        if !inPath, let path = globalPath(node) { references.insert(path) }
        let label = Self.label(base)
        let code = Code.select(baseCode, field: field, label: label)
        switch baseType {
        case .object(_, let fields):
            guard let type = fields[field] else { throw unknownField(field, of: base, in: fields, at: nameOffset) }
            return (code, type)
        case .map(let value):
            return (code, value)
        case .dyn:
            return (code, .dyn)
        default:
            throw ExprError(
                "\(label) is \(Self.article(baseType)), which has no fields: '.\(field)' needs a map or object",
                at: nameOffset
            )
        }
    }

    private mutating func index(_ base: Node, _ index: Node) throws(ExprError) -> Checked {
        let (baseCode, baseType) = try check(base)
        let (indexCode, indexType) = try check(index)
        let label = Self.label(base)
        let code = Code.index(baseCode, indexCode, label: label)
        switch baseType {
        case .list(let element):
            guard indexType == .int || indexType == .dyn else {
                throw ExprError(
                    "a list index must be an int, but this is \(Self.article(indexType))",
                    at: index.offset
                )
            }
            return (code, element)
        case .map(let value):
            guard Self.isString(indexType) else {
                throw ExprError(
                    "a map key must be a string, but this is \(Self.article(indexType))",
                    at: index.offset
                )
            }
            return (code, value)
        case .dyn:
            return (code, .dyn)
        case .object:
            throw ExprError("\(label) is an object: read its fields with '.', e.g. \(label).name", at: index.offset)
        default:
            throw ExprError(
                "\(label) is \(Self.article(baseType)), which cannot be indexed: [ ] needs a list or map",
                at: index.offset
            )
        }
    }

    // MARK: - Calls

    private func signature(_ name: String) -> String { Self.signatures[name] ?? name }

    private func requireCount(
        _ name: String,
        _ arguments: [Node],
        _ counts: ClosedRange<Int>,
        at offset: Int
    ) throws(ExprError) {
        guard counts.contains(arguments.count) else {
            let expected =
                counts.lowerBound == counts.upperBound
                ? "\(counts.lowerBound) argument\(counts.lowerBound == 1 ? "" : "s")"
                : "\(counts.lowerBound) or \(counts.upperBound) arguments"
            throw ExprError(
                "\(name)() takes \(expected), not \(arguments.count): \(signature(name))",
                at: offset
            )
        }
    }

    /// Checks an argument and requires `accepts(type)`; `expected` is "a string".
    private mutating func argument(
        _ node: Node,
        of name: String,
        expected: String,
        _ accepts: (ExprType) -> Bool
    ) throws(ExprError) -> Code {
        let (code, type) = try check(node)
        guard accepts(type) else {
            throw ExprError(
                "\(name)() needs \(expected), but \(Self.label(node)) is \(Self.article(type)): \(signature(name))",
                at: node.offset
            )
        }
        return code
    }

    /// Checks a method's receiver and requires `accepts(type)`.
    private mutating func receiver(
        _ node: Node,
        of name: String,
        nameOffset: Int,
        expected: String,
        _ accepts: (ExprType) -> Bool
    ) throws(ExprError) -> Checked {
        let (code, type) = try check(node)
        guard accepts(type) else {
            throw ExprError(
                "\(name)() needs \(expected) before the '.', but \(Self.label(node)) is \(Self.article(type)): "
                    + signature(name),
                at: nameOffset
            )
        }
        return (code, type)
    }

    private mutating func call(
        target: Node?,
        name: String,
        nameOffset: Int,
        arguments: [Node]
    ) throws(ExprError) -> Checked {
        guard let target else {
            return try function(name, nameOffset: nameOffset, arguments: arguments)
        }
        if let macro = Macro(rawValue: name) {
            return try comprehension(macro, target: target, nameOffset: nameOffset, arguments: arguments)
        }
        if let part = TimePart(rawValue: name) {
            return try timePart(part, target: target, nameOffset: nameOffset, arguments: arguments)
        }
        switch name {
        case "size":
            try requireCount(name, arguments, 0...0, at: nameOffset)
            let (code, _) = try receiver(
                target,
                of: name,
                nameOffset: nameOffset,
                expected: "a string, list or map",
                Self.isSized
            )
            return (.call(.size, [code]), .int)
        case "matches":
            try requireCount(name, arguments, 1...1, at: nameOffset)
            let (code, _) = try receiver(target, of: name, nameOffset: nameOffset, expected: "a string", Self.isString)
            return (.matches(code, try pattern(arguments[0])), .bool)
        case "startsWith", "endsWith", "contains":
            try requireCount(name, arguments, 1...1, at: nameOffset)
            let (code, _) = try receiver(target, of: name, nameOffset: nameOffset, expected: "a string", Self.isString)
            let argumentCode = try argument(arguments[0], of: name, expected: "a string", Self.isString)
            let builtin: Builtin = name == "startsWith" ? .startsWith : name == "endsWith" ? .endsWith : .contains
            return (.call(builtin, [code, argumentCode]), .bool)
        case "lowerAscii", "upperAscii":
            try requireCount(name, arguments, 0...0, at: nameOffset)
            let (code, _) = try receiver(target, of: name, nameOffset: nameOffset, expected: "a string", Self.isString)
            return (.call(name == "lowerAscii" ? .lowerAscii : .upperAscii, [code]), .string)
        default:
            if Self.functions.contains(name) {
                throw ExprError(
                    "\(name) is a function, not a method: write \(signature(name))",
                    at: nameOffset
                )
            }
            throw ExprError(
                "unknown method '\(name)'"
                    + (Self.aliases[name].map { ": write \(signature($0))" }
                        ?? Suggestions.help(for: name, among: Self.methods, kind: "methods")),
                at: nameOffset
            )
        }
    }

    private mutating func function(_ name: String, nameOffset: Int, arguments: [Node]) throws(ExprError) -> Checked {
        switch name {
        case "has":
            return try has(nameOffset: nameOffset, arguments: arguments)
        case "size":
            try requireCount(name, arguments, 1...1, at: nameOffset)
            let code = try argument(arguments[0], of: name, expected: "a string, list or map", Self.isSized)
            return (.call(.size, [code]), .int)
        case "matches":
            try requireCount(name, arguments, 2...2, at: nameOffset)
            let code = try argument(arguments[0], of: name, expected: "a string", Self.isString)
            return (.matches(code, try pattern(arguments[1])), .bool)
        case "duration", "timestamp":
            try requireCount(name, arguments, 1...1, at: nameOffset)
            let isDuration = name == "duration"
            if case .string(let text, _) = arguments[0].kind {
                // Folded now: a bad literal is a load-time error, and evaluation does no parsing.
                do {
                    let value = isDuration ? try Time.parseDuration(text) : try Time.parseTimestamp(text)
                    return (
                        .constant(isDuration ? .duration(value) : .timestamp(value)),
                        isDuration ? .duration : .timestamp
                    )
                } catch {
                    throw ExprError(error.message, at: arguments[0].offset)
                }
            }
            let code = try argument(arguments[0], of: name, expected: "a string", Self.isString)
            return (.call(isDuration ? .duration : .timestamp, [code]), isDuration ? .duration : .timestamp)
        case "int":
            try requireCount(name, arguments, 1...1, at: nameOffset)
            let code = try argument(arguments[0], of: name, expected: "a string, int, duration or timestamp") {
                [.string, .int, .duration, .timestamp, .dyn].contains($0)
            }
            return (.call(.int, [code]), .int)
        case "string":
            try requireCount(name, arguments, 1...1, at: nameOffset)
            let code = try argument(arguments[0], of: name, expected: "an int, string, bool, duration or timestamp") {
                [.string, .int, .bool, .duration, .timestamp, .dyn].contains($0)
            }
            return (.call(.string, [code]), .string)
        default:
            if Self.methods.contains(name) {
                throw ExprError(
                    "\(name) is a method, not a function: write \(signature(name))",
                    at: nameOffset
                )
            }
            throw ExprError(
                "unknown function '\(name)'"
                    + (Self.aliases[name].map { ": write \(signature($0))" }
                        ?? Suggestions.help(for: name, among: Self.functions, kind: "functions")),
                at: nameOffset
            )
        }
    }

    /// The pattern argument of `matches`: a string literal, compiled now.
    private func pattern(_ node: Node) throws(ExprError) -> LinearRegex {
        guard case .string(let text, let offsets) = node.kind else {
            throw ExprError(
                "the pattern of matches() must be a string literal, e.g. matches(\"^INC-[0-9]+\"): "
                    + "patterns are compiled when the policy loads",
                at: node.offset
            )
        }
        do {
            return try LinearRegex(text, limits: limits)
        } catch {
            let offset = error.offset < offsets.count ? offsets[error.offset] : node.offset
            throw ExprError("in the pattern: \(error.message)", at: offset)
        }
    }

    private mutating func has(nameOffset: Int, arguments: [Node]) throws(ExprError) -> Checked {
        guard arguments.count == 1, case .member(let base, let field, let fieldOffset) = arguments[0].kind else {
            throw ExprError(
                "has() takes one field selection, e.g. has(context.on_call): \(signature("has"))",
                at: arguments.first?.offset ?? nameOffset
            )
        }
        let (baseCode, baseType) = try check(base, inPath: true)
        if let path = globalPath(arguments[0]) { references.insert(path) }
        switch baseType {
        case .object(_, let fields):
            guard fields[field] != nil else { throw unknownField(field, of: base, in: fields, at: fieldOffset) }
        case .map, .dyn:
            break
        default:
            throw ExprError(
                "has() needs a map or object before the '.', but \(Self.label(base)) is \(Self.article(baseType))",
                at: fieldOffset
            )
        }
        return (.has(baseCode, field: field, label: Self.label(base)), .bool)
    }

    private mutating func timePart(
        _ part: TimePart,
        target: Node,
        nameOffset: Int,
        arguments: [Node]
    ) throws(ExprError) -> Checked {
        let name = part.rawValue
        try requireCount(name, arguments, 0...1, at: nameOffset)
        let (code, _) = try receiver(target, of: name, nameOffset: nameOffset, expected: "a timestamp") {
            $0 == .timestamp || $0 == .dyn
        }
        guard let zone = arguments.first else { return (.call(.timePart(part, zoneOffset: 0), [code]), .int) }
        if case .string(let text, _) = zone.kind {
            do {
                return (.call(.timePart(part, zoneOffset: try Time.parseZone(text)), [code]), .int)
            } catch {
                throw ExprError(error.message, at: zone.offset)
            }
        }
        let zoneCode = try argument(zone, of: name, expected: "a time zone string", Self.isString)
        return (.call(.timePart(part, zoneOffset: nil), [code, zoneCode]), .int)
    }

    private mutating func comprehension(
        _ macro: Macro,
        target: Node,
        nameOffset: Int,
        arguments: [Node]
    ) throws(ExprError) -> Checked {
        let name = macro.rawValue
        guard arguments.count == 2, case .identifier(let variable) = arguments[0].kind else {
            throw ExprError(
                "\(name)() takes a variable name and an expression: \(signature(name))",
                at: arguments.first?.offset ?? nameOffset
            )
        }
        let (rangeCode, rangeType) = try check(target)
        let element: ExprType
        switch rangeType {
        case .list(let e): element = e
        case .map: element = .string
        case .dyn: element = .dyn
        default:
            throw ExprError(
                "\(name)() needs a list or map before the '.', but \(Self.label(target)) is "
                    + "\(Self.article(rangeType)): \(signature(name))",
                at: nameOffset
            )
        }
        let slot = scopes.count
        scopes.append((variable, element))
        localCount = max(localCount, scopes.count)
        let (bodyCode, bodyType) = try check(arguments[1])
        scopes.removeLast()
        let type: ExprType
        if macro == .map {
            type = .list(bodyType)
        } else {
            guard Self.isBool(bodyType) else {
                throw ExprError(
                    "the predicate of \(name)() must be true or false, but it is \(Self.article(bodyType))",
                    at: arguments[1].offset
                )
            }
            type = macro == .filter ? .list(element) : .bool
        }
        return (.comprehension(macro, range: rangeCode, slot: slot, body: bodyCode), type)
    }
}
