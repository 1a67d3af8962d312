/// A compiled condition: parsed, type-checked against its declarations, every regular expression
/// compiled and every literal duration, timestamp and time zone folded. Evaluating it only reads
/// the variables.
///
/// ```swift
/// let condition = try Expression.compile(
///     #"request.reason.matches("^INC-[0-9]+") && request.duration <= duration("1h")"#,
///     declarations: Declarations(["request": .object("request", ["reason": .string, "duration": .duration])])
/// )
/// condition.evaluate(["request": .map(["reason": .string("INC-7"), "duration": .duration(1800)])])
/// // .success(true)
/// ```
public struct Expression: Sendable {
    /// The condition as written.
    public let source: String
    private let code: Code
    private let globalNames: [String]
    private let localCount: Int
    private let limits: Limits
    private let paths: [String]

    private init(source: String, code: Code, globalNames: [String], localCount: Int, limits: Limits, paths: [String]) {
        self.source = source
        self.code = code
        self.globalNames = globalNames
        self.localCount = localCount
        self.limits = limits
        self.paths = paths
    }

    /// Parses and type-checks `source`; its type must be bool (or dyn, checked when evaluated).
    /// Throws the first error, with its offset in Unicode scalars from the start of `source`.
    public static func compile(
        _ source: String,
        declarations: Declarations,
        limits: Limits = .standard
    ) throws(ExprError) -> Expression {
        var bytes = 0
        var scalars: [Unicode.Scalar] = []
        for scalar in source.unicodeScalars {
            bytes += UTF8.width(scalar)
            if bytes > limits.maxSourceBytes {
                throw ExprError(
                    "the condition is longer than \(limits.maxSourceBytes) bytes: split it or move data to a list",
                    at: scalars.count
                )
            }
            scalars.append(scalar)
        }
        let node = try Parser.parse(scalars, limits: limits)
        var checker = Checker(declarations, limits: limits)
        let (code, type) = try checker.check(node)
        guard type == .bool || type == .dyn else {
            throw ExprError(
                "the condition must be true or false, but it is \(Checker.article(type)): compare it, e.g. "
                    + "size(x) > 0 or x == \"…\"",
                at: 0
            )
        }
        return Expression(
            source: source,
            code: code,
            globalNames: checker.globalNames,
            localCount: checker.localCount,
            limits: limits,
            paths: checker.references.sorted()
        )
    }

    /// Evaluates the condition with `variables` (top-level name → value). A failure (missing
    /// key or variable, wrong type in a `dyn` value, overflow, a limit) means "not decided".
    /// Never traps, and ends within `Limits.maxSteps` steps.
    public func evaluate(_ variables: [String: Value]) -> Result<Bool, EvalError> {
        var evaluator = Evaluator(
            limits: limits,
            globals: globalNames.map { variables[$0] },
            globalNames: globalNames,
            localCount: localCount
        )
        do {
            let value = try evaluator.evaluate(code)
            guard case .bool(let result) = value else {
                return .failure(EvalError("the condition gave \(Evaluator.article(value)), not true or false"))
            }
            return .success(result)
        } catch {
            return .failure(error)
        }
    }

    /// The variable paths the condition reads, sorted and unique: `request.reason`,
    /// `context.on_call` (member chains from a top-level variable; macro variables excluded).
    public var references: [String] { paths }
}
