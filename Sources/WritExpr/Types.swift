/// The static type of a condition's value, as the checker sees it.
///
/// Declarations give the types of the top-level variables; the checker derives every other type
/// from them. `dyn` defers the check to run time (a wrong type there is an evaluation error).
public indirect enum ExprType: Sendable, Equatable, CustomStringConvertible {
    /// `true` or `false`.
    case bool
    /// A 64-bit signed integer.
    case int
    /// Unicode text.
    case string
    /// Whole seconds (`duration("1h30m")`).
    case duration
    /// Epoch seconds (`timestamp("2026-11-25T10:00:00Z")`, `now`).
    case timestamp
    /// The type of `null`.
    case null
    /// A list whose elements have this type.
    case list(ExprType)
    /// A map with string keys and values of this type.
    case map(ExprType)
    /// A named record with fixed fields, e.g. `request`. At run time its value is a `Value.map`.
    case object(String, [String: ExprType])
    /// Any value: checked at run time.
    case dyn

    /// The type as messages spell it: `list(string)`, `map(string, dyn)`, `request`.
    public var description: String {
        switch self {
        case .bool: "bool"
        case .int: "int"
        case .string: "string"
        case .duration: "duration"
        case .timestamp: "timestamp"
        case .null: "null"
        case .list(let element): "list(\(element))"
        case .map(let value): "map(string, \(value))"
        case .object(let name, _): name
        case .dyn: "dyn"
        }
    }
}

/// A value a condition reads or computes.
///
/// Objects (a declared `ExprType.object`) are passed as `.map` with one entry per field.
public indirect enum Value: Sendable, Equatable {
    /// `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// A 64-bit signed integer.
    case int(Int64)
    /// Unicode text (compared by its UTF-8 bytes).
    case string(String)
    /// Seconds.
    case duration(Int64)
    /// Epoch seconds.
    case timestamp(Int64)
    /// A list of values.
    case list([Value])
    /// A map with string keys; also the value of an object.
    case map([String: Value])
}

/// The top-level variables a condition may read, with their types.
///
/// For example `"request": .object("request", ["reason": .string, …])`, `"context": .map(.dyn)`,
/// `"now": .timestamp`.
public struct Declarations: Sendable {
    /// Variable name → type.
    public let variables: [String: ExprType]

    /// Declares `variables` (name → type).
    public init(_ variables: [String: ExprType]) {
        self.variables = variables
    }
}

/// Why a condition was refused when it was compiled (a syntax, type or limit error).
public struct ExprError: Error, Sendable, Equatable, CustomStringConvertible {
    /// One line: what is wrong and, when possible, what to write instead.
    public let message: String
    /// Where the problem is: Unicode scalars (characters) from the start of the source (or of the
    /// pattern, for `LinearRegex`), 0-based.
    public let offset: Int

    /// Makes an error at `offset` (Unicode scalars from the start, 0-based).
    public init(_ message: String, at offset: Int) {
        self.message = message
        self.offset = offset
    }

    /// `at character N: message`, with N counted from 1.
    public var description: String { "at character \(offset + 1): \(message)" }
}

/// Why an evaluation did not decide: a missing map key or variable, a type mismatch on a `dyn`
/// value, an overflow, or a limit. The caller treats the condition as not decided.
public struct EvalError: Error, Sendable, Equatable, CustomStringConvertible {
    /// One line: what went wrong.
    public let message: String

    /// Makes an error with `message`.
    public init(_ message: String) {
        self.message = message
    }

    /// The message.
    public var description: String { message }
}

/// Bounds that keep hostile or careless conditions from hanging or crashing the daemon.
///
/// Every bound is enforced; `standard` is what policies get.
public struct Limits: Sendable {
    /// Longest source, in UTF-8 bytes.
    public var maxSourceBytes: Int
    /// Deepest nesting: parentheses, lists, maps, call arguments, operators applied to operators,
    /// member chains (and groups in a regular expression).
    public var maxDepth: Int
    /// Longest string literal, in UTF-8 bytes (after escapes).
    public var maxStringLiteralBytes: Int
    /// Most elements in a list literal or entries in a map literal.
    public var maxLiteralElements: Int
    /// Longest regular expression, in UTF-8 bytes.
    public var maxPatternBytes: Int
    /// Most instructions a compiled regular expression may have (after `{n,m}` expansion).
    public var maxRegexInstructions: Int
    /// Most steps one evaluation may take (nodes visited, macro iterations, regex work).
    public var maxSteps: Int
    /// Longest string an evaluation may build, in UTF-8 bytes.
    public var maxStringBytes: Int
    /// Longest list an evaluation may build.
    public var maxListElements: Int

    /// Bounds with the given values; each defaults to the `standard` one.
    public init(
        maxSourceBytes: Int = 4096,
        maxDepth: Int = 32,
        maxStringLiteralBytes: Int = 1024,
        maxLiteralElements: Int = 256,
        maxPatternBytes: Int = 1024,
        maxRegexInstructions: Int = 10_000,
        maxSteps: Int = 100_000,
        maxStringBytes: Int = 65_536,
        maxListElements: Int = 10_000
    ) {
        self.maxSourceBytes = maxSourceBytes
        self.maxDepth = maxDepth
        self.maxStringLiteralBytes = maxStringLiteralBytes
        self.maxLiteralElements = maxLiteralElements
        self.maxPatternBytes = maxPatternBytes
        self.maxRegexInstructions = maxRegexInstructions
        self.maxSteps = maxSteps
        self.maxStringBytes = maxStringBytes
        self.maxListElements = maxListElements
    }

    /// 4,096-byte sources, depth 32, 1,024-byte string literals and patterns, 256-element
    /// literals, 10,000 regex instructions, 100,000 steps, 64 KiB strings, 10,000-element lists.
    public static let standard = Limits()
}
