/// One instruction of a compiled regular expression.
enum RegexInstruction: Sendable {
    case scalar(UInt32)
    /// Either of two scalars (a letter under `(?i)`).
    case either(UInt32, UInt32)
    /// Any scalar but a newline.
    case any
    /// An index into `RegexProgram.sets`.
    case set(Int)
    /// Continue at both targets.
    case split(Int32, Int32)
    case jump(Int32)
    case assertion(RegexAssertion)
    case match
}

/// A Thompson NFA as a list of instructions, run by `RegexProgram.run` without backtracking.
struct RegexProgram: Sendable {
    var instructions: [RegexInstruction] = []
    var sets: [CharSet] = []
    /// The pattern starts with `^`: only a match starting at the beginning of the text counts.
    var anchored = false

    /// Compiles `node`; refuses programs longer than `maxInstructions` before building them.
    init(_ node: RegexNode, maxInstructions: Int) throws(ExprError) {
        let size = Self.size(of: node, cap: maxInstructions) + 1
        guard size <= maxInstructions else {
            throw ExprError(
                "the pattern compiles to more than \(maxInstructions) instructions: use fewer or smaller {n,m} repeats",
                at: 0
            )
        }
        instructions.reserveCapacity(size)
        emit(node)
        instructions.append(.match)
        anchored = Self.startsAnchored(node)
    }

    private static func startsAnchored(_ node: RegexNode) -> Bool {
        switch node {
        case .assertion(.beginText): true
        case .concat(let items): items.first.map(startsAnchored) ?? false
        default: false
        }
    }

    /// The number of instructions `emit` makes for `node`, saturated just above `cap`.
    static func size(of node: RegexNode, cap: Int) -> Int {
        let limit = cap + 1
        func add(_ a: Int, _ b: Int) -> Int { min(a + b, limit) }
        func multiply(_ a: Int, _ b: Int) -> Int {
            let (product, overflow) = a.multipliedReportingOverflow(by: b)
            return overflow ? limit : min(product, limit)
        }
        switch node {
        case .empty:
            return 0
        case .scalar, .any, .set, .assertion:
            return 1
        case .concat(let items):
            return items.reduce(0) { add($0, size(of: $1, cap: cap)) }
        case .alternation(let branches):
            let total = branches.reduce(0) { add($0, size(of: $1, cap: cap)) }
            return add(total, multiply(branches.count - 1, 2))
        case .repeated(let inner, let low, let high):
            let s = size(of: inner, cap: cap)
            guard let high else {
                return low == 0 ? add(s, 2) : add(multiply(low, s), 1)
            }
            return add(multiply(low, s), multiply(high - low, add(s, 1)))
        }
    }

    private var here: Int32 { Int32(instructions.count) }

    private mutating func emit(_ node: RegexNode) {
        switch node {
        case .empty:
            break
        case .scalar(let v, let fold):
            let variants = fold ? caseVariants(v) : [v]
            switch variants.count {
            case 1: instructions.append(.scalar(v))
            case 2: instructions.append(.either(variants[0], variants[1]))
            default:
                sets.append(CharSet(variants.map { $0...$0 }))
                instructions.append(.set(sets.count - 1))
            }
        case .any:
            instructions.append(.any)
        case .set(let set):
            sets.append(set)
            instructions.append(.set(sets.count - 1))
        case .assertion(let assertion):
            instructions.append(.assertion(assertion))
        case .concat(let items):
            for item in items { emit(item) }
        case .alternation(let branches):
            var jumps: [Int] = []
            for (i, branch) in branches.enumerated() {
                if i == branches.count - 1 {
                    emit(branch)
                } else {
                    let split = instructions.count
                    instructions.append(.split(0, 0))
                    emit(branch)
                    jumps.append(instructions.count)
                    instructions.append(.jump(0))
                    instructions[split] = .split(Int32(split + 1), here)
                }
            }
            for j in jumps { instructions[j] = .jump(here) }
        case .repeated(let inner, let low, let high):
            guard let high else {
                if low == 0 {
                    // L: split(body, end); body; jump L
                    let loop = instructions.count
                    instructions.append(.split(0, 0))
                    emit(inner)
                    instructions.append(.jump(Int32(loop)))
                    instructions[loop] = .split(Int32(loop + 1), here)
                } else {
                    for _ in 0..<(low - 1) { emit(inner) }
                    // L: body; split(L, end)
                    let loop = here
                    emit(inner)
                    instructions.append(.split(loop, here + 1))
                }
                return
            }
            for _ in 0..<low { emit(inner) }
            var splits: [Int] = []
            for _ in 0..<(high - low) {
                splits.append(instructions.count)
                instructions.append(.split(0, 0))
                emit(inner)
            }
            for s in splits { instructions[s] = .split(Int32(s + 1), here) }
        }
    }

    // MARK: - Running

    private static func isWord(_ v: UInt32?) -> Bool {
        guard let v else { return false }
        return (v >= 48 && v <= 57) || (v >= 65 && v <= 90) || (v >= 97 && v <= 122) || v == 95
    }

    static func holds(_ assertion: RegexAssertion, previous: UInt32?, current: UInt32?) -> Bool {
        switch assertion {
        case .beginText: previous == nil
        case .endText: current == nil
        case .wordBoundary: isWord(previous) != isWord(current)
        case .notWordBoundary: isWord(previous) == isWord(current)
        }
    }

