import WritCore

/// Why a hook gave no usable answer. writd treats every failure the same way (an `on_request`
/// hook that fails leaves the request to people; a notification that fails is logged); the case
/// says what to fix. Texts never contain the spec's environment values.
public enum HookFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// The hook was not started: a path check failed, the hook user is unusable, the input is too
    /// large, or execve failed. The text says why and what to fix.
    case notRunnable(String)
    /// It ran longer than its timeout (or left something holding its output open that long) and
    /// its process group was killed.
    case timedOut(milliseconds: Int)
    /// It exited with a non-zero status; `stderr` is the end of what it wrote there (escaped, at
    /// most 1 KiB).
    case exited(status: Int32, stderr: String)
    /// A signal ended it; `stderr` as for `exited`.
    case signalled(signal: Int32, stderr: String)
    /// It wrote more than `limit` bytes to stdout and was killed.
    case outputTooLarge(limit: Int)
    /// Its stdout is not a valid decision; the text says what was wrong.
    case garbage(String)

    /// One line for the log: what happened and what to do about it.
    public var description: String {
        switch self {
        case .notRunnable(let why):
            "hook not run: \(why)"
        case .timedOut(let milliseconds):
            "hook did not finish within \(milliseconds) ms and was killed; make it faster (or give network "
                + "calls their own shorter timeout) or raise its timeout in the policy"
        case .exited(let status, let stderr):
            "hook exited with status \(status)\(Self.stderrSuffix(stderr)); run it by hand with the same input "
                + "to see why"
        case .signalled(let signal, let stderr):
            "hook was killed by signal \(signal) (\(Self.signalName(signal)))\(Self.stderrSuffix(stderr)); "
                + "run it by hand with the same input to see why"
        case .outputTooLarge(let limit):
            "hook wrote more than \(limit) bytes to stdout and was killed; a decision is one small JSON object "
                + "(send debugging output to stderr)"
        case .garbage(let what):
            "hook output is not a decision: \(what); see docs/hooks.md for the format"
        }
    }

    static func stderrSuffix(_ stderr: String) -> String {
        stderr.isEmpty ? " and wrote nothing to stderr" : ", stderr: \"\(stderr)\""
    }

    static func signalName(_ signal: Int32) -> String {
        let names: [Int32: String] = [
            1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS",
            8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE", 14: "SIGALRM",
            15: "SIGTERM", 24: "SIGXCPU", 25: "SIGXFSZ", 31: "SIGSYS",
        ]
        return names[signal] ?? "signal \(signal)"
    }
}

/// Text from hooks and paths, made safe for one log line.
enum HookText {
    /// Control characters, quotes and backslashes escaped (WritCore's `LogText`), cut at `limit`
    /// characters.
    static func escape(_ text: String, limit: Int = 200) -> String {
        LogText.escape(text, limit: limit)
    }

    /// The end of a hook's stderr for an error message: decoded leniently (invalid UTF-8 becomes
    /// U+FFFD), trailing whitespace dropped, escaped, and at most `limit` bytes of UTF-8, keeping
    /// the end (where the error usually is) behind a leading `…`.
    static func tail(_ bytes: [UInt8], limit: Int = 1024) -> String {
        var text = String(decoding: bytes, as: UTF8.self)
        while let last = text.unicodeScalars.last, last.properties.isWhitespace {
            text.unicodeScalars.removeLast()
        }
        let escaped = LogText.escape(text, limit: Int.max)
        if escaped.utf8.count <= limit { return escaped }
        var scalars = Substring(escaped).unicodeScalars
        var size = escaped.utf8.count
        let marker = "…"
        while size > limit - marker.utf8.count, let first = scalars.first {
            size -= String(first).utf8.count
            scalars.removeFirst()
        }
        return marker + String(scalars)
    }
}
