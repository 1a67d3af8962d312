import WritPolicy

/// The issues `Policy.parse` reports for `yaml`, as "line:column: message" (the file name is
/// tested once, in `PolicyIssueTests`). Empty when the policy parses.
func issues(_ yaml: String) -> [String] {
    do {
        _ = try Policy.parse(yaml, file: "policy.yaml")
        return []
    } catch {
        return error.issues.map { "\($0.line):\($0.column): \($0.message)" }
    }
}

/// A flow that parses, for tests that change one thing about it (lines 3–6 of `minimalPolicy`).
let minimalFlow = """
      - name: ops-sudo
        capability: sudo
        requesters: {users: [alice]}
        approvers: {users: [bob]}
    """

let minimalPolicy = """
    version: 1
    flows:
    \(minimalFlow)
    """

/// The repository's `examples/policy.yaml`, found from this file's path.
let examplePolicyPath: String = {
    let file = #filePath
    guard let range = file.firstRange(of: "/Tests/WritPolicyTests/") else { return "examples/policy.yaml" }
    return String(file[..<range.lowerBound]) + "/examples/policy.yaml"
}()
