import WritCore
import WritExpr
import Yams

/// A place in the policy file (1-based, columns in Unicode scalars).
struct Position: Sendable, Equatable, Comparable {
    var line: Int
    var column: Int

    static let start = Position(line: 1, column: 1)

    init(line: Int, column: Int) {
        // libyaml marks are never below 1, but a node built without one must still point somewhere
        // an editor can open.
        self.line = max(1, line)
        self.column = max(1, column)
    }

    init(_ node: Node) {
        if let mark = node.mark {
            self.init(line: mark.line, column: mark.column)
        } else {
            self = .start
        }
    }

    static func < (a: Position, b: Position) -> Bool {
        (a.line, a.column) < (b.line, b.column)
    }
}

/// A value from the file, where it was written, and whether it came from `defaults:` (so a rule
/// broken by defaults alone is reported once, at the defaults, not once per flow).
struct Located<Value> {
    var value: Value
    var position: Position
    var fromDefaults = false
}

/// The entries of one YAML mapping, by key, with the key nodes kept for positions.
struct Fields {
    /// Where the mapping starts: missing keys are reported here.
    var position: Position
    /// Known keys that an unknown key was reported as a likely misspelling of.
    fileprivate(set) var misspelt: Set<String> = []
    /// Whether the mapping had keys that were reported as unknown.
    fileprivate(set) var hasUnknownKeys = false
    private var entries: [String: (key: Node, value: Node)] = [:]

    init(position: Position) {
        self.position = position
    }

    subscript(name: String) -> Node? { entries[name]?.value }

    func key(_ name: String) -> Node? { entries[name]?.key }

    /// Where to point for a problem with the value of `name`: the value, unless it is empty
    /// (libyaml marks an empty value where the next token starts, often on the next line).
    func position(of name: String) -> Position {
        guard let entry = entries[name] else { return position }
        return PolicyParser.isNull(entry.value) ? Position(entry.key) : Position(entry.value)
    }

    fileprivate mutating func set(_ name: String, key: Node, value: Node) {
        entries[name] = (key, value)
    }

    /// A value merged from two mappings (a test case over its defaults).
    mutating func setForCases(_ name: String, value: Node) {
        entries[name] = (value, value)
    }
}

/// Walks the YAML node tree of a policy, collecting every problem as an issue instead of stopping
/// at the first, and producing values only from parts that are valid.
struct PolicyParser {
    let file: String
    private var collected: [(position: Position, message: String)] = []
    /// The file's lines, for positions inside block scalars (`when: |`).
    var lines: [Substring] = []

    /// The text of a 1-based line, or "" past the end.
    func sourceLine(_ line: Int) -> Substring {
        line >= 1 && line <= lines.count ? lines[line - 1] : ""
    }

    init(file: String) {
        self.file = file
    }

    var hasIssues: Bool { !collected.isEmpty }

    /// The issues in file order; issues at the same place keep the order they were found in.
    var issues: [PolicyIssue] {
        collected.enumerated()
            .sorted { a, b in
                a.element.position != b.element.position ? a.element.position < b.element.position : a.offset < b.offset
            }
            .map {
                PolicyIssue(
                    file: file,
                    line: $0.element.position.line,
                    column: $0.element.position.column,
                    message: $0.element.message
                )
            }
    }

    mutating func report(_ message: String, at position: Position) {
        collected.append((position, message))
    }

    mutating func report(_ message: String, at node: Node) {
        report(message, at: Position(node))
    }

    // MARK: Node kinds

    /// An empty value, `~` or `null`, unquoted. Quoted `"null"` is text.
    static func isNull(_ node: Node) -> Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain || scalar.style == .any else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    /// The end of a "must be …" message: ", not a list", ", not 'abc'", ", but it is empty".
    static func found(_ node: Node) -> String {
        isNull(node) ? ", but it is empty" : ", not \(kind(node))"
    }

