import WritCore

/// What a request's free text may hold, wherever it comes from (writd's socket, a host relaying
/// for its user to writ-server): every unprivileged input has a bounded cost. Each check throws
/// `.refused` with one line saying what to change.
public enum RequestLimits {
    /// A reason or comment, trimmed: at most `limit` Unicode scalars (not characters: one
    /// character can carry thousands of combining marks).
    public static func note(
        _ text: String?,
        _ what: String = "comment",
        limit: Int = 1000
    ) throws(EngineError)
        -> String
    {
        let trimmed = String((text ?? "").trimmingSpaces)
        let length = trimmed.unicodeScalars.count
        guard length <= limit else {
            throw .refused("the \(what) is \(length) characters, over the limit of \(limit) — shorten it")
        }
        return trimmed
    }

    /// `--field name=value`: at most 16, names of lower-case letters, digits and `_` (up to 32),
    /// values up to 200 characters without control characters. Conditions and hooks read them;
    /// a bad one is refused, not dropped.
    public static func fields(_ list: [(name: String, value: String)]) throws(EngineError) -> [String: String] {
        guard list.count <= 16 else { throw .refused("at most 16 --field options") }
        var out: [String: String] = [:]
        for f in list {
            let nameOK =
                (1...32).contains(f.name.utf8.count)
                && f.name.utf8.first.map { $0 >= 97 && $0 <= 122 } == true
                && f.name.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 }
            guard nameOK else {
                throw .refused(
                    "field name \(LogText.escape(f.name, limit: 40)) is not allowed — use lower-case letters, digits and _, e.g. --field ticket=INC-1"
                )
            }
            guard f.value.unicodeScalars.count <= 200,
                !f.value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F })
            else {
                throw .refused("field \(f.name): the value must be at most 200 characters without control characters")
            }
            guard out[f.name] == nil else { throw .refused("field \(f.name) is given twice") }
            out[f.name] = f.value
        }
        return out
    }

    /// A request's or grant's id as Writ makes them (`r_…`, `g_…`): letters, digits and `_`, at
    /// most 64; checked before an id is looked up or written into a log line.
    public static func id(_ text: String) throws(EngineError) -> String {
        guard (1...64).contains(text.utf8.count),
            text.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x5F })
        else {
            throw .refused("\(LogText.escape(text, limit: 40)) is not an id of Writ's (see: writ status)")
        }
        return text
    }

    /// A request's command list: at most 32 commands of 4,096 bytes, 16,384 in all.
    public static func commands(_ commands: [String]?) throws(EngineError) {
        guard let commands else { return }
        guard commands.count <= 32 else {
            throw .refused("the request lists \(commands.count) commands; at most 32 — ask for fewer")
        }
        if let long = commands.first(where: { $0.utf8.count > 4096 }) {
            throw .refused("a command is \(long.utf8.count) bytes long, over the limit of 4096 — shorten it")
        }
        let total = commands.reduce(0) { $0 + $1.utf8.count }
        guard total <= 16_384 else {
            throw .refused("the commands are \(total) bytes in all, over the limit of 16384 — ask for fewer")
        }
    }
}

extension String {
    /// Without leading and trailing white space.
    public var trimmingSpaces: Substring {
        var s = self[...]
        while let f = s.first, f.isWhitespace { s = s.dropFirst() }
        while let l = s.last, l.isWhitespace { s = s.dropLast() }
        return s
    }
}
