import Testing

/// The two stores the engine and the server are tested on.
public enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite
    case postgresql
    public var testDescription: String { rawValue }
}
