/// One problem in a policy file, at the place an editor can jump to.
public struct PolicyIssue: Sendable, Equatable, CustomStringConvertible {
    /// The file name as given to `Policy.parse` or `Policy.load`.
    public var file: String
    /// 1-based line.
    public var line: Int
    /// 1-based column, counted in Unicode scalars (as libyaml counts them).
    public var column: Int
    /// What is wrong and what to write instead.
    public var message: String

    public init(file: String, line: Int, column: Int, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    /// `file:line:column: message`, the form compilers use, so editors and CI annotate the line.
    public var description: String { "\(file):\(line):\(column): \(message)" }
}

/// Every problem found in a policy file, sorted by position.
///
/// All problems are collected rather than the first only: an admin fixing a policy in CI should
/// not need one round trip per typo.
public struct PolicyErrors: Error, Sendable, CustomStringConvertible {
    public var issues: [PolicyIssue]

    public init(issues: [PolicyIssue]) {
        self.issues = issues
    }

    /// One issue per line.
    public var description: String { issues.map(\.description).joined(separator: "\n") }
}
