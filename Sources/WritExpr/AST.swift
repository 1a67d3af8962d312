/// A parsed, not yet checked, condition.
struct Node: Sendable {
    indirect enum Kind: Sendable {
        case null
        case bool(Bool)
        /// A literal's magnitude; the checker refuses 2^63 unless the parser folded a `-` into it.
        case int(UInt64)
        /// A negative literal folded with its `-`.
        case negativeInt(Int64)
        /// The text and the source offset of each scalar (plus the closing quote).
        case string(String, offsets: [Int])
        case identifier(String)
        case list([Node])
        case map([(key: Node, value: Node)])
        /// `base.name`; the offset of `name` is `nameOffset`.
        case member(Node, String, nameOffset: Int)
        case index(Node, Node)
        /// `name(args)` (no target) or `target.name(args)`.
        case call(target: Node?, name: String, nameOffset: Int, arguments: [Node])
        case not(Node)
        case negate(Node)
        /// `a && b && c`, kept flat: a long chain does not deepen the tree.
        case and([Node])
        /// `a || b || c`, kept flat.
        case or([Node])
        case binary(BinaryOperator, Node, Node, operatorOffset: Int)
        case conditional(Node, Node, Node)
    }

    var kind: Kind
    /// Where the node starts (for operators, where the operator is), in Unicode scalars.
    var offset: Int
    /// Levels of nodes below and including this one.
    var height: Int
}

/// The binary operators other than `&&` and `||`.
enum BinaryOperator: Sendable, Equatable {
    case equal
    case notEqual
    case less
    case lessEqual
    case greater
    case greaterEqual
    case `in`
    case add
    case subtract
    case multiply
    case divide
    case remainder

    var symbol: String {
        switch self {
        case .equal: "=="
        case .notEqual: "!="
        case .less: "<"
        case .lessEqual: "<="
        case .greater: ">"
        case .greaterEqual: ">="
        case .in: "in"
        case .add: "+"
        case .subtract: "-"
        case .multiply: "*"
        case .divide: "/"
        case .remainder: "%"
        }
    }

    var isOrdering: Bool {
        switch self {
        case .less, .lessEqual, .greater, .greaterEqual: true
        default: false
        }
    }
}
