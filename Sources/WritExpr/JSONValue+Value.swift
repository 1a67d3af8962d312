extension JSONValue {
    /// A condition value (integration context) as JSON: durations and timestamps as seconds.
    public init(_ value: Value) {
        switch value {
        case .null: self = .null
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .string(let s): self = .string(s)
        case .duration(let d): self = .int(d)
        case .timestamp(let t): self = .int(t)
        case .list(let l): self = .array(l.map(JSONValue.init))
        case .map(let m): self = .object(m.mapValues(JSONValue.init))
        }
    }

    /// A context (name → value) as a JSON object.
    public init(_ context: [String: Value]) {
        self = .object(context.mapValues(JSONValue.init))
    }
}

extension Value {
    /// A JSON value as a condition value (what the audit log recorded as `context`): whole
    /// numbers as ints, fractions cut (conditions compare whole numbers).
    public init(_ json: JSONValue) {
        switch json {
        case .null: self = .null
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .number(let d): self = d.isFinite && abs(d) < 9e18 ? .int(Int64(d)) : .null
        case .string(let s): self = .string(s)
        case .array(let a): self = .list(a.map(Value.init))
        case .object(let o): self = .map(o.mapValues(Value.init))
        }
    }
}
