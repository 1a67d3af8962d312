/// A recursive-descent parser (precedence climbing for binary operators) over `Lexer`.
///
/// Every recursion is counted before it happens, and every node's height is checked when it is
/// made, so `((((…`, `!!!!…` or `a.b.c.d…` of any length is an error rather than a stack
/// overflow, and the checker and evaluator (which recurse over the tree) are bounded too.
struct Parser {
    private var lexer: Lexer
    private var token: Token
    private let limits: Limits
    private var depth = 0

    private init(_ scalars: [Unicode.Scalar], limits: Limits) throws(ExprError) {
        lexer = Lexer(scalars, limits: limits)
        self.limits = limits
        token = try lexer.next()
    }

    /// Parses a whole condition.
    static func parse(_ scalars: [Unicode.Scalar], limits: Limits) throws(ExprError) -> Node {
        var parser = try Parser(scalars, limits: limits)
        if parser.token.kind == .end {
            throw ExprError(
                "the condition is empty: write an expression that is true or false, e.g. request.duration <= duration(\"1h\")",
                at: 0
            )
        }
        let node = try parser.expression()
        guard parser.token.kind == .end else {
            throw ExprError(
                "unexpected \(parser.token.spelling) after a complete expression: join conditions with && or ||",
                at: parser.token.offset
            )
        }
        return node
    }

    // MARK: - Helpers

    private mutating func advance() throws(ExprError) {
        token = try lexer.next()
    }

    private mutating func enter(at offset: Int) throws(ExprError) {
        depth += 1
        if depth > limits.maxDepth { throw tooDeep(at: offset) }
    }

    private mutating func leave() {
        depth -= 1
    }

    private func tooDeep(at offset: Int) -> ExprError {
        ExprError(
            "the condition is nested more than \(limits.maxDepth) levels deep: split it into simpler conditions",
            at: offset
        )
    }

    /// A node over `children`, refused when it would make the tree too high.
    private func make(
        _ kind: Node.Kind,
        at offset: Int,
        over children: [Node],
        errorAt: Int? = nil
    ) throws(ExprError) -> Node {
        var height = 0
        for child in children { height = max(height, child.height) }
        height += 1
        if height > limits.maxDepth { throw tooDeep(at: errorAt ?? offset) }
        return Node(kind: kind, offset: offset, height: height)
    }

    private mutating func expect(_ kind: Token.Kind, _ message: @autoclosure () -> String) throws(ExprError) {
        guard token.kind == kind else {
            throw ExprError("\(message()), found \(token.spelling)", at: token.offset)
        }
        try advance()
    }

    // MARK: - Grammar

    /// `or ('?' or ':' expression)?`
    private mutating func expression() throws(ExprError) -> Node {
        try enter(at: token.offset)
        defer { leave() }
        let condition = try binary(1)
        guard token.kind == .question else { return condition }
        let question = token.offset
        try advance()
        let then = try binary(1)
        try expect(.colon, "expected ':' and the value when false after the '?' at character \(question + 1)")
        let otherwise = try expression()
        return try make(
            .conditional(condition, then, otherwise),
            at: condition.offset,
            over: [condition, then, otherwise],
            errorAt: question
        )
    }

    private static func binaryOperator(_ kind: Token.Kind) -> (precedence: Int, BinaryOperator?)? {
        switch kind {
        case .orOr: (1, nil)
        case .andAnd: (2, nil)
        case .equalEqual: (3, .equal)
        case .notEqual: (3, .notEqual)
        case .less: (3, .less)
        case .lessEqual: (3, .lessEqual)
        case .greater: (3, .greater)
        case .greaterEqual: (3, .greaterEqual)
        case .identifier("in"): (3, .in)
        case .plus: (4, .add)
        case .minus: (4, .subtract)
        case .star: (5, .multiply)
        case .slash: (5, .divide)
        case .percent: (5, .remainder)
        default: nil
        }
    }

    /// Precedence climbing. The right operand recurses with a higher minimum precedence, so
    /// this recursion is at most five deep per level of `expression`.
    private mutating func binary(_ minimum: Int) throws(ExprError) -> Node {
        var left = try unary()
        while let (precedence, op) = Self.binaryOperator(token.kind), precedence >= minimum {
            let operatorOffset = token.offset
            let operatorKind = token.kind
            try advance()
            guard let op else {
                // && or ||: gather the whole chain into one flat node.
                var operands = [left, try binary(precedence + 1)]
                while token.kind == operatorKind {
                    try advance()
                    operands.append(try binary(precedence + 1))
                }
                let kind: Node.Kind = operatorKind == .andAnd ? .and(operands) : .or(operands)
                left = try make(kind, at: left.offset, over: operands, errorAt: operatorOffset)
                continue
            }
            let right = try binary(precedence + 1)
            left = try make(
                .binary(op, left, right, operatorOffset: operatorOffset),
                at: left.offset,
                over: [left, right],
                errorAt: operatorOffset
            )
        }
        return left
    }

    private mutating func unary() throws(ExprError) -> Node {
        let start = token.offset
        switch token.kind {
        case .bang:
            try enter(at: start)
            defer { leave() }
            try advance()
            let operand = try unary()
            return try make(.not(operand), at: start, over: [operand])
        case .minus:
            try enter(at: start)
            defer { leave() }
            try advance()
            let literalOffset = token.offset
            let operand = try unary()
            // `-9223372036854775808` is a literal, not the negation of an out-of-range one.
            if case .int(let magnitude) = operand.kind, operand.offset == literalOffset {
                let value = magnitude == 1 << 63 ? Int64.min : -Int64(magnitude)
                return Node(kind: .negativeInt(value), offset: start, height: 1)
            }
            return try make(.negate(operand), at: start, over: [operand])
        default:
            return try postfix()
        }
    }

