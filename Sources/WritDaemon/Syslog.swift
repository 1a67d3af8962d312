import Glibc

/// syslog(3) at LOG_AUTHPRIV, the facility for security events. The text is always passed as
/// an argument to "%s", never as the format.
enum Syslog {
    /// openlog(3) keeps the pointer, so the identity must outlive every call: a literal passed
    /// directly is a temporary in debug builds, and syslog then names writd with garbage.
    nonisolated(unsafe) static let identity: UnsafeMutablePointer<CChar>? = strdup("writd")

    static func open() {
        openlog(identity, LOG_PID | LOG_NDELAY, LOG_AUTHPRIV)
    }

    static func log(_ priority: Int32, _ message: String) {
        message.withCString { text in
            withVaList([text]) { vsyslog(LOG_AUTHPRIV | priority, "%s", $0) }
        }
    }
}