    /// What a node is, for messages: "a list", "a mapping", "'abc'".
    static func kind(_ node: Node) -> String {
        if isNull(node) { return "empty" }
        switch node {
        case .scalar(let scalar): return "'\(LogText.escape(scalar.string, limit: 40))'"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    // MARK: Mappings and keys

    /// The entries of `node` if it is a mapping; reports what it is otherwise, keys that are not
    /// text, and every key not in `known` (with the closest known key when one is near: typos are
    /// the most common mistake in a hand-written policy).
    /// - Parameters:
    ///   - place: where the mapping is, for "'duration' in flow ops-sudo must be a mapping".
    ///   - position: where to report a value that is not a mapping (`Fields.position(of:)`).
    ///   - keysPlace: where its keys are, for "unknown key 'maximum' in the duration of flow
    ///     ops-sudo"; `place` when nil.
    mutating func fields(
        _ node: Node,
        named name: String,
        in place: String,
        at position: Position,
        keysIn keysPlace: String? = nil,
        known: [String],
        example: String
    ) -> Fields? {
        guard case .mapping(let mapping) = node else {
            report("'\(name)' \(place) must be a mapping, e.g. \(example)\(Self.found(node))", at: position)
            return nil
        }
        var fields = Fields(position: Position(node))
        for (key, value) in mapping {
            guard case .scalar(let scalar) = key, !Self.isNull(key) else {
                report("a key \(place) must be a word\(Self.found(key))", at: key)
                continue
            }
            let word = scalar.string
            if known.contains(word) {
                fields.set(word, key: key, value: value)
            } else {
                report(Self.unknown("key", word, place: keysPlace ?? place, known: known), at: key)
                fields.hasUnknownKeys = true
                if let near = EditDistance.closest(to: word, in: known) { fields.misspelt.insert(near) }
            }
        }
        return fields
    }

    /// Reports a missing required key, unless an unknown key was already reported as its likely
    /// misspelling: one mistake, one message.
    mutating func reportMissing(_ name: String, in fields: Fields, _ message: String) {
        guard !fields.misspelt.contains(name) else { return }
        report(message, at: fields.position)
    }

    /// "unknown key 'aprovers' in flow ops-sudo — did you mean 'approvers'?", or the full list of
    /// choices when nothing is close.
    static func unknown(_ what: String, _ word: String, place: String, known: [String]) -> String {
        let shown = LogText.escape(word, limit: 60)
        if let near = EditDistance.closest(to: word, in: known) {
            return "unknown \(what) '\(shown)' \(place) — did you mean '\(near)'?"
        }
        let choices =
            known.count <= 16 ? known.joined(separator: ", ") : known.prefix(16).joined(separator: ", ") + ", …"
        return "unknown \(what) '\(shown)' \(place) — expected one of: \(choices)"
    }

    // MARK: Scalars

    /// Text: a scalar that is not empty.
    mutating func text(_ fields: Fields, _ name: String, in place: String) -> Located<String>? {
        guard let node = fields[name] else { return nil }
        guard case .scalar(let scalar) = node, !Self.isNull(node), !scalar.string.isEmpty else {
            report("'\(name)' \(place) must be text\(Self.found(node))", at: fields.position(of: name))
            return nil
        }
        return Located(value: scalar.string, position: Position(node))
    }

    /// `true` or `false`. YAML 1.1's `yes`/`no`/`on`/`off` are refused: `no` meaning false is a
    /// classic surprise (the "Norway problem"), and a policy must mean what it reads as.
    mutating func bool(_ fields: Fields, _ name: String, in place: String) -> Located<Bool>? {
        guard let node = fields[name] else { return nil }
        if case .scalar(let scalar) = node, scalar.style == .plain || scalar.style == .any {
            switch scalar.string {
            case "true", "True", "TRUE": return Located(value: true, position: Position(node))
            case "false", "False", "FALSE": return Located(value: false, position: Position(node))
            default: break
            }
        }
        report("'\(name)' \(place) must be true or false\(Self.found(node))", at: fields.position(of: name))
        return nil
    }

    /// A whole number, decimal digits only.
    mutating func integer(_ fields: Fields, _ name: String, in place: String) -> Located<Int>? {
        guard let node = fields[name] else { return nil }
        if case .scalar(let scalar) = node, !scalar.string.isEmpty,
            scalar.string.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
            let value = Int(scalar.string)
        {
            return Located(value: value, position: Position(node))
        }
        report("'\(name)' \(place) must be a whole number\(Self.found(node))", at: fields.position(of: name))
        return nil
    }

    /// A duration as `DurationText` reads it, at least `minimum` seconds and at most the longest
    /// grant the store accepts.
    mutating func duration(
        _ fields: Fields,
        _ name: String,
        in place: String,
        minimum: Int64 = 1
    ) -> Located<Int64>? {
        guard let node = fields[name] else { return nil }
        guard case .scalar(let scalar) = node, !Self.isNull(node) else {
            report(
                "'\(name)' \(place) must be a duration such as 30m, 2h or 1h30m\(Self.found(node))",
                at: fields.position(of: name)
            )
            return nil
        }
        let seconds: Int64
        do {
            seconds = try DurationText.parse(scalar.string)
        } catch {
            report("'\(name)' \(place): \(error.description)", at: node)
            return nil
        }
        if seconds < minimum {
            report("'\(name)' \(place) must be more than 0s", at: node)
            return nil
        }
        if seconds > Policy.longestGrant {
            report(
                "'\(name)' \(place) is \(DurationText.format(seconds)), over the longest grant Writ gives "
                    + "(\(DurationText.format(Policy.longestGrant)))",
                at: node
            )
            return nil
        }
        return Located(value: seconds, position: Position(node))
    }

    // MARK: Lists

    /// A list of words (no spaces or control characters), each with its position.
    /// - Parameter allowEmpty: whether `[]` is a valid value.
    mutating func words(
        _ fields: Fields,
        _ name: String,
        in place: String,
        example: String,
        allowEmpty: Bool = true
    ) -> [Located<String>]? {
        guard let node = fields[name] else { return nil }
        return items(
            node,
            position: fields.position(of: name),
            name: name,
            in: place,
            example: example,
            allowEmpty: allowEmpty
        ) {
            parser,
            item,
            label in
            parser.word(item, label: label)
        }
    }

    /// A list whose items `item` reads; reports a value that is not a list, with a hint to wrap
    /// a single value in brackets (the most common mistake). Returns nil if any item is bad.
    mutating func items<Item>(
        _ node: Node,
        position: Position,
        name: String,
        in place: String,
        example: String,
        allowEmpty: Bool,
        item read: (inout PolicyParser, Node, String) -> Item?
    ) -> [Item]? {
        guard case .sequence(let sequence) = node else {
            var message = "'\(name)' \(place) must be a list, e.g. \(example)\(Self.found(node))"
            if case .scalar(let scalar) = node, !Self.isNull(node) {
                message += ": write [\(LogText.escape(scalar.string, limit: 60))] for a single item"
            }
            report(message, at: position)
            return nil
        }
        if sequence.isEmpty && !allowEmpty {
            report("'\(name)' \(place) is an empty list: give at least one item, e.g. \(example)", at: node)
            return nil
        }
        var result: [Item] = []
        var allValid = true
        for (i, element) in sequence.enumerated() {
            if let value = read(&self, element, "item \(i + 1) of '\(name)' \(place)") {
                result.append(value)
            } else {
                allValid = false
            }
        }
        return allValid ? result : nil
    }

    /// One word: text without whitespace or control characters (user, group and host names never
    /// have them, and they would be a way to forge log lines).
    /// - Parameter position: where to report an empty value (the key's place, for a mapping value).
    mutating func word(_ node: Node, label: String, position: Position? = nil) -> Located<String>? {
        guard case .scalar(let scalar) = node, !Self.isNull(node), !scalar.string.isEmpty else {
            report("\(label) must be a name\(Self.found(node))", at: position ?? Position(node))
            return nil
        }
        if scalar.string.unicodeScalars.contains(where: {
            $0.properties.isWhitespace || $0.value < 0x20 || (0x7F...0x9F).contains($0.value)
        }) {
            report(
                "\(label) is '\(LogText.escape(scalar.string, limit: 60))': names must not contain spaces or control characters",
                at: node
            )
            return nil
        }
        return Located(value: scalar.string, position: Position(node))
    }
}

/// Distance between words, for "did you mean" hints.
enum EditDistance {
    /// The known word nearest to `word` within two edits (insertions, deletions, substitutions or
    /// swaps of neighbours, ignoring case), the first in `known` on a tie; nil when none is that near.
    static func closest(to word: String, in known: [String], within limit: Int = 2) -> String? {
        var best: (word: String, distance: Int)? = nil
        for candidate in known {
            let d = distance(word.lowercased(), candidate.lowercased())
            // Two edits turn "id" into "to": only suggest when something of the word is left.
            guard d <= limit, d < word.unicodeScalars.count else { continue }
            if d < (best?.distance ?? Int.max) { best = (candidate, d) }
        }
        return best?.word
    }

    /// Optimal string alignment distance over Unicode scalars (the conditions' own).
    static func distance(_ a: String, _ b: String) -> Int { Suggestions.editDistance(a, b) }
}