    /// A primary followed by `.name`, `.name(args)` and `[index]`.
    private mutating func postfix() throws(ExprError) -> Node {
        var node = try primary()
        while true {
            switch token.kind {
            case .dot:
                try advance()
                guard case .identifier(let name) = token.kind else {
                    throw ExprError(
                        "expected a field or method name after '.', found \(token.spelling)",
                        at: token.offset
                    )
                }
                let nameOffset = token.offset
                try advance()
                if token.kind == .leftParen {
                    let arguments = try argumentList(of: name)
                    node = try make(
                        .call(target: node, name: name, nameOffset: nameOffset, arguments: arguments),
                        at: node.offset,
                        over: [node] + arguments,
                        errorAt: nameOffset
                    )
                } else {
                    node = try make(
                        .member(node, name, nameOffset: nameOffset),
                        at: node.offset,
                        over: [node],
                        errorAt: nameOffset
                    )
                }
            case .leftBracket:
                let open = token.offset
                try advance()
                let index = try expression()
                try expect(.rightBracket, "expected ']' to close the '[' at character \(open + 1)")
                node = try make(.index(node, index), at: node.offset, over: [node, index], errorAt: open)
            default:
                return node
            }
        }
    }

    private static let reserved: Set<String> = [
        "as", "break", "const", "continue", "else", "for", "function", "if", "import", "let", "loop",
        "package", "namespace", "return", "var", "void", "while",
    ]

    private mutating func primary() throws(ExprError) -> Node {
        let start = token.offset
        switch token.kind {
        case .int(let magnitude):
            try advance()
            return Node(kind: .int(magnitude), offset: start, height: 1)
        case .string(let text, let offsets):
            try advance()
            return Node(kind: .string(text, offsets: offsets), offset: start, height: 1)
        case .identifier(let name):
            switch name {
            case "true", "false":
                try advance()
                return Node(kind: .bool(name == "true"), offset: start, height: 1)
            case "null":
                try advance()
                return Node(kind: .null, offset: start, height: 1)
            case "in":
                throw ExprError("'in' needs a value on its left, e.g. \"sre\" in request.groups", at: start)
            default:
                if Self.reserved.contains(name) {
                    throw ExprError(
                        "'\(name)' is a reserved word: conditions are single expressions; use a ? b : c to choose",
                        at: start
                    )
                }
            }
            try advance()
            if token.kind == .leftParen {
                let arguments = try argumentList(of: name)
                return try make(
                    .call(target: nil, name: name, nameOffset: start, arguments: arguments),
                    at: start,
                    over: arguments
                )
            }
            return Node(kind: .identifier(name), offset: start, height: 1)
        case .leftParen:
            try advance()
            let inner = try expression()
            try expect(.rightParen, "expected ')' to close the '(' at character \(start + 1)")
            return inner
        case .leftBracket:
            return try list()
        case .leftBrace:
            return try map()
        case .dot:
            throw ExprError("a leading '.' is not supported: write the name without it", at: start)
        case .end:
            throw ExprError("the condition ends too early: a value is missing at the end", at: start)
        default:
            throw ExprError(
                "expected a value (a name, number, string, '(', '[' or '{'), found \(token.spelling)",
                at: start
            )
        }
    }

    /// `(a, b, …)` after a function or method name; the current token is `(`.
    private mutating func argumentList(of name: String) throws(ExprError) -> [Node] {
        let open = token.offset
        try advance()
        var arguments: [Node] = []
        if token.kind == .rightParen {
            try advance()
            return arguments
        }
        while true {
            if arguments.count >= limits.maxLiteralElements {
                throw ExprError("\(name)() has more than \(limits.maxLiteralElements) arguments", at: token.offset)
            }
            arguments.append(try expression())
            if token.kind == .comma {
                try advance()
                continue
            }
            try expect(.rightParen, "expected ',' or ')' to close the '(' of \(name)() at character \(open + 1)")
            return arguments
        }
    }

    private mutating func list() throws(ExprError) -> Node {
        let open = token.offset
        try advance()
        var elements: [Node] = []
        while token.kind != .rightBracket {
            if elements.count >= limits.maxLiteralElements {
                throw ExprError(
                    "this list has more than \(limits.maxLiteralElements) elements: shorten it",
                    at: open
                )
            }
            elements.append(try expression())
            if token.kind == .comma {
                try advance()
            } else if token.kind != .rightBracket {
                throw ExprError(
                    "expected ',' or ']' to close the '[' at character \(open + 1), found \(token.spelling)",
                    at: token.offset
                )
            }
        }
        try advance()
        return try make(.list(elements), at: open, over: elements)
    }

    private mutating func map() throws(ExprError) -> Node {
        let open = token.offset
        try advance()
        var entries: [(key: Node, value: Node)] = []
        var children: [Node] = []
        while token.kind != .rightBrace {
            if entries.count >= limits.maxLiteralElements {
                throw ExprError(
                    "this map has more than \(limits.maxLiteralElements) entries: shorten it",
                    at: open
                )
            }
            let key = try expression()
            try expect(.colon, "expected ':' between a map key and its value")
            let value = try expression()
            entries.append((key, value))
            children.append(key)
            children.append(value)
            if token.kind == .comma {
                try advance()
            } else if token.kind != .rightBrace {
                throw ExprError(
                    "expected ',' or '}' to close the '{' at character \(open + 1), found \(token.spelling)",
                    at: token.offset
                )
            }
        }
        try advance()
        return try make(.map(entries), at: open, over: children)
    }
}
