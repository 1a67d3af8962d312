import WritCore

/// One audited event: what happened, who did it, when, and details as ordered name/value pairs.
public struct AuditEvent: Sendable, Equatable {
    public var time: Int64
    public var event: String
    public var actor: String
    public var fields: [Field]

    public struct Field: Sendable, Equatable {
        public var name: String
        public var value: String
        public init(_ name: String, _ value: String) {
            self.name = name
            self.value = value
        }
    }

    /// A record's own id (`e_` and 16 hex digits): what the outboxes use to append each record once.
    public static func newID() -> String { RandomID.make("e_", hexDigits: 16) }

    public init(time: Int64, event: String, actor: String, fields: [Field] = []) {
        self.time = time
        self.event = event
        self.actor = actor
        self.fields = fields
    }
}

/// The line format of the audit log: one JSON object per line, keys in a fixed order, so a
/// record's bytes — and so its hash — are reproducible:
///
///     {"seq":7,"prev":"<64 hex>","time":1795612350,"event":"grant.add","actor":"cli:root","grant":"g_…",…}
///
/// `prev` is the SHA-256 of the previous line's bytes (without its newline); the first record's is
/// 64 zeros. User-supplied text is escaped by `JSONText.quote`: no record spans two lines.
public enum AuditLine {
    public static let genesis = String(repeating: "0", count: 64)

    public static func render(seq: Int64, prev: String, _ e: AuditEvent) -> String {
        var out = "{\"seq\":\(seq),\"prev\":\"\(prev)\",\"time\":\(e.time),\"event\":\(JSONText.quote(e.event))"
        out += ",\"actor\":\(JSONText.quote(e.actor))"
        for f in e.fields where !["seq", "prev", "time", "event", "actor"].contains(f.name) {
            out += ",\(JSONText.quote(f.name)):\(JSONText.quote(f.value))"
        }
        return out + "}"
    }

    /// The chain fields of a line this module wrote: `seq` and `prev`, or nil.
    public static func chainFields(_ line: String) -> (seq: Int64, prev: String)? {
        let bytes = Array(line.utf8)
        let head = Array("{\"seq\":".utf8)
        guard bytes.starts(with: head), bytes.last == UInt8(ascii: "}") else { return nil }
        var i = head.count
        var seq: Int64 = 0
        let digitsStart = i
        while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39, i - digitsStart < 18 {
            seq = seq * 10 + Int64(bytes[i] - 0x30)
            i += 1
        }
        guard i > digitsStart else { return nil }
        let mid = Array(",\"prev\":\"".utf8)
        guard bytes[i...].starts(with: mid) else { return nil }
        i += mid.count
        guard i + 65 <= bytes.count, bytes[i + 64] == UInt8(ascii: "\"") else { return nil }
        let hex = bytes[i..<(i + 64)]
        guard hex.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) else { return nil }
        return (seq, String(decoding: hex, as: UTF8.self))
    }
}