    /// Whether `text` contains a match, simulating all NFA states at once (linear in the text
    /// times the program). Returns nil when the work (states visited) would exceed `workLimit`.
    func run(_ text: String, workLimit: Int = .max) -> (matched: Bool?, work: Int) {
        var simulation = Simulation(self)
        var current: [Int32] = []
        var next: [Int32] = []
        current.reserveCapacity(instructions.count)
        next.reserveCapacity(instructions.count)
        var iterator = text.unicodeScalars.makeIterator()
        var previous: UInt32? = nil
        var scalar: UInt32? = iterator.next()?.value
        var position = 0
        while true {
            if !anchored || position == 0 {
                if simulation.add(0, to: &current, generation: position, previous: previous, current: scalar) {
                    return (true, simulation.work)
                }
            }
            guard let c = scalar, !current.isEmpty || !anchored else { return (false, simulation.work) }
            let following = iterator.next()?.value
            simulation.work += 1
            for pc in current {
                let matches: Bool
                switch instructions[Int(pc)] {
                case .scalar(let v): matches = c == v
                case .either(let a, let b): matches = c == a || c == b
                case .any: matches = c != 10
                case .set(let i): matches = sets[i].contains(c)
                default: matches = false
                }
                if matches
                    && simulation.add(pc + 1, to: &next, generation: position + 1, previous: c, current: following)
                {
                    return (true, simulation.work)
                }
            }
            if simulation.work > workLimit { return (nil, simulation.work) }
            swap(&current, &next)
            next.removeAll(keepingCapacity: true)
            previous = c
            scalar = following
            position += 1
        }
    }

    /// The state of one `run`: which instructions each position has visited, and the work.
    private struct Simulation {
        let instructions: [RegexInstruction]
        /// The position at which each instruction was last added (so each is added once per
        /// position: this is what keeps the simulation linear).
        var marks: [Int]
        var stack: [Int32] = []
        var work = 0

        init(_ program: RegexProgram) {
            instructions = program.instructions
            marks = [Int](repeating: -1, count: program.instructions.count)
        }

        /// Adds `start` and everything reachable from it without consuming a scalar to `list`;
        /// true when that reaches `match`.
        mutating func add(
            _ start: Int32,
            to list: inout [Int32],
            generation: Int,
            previous: UInt32?,
            current: UInt32?
        ) -> Bool {
            stack.append(start)
            while let pc = stack.popLast() {
                let index = Int(pc)
                if marks[index] == generation { continue }
                marks[index] = generation
                work += 1
                switch instructions[index] {
                case .match:
                    stack.removeAll(keepingCapacity: true)
                    return true
                case .jump(let target):
                    stack.append(target)
                case .split(let first, let second):
                    stack.append(second)
                    stack.append(first)
                case .assertion(let assertion):
                    if RegexProgram.holds(assertion, previous: previous, current: current) { stack.append(pc + 1) }
                default:
                    list.append(pc)
                }
            }
            return false
        }
    }
}

/// A regular expression (an RE2 subset) matched in time linear in the text: it is compiled to an
/// NFA whose states are all simulated at once, never by backtracking, so patterns like `(a+)+$`
/// cannot blow up. Matches on Unicode scalars. See docs/conditions.md for the syntax.
public struct LinearRegex: Sendable {
    /// The pattern as given.
    public let pattern: String
    let program: RegexProgram

    /// Compiles `pattern` with the standard limits (1,024 bytes, 10,000 instructions). The
    /// error's offset is the position of the problem in the pattern, in Unicode scalars.
    public init(_ pattern: String) throws(ExprError) {
        try self.init(pattern, limits: .standard)
    }

    init(_ pattern: String, limits: Limits) throws(ExprError) {
        var bytes = 0
        var offset = 0
        for scalar in pattern.unicodeScalars {
            bytes += UTF8.width(scalar)
            if bytes > limits.maxPatternBytes {
                throw ExprError("the pattern is longer than \(limits.maxPatternBytes) bytes: shorten it", at: offset)
            }
            offset += 1
        }
        var parser = RegexParser(Array(pattern.unicodeScalars), maxDepth: limits.maxDepth)
        let node = try parser.parse()
        self.pattern = pattern
        self.program = try RegexProgram(node, maxInstructions: limits.maxRegexInstructions)
    }

    /// Whether `text` contains a match anywhere (RE2's PartialMatch, CEL's `matches`); anchor
    /// with `^…$` to match the whole text.
    public func firstMatch(in text: String) -> Bool {
        program.run(text).matched ?? false
    }

    /// `firstMatch(in:)` within `workLimit` simulated states (as `matches` in a condition runs
    /// within the evaluation's steps); nil when the limit was reached first.
    public func firstMatch(in text: String, workLimit: Int) -> Bool? {
        program.run(text, workLimit: workLimit).matched
    }

    /// The number of instructions of the compiled program.
    var size: Int { program.instructions.count }
}

extension LinearRegex: Equatable {
    /// Two regexes are equal when their patterns are: the program is a function of the pattern.
    public static func == (a: LinearRegex, b: LinearRegex) -> Bool { a.pattern == b.pattern }
}
