/// One step of a store's schema. Each store has its own ordered list; a store applies the steps
/// it has not applied, in order, in one transaction at start, and records the version. A store
/// whose version is above the last step this build knows was written by a newer Writ: it is
/// refused, never written.
public struct Migration: Sendable {
    public var version: Int
    public var summary: String
    /// One statement each (PostgreSQL's extended protocol runs one at a time).
    public var statements: [String]

    public init(version: Int, summary: String, statements: [String]) {
        self.version = version
        self.summary = summary
        self.statements = statements
    }

    /// Checks that a list is numbered 1, 2, 3… (a gap or a repeat is a programming error).
    public static func check(_ list: [Migration]) {
        for (i, m) in list.enumerated() {
            precondition(m.version == i + 1, "migration \(m.version) is out of order")
        }
    }

    static func newerSchema(_ store: String, found: Int, known: Int) -> EngineError {
        .schema(
            "\(store) has engine schema \(found), newer than this build's \(known): upgrade Writ here before it uses that store"
        )
    }
}
