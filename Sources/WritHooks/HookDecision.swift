import WritExpr

/// What an `on_request` hook decided: its stdout, checked against protocol version 1.
public struct HookDecision: Sendable, Equatable {
    /// The three answers a hook can give.
    public enum Kind: String, Sendable {
        /// Grant the request now (for `duration` when given).
        case approve
        /// Refuse it now.
        case deny
        /// Leave it to the flow's approvers (plus `addApprovers`).
        case `defer`
    }

    /// The answer.
    public var kind: Kind
    /// Why, shown to people and audited: trimmed, at most 500 characters, no control characters.
    /// Never empty for `approve` and `deny`; may be empty for `defer`.
    public var reason: String
    /// For `approve` only: a shorter grant than requested, in seconds (positive).
    public var duration: Int64?
    /// For `defer` only: more people who may approve, by account name.
    public var addApprovers: [String]

    /// The longest reason a hook may give (Unicode scalars), like a requester's.
    public static let reasonLimit = 500
    /// The most approvers one decision may add.
    public static let approverLimit = 20
    /// The most bytes a hook may write to stdout.
    public static let outputLimit = 64 * 1024

    /// A decision; see the properties.
    public init(kind: Kind, reason: String, duration: Int64? = nil, addApprovers: [String] = []) {
        self.kind = kind
        self.reason = reason
        self.duration = duration
        self.addApprovers = addApprovers
    }

    /// Parses and checks a hook's stdout: exactly one JSON object with a known `decision`; the
    /// optional keys of the right types and allowed with that decision; an optional `version` of
    /// 1; unknown keys ignored. Anything else is `.garbage` saying what was wrong (or
    /// `.outputTooLarge` past 64 KiB). Whether `duration` shortens the request is checked by
    /// `HookRunner.decide`, which knows the request.
    public static func parse(_ stdout: [UInt8]) -> Result<HookDecision, HookFailure> {
        if stdout.count > outputLimit { return .failure(.outputTooLarge(limit: outputLimit)) }
        let value: JSONValue
        switch JSONValue.parse(stdout) {
        case .success(let parsed): value = parsed
        case .failure(let error): return .failure(.garbage(error.message))
        }
        switch check(value) {
        case .success(let decision): return .success(decision)
        case .failure(let error): return .failure(.garbage(error.message))
        }
    }

    private static func check(_ value: JSONValue) -> Result<HookDecision, JSONSyntaxError> {
        func bad(_ message: String) -> Result<HookDecision, JSONSyntaxError> {
            .failure(JSONSyntaxError(message: message))
        }
        guard case .object(let object) = value else {
            return bad("the output is \(value.kindDescription), expected a JSON object like {\"decision\": \"defer\"}")
        }
        if let version = present(object["version"]), version != .int(Int64(HookInput.protocolVersion)) {
            return bad("\"version\" is \(describe(version)); this writd speaks version \(HookInput.protocolVersion)")
        }

        guard let decisionValue = present(object["decision"]) else {
            return bad("no \"decision\"; expected \"approve\", \"deny\" or \"defer\"")
        }
        guard case .string(let name) = decisionValue, let kind = Kind(rawValue: name) else {
            return bad("\"decision\" is \(describe(decisionValue)); expected \"approve\", \"deny\" or \"defer\"")
        }

        var reason = ""
        if let reasonValue = present(object["reason"]) {
            guard case .string(let text) = reasonValue else {
                return bad("\"reason\" is \(describe(reasonValue)), expected a string")
            }
            reason = trimmed(text)
        }
        if reason.unicodeScalars.contains(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }) {
            return bad("\"reason\" contains control characters (newlines, tabs, …); write one line")
        }
        let length = reason.unicodeScalars.count
        if length > reasonLimit {
            return bad("\"reason\" is \(length) characters, over the limit of \(reasonLimit)")
        }
        if reason.isEmpty && kind != .defer {
            return bad("\"\(name)\" needs a \"reason\" (people see it and it is audited)")
        }

        var duration: Int64?
        if let durationValue = present(object["duration"]) {
            guard kind == .approve else { return bad("\"duration\" is only allowed with \"approve\"") }
            guard case .int(let seconds) = durationValue, seconds > 0 else {
                return bad("\"duration\" is \(describe(durationValue)), expected a positive whole number of seconds")
            }
            duration = seconds
        }

        var approvers: [String] = []
        if let approversValue = present(object["add_approvers"]) {
            guard kind == .defer else { return bad("\"add_approvers\" is only allowed with \"defer\"") }
            guard case .array(let elements) = approversValue else {
                return bad("\"add_approvers\" is \(describe(approversValue)), expected an array of user names")
            }
            if elements.count > approverLimit {
                return bad("\"add_approvers\" has \(elements.count) names, over the limit of \(approverLimit)")
            }
            for element in elements {
                guard case .string(let user) = element, isAccountName(user) else {
                    return bad("\"add_approvers\" holds \(describe(element)), expected user names")
                }
                if !approvers.contains(user) { approvers.append(user) }
            }
        }
        return .success(HookDecision(kind: kind, reason: reason, duration: duration, addApprovers: approvers))
    }

    /// `value` unless it is absent or `null` (both mean "not given").
    private static func present(_ value: JSONValue?) -> JSONValue? {
        if let value, value != .null { return value }
        return nil
    }

    /// A value as an error message shows it: short strings quoted, others by kind.
    private static func describe(_ value: JSONValue) -> String {
        switch value {
        case .string(let text): "\"" + HookText.escape(text, limit: 40) + "\""
        case .int(let number): String(number)
        case .bool(let flag): String(flag)
        default: value.kindDescription
        }
    }

    private static func trimmed(_ text: String) -> String {
        var scalars = Substring(text).unicodeScalars
        while let first = scalars.first, first.properties.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.properties.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }

    /// A user name as the policy accepts one: 1 to 256 bytes, no whitespace or control characters.
    private static func isAccountName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 256
            && !name.unicodeScalars.contains(where: {
                $0.properties.isWhitespace || $0.value < 0x20 || (0x7F...0x9F).contains($0.value)
            })
    }
}
