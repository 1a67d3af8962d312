/// A checked condition, ready to evaluate: names resolved to slots, patterns compiled, literal
/// `duration("…")`, `timestamp("…")` and time zones folded into constants.
indirect enum Code: Sendable {
    case constant(Value)
    /// A top-level variable: index into the evaluation's globals.
    case global(Int)
    /// A macro's variable: index into the evaluation's locals (its nesting level).
    case local(Int)
    /// `base.field`; `label` names the base in messages (`request`, `context`).
    case select(Code, field: String, label: String)
    /// `has(base.field)`.
    case has(Code, field: String, label: String)
    case index(Code, Code, label: String)
    case list([Code])
    case map([(key: Code, value: Code)])
    case not(Code)
    case negate(Code)
    case and([Code])
    case or([Code])
    case conditional(Code, Code, Code)
    case binary(BinaryOperator, Code, Code)
    /// A function; a method's receiver is the first argument.
    case call(Builtin, [Code])
    case matches(Code, LinearRegex)
    /// `range.macro(variable, body)`; the variable lives in locals[slot].
    case comprehension(Macro, range: Code, slot: Int, body: Code)
}

/// The functions and methods the language has (other than `matches` and the macros).
enum Builtin: Sendable, Equatable {
    case size
    case startsWith
    case endsWith
    case contains
    case lowerAscii
    case upperAscii
    case duration
    case timestamp
    case int
    case string
    /// With the zone folded to seconds east of UTC; nil: the zone is the second argument.
    case timePart(TimePart, zoneOffset: Int64?)
}

/// The timestamp accessors.
enum TimePart: String, Sendable, Equatable {
    case getHours
    case getMinutes
    case getDayOfWeek
    case getDate
    case getMonth
    case getFullYear
}

/// The macros over lists (and map keys).
enum Macro: String, Sendable {
    case exists
    case all
    case existsOne = "exists_one"
    case filter
    case map
}
