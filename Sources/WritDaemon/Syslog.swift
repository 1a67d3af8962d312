import Glibc

/// syslog(3) at LOG_AUTHPRIV, the facility for security events. The text is always passed as
/// an argument to "%s", never as the format.
enum Syslog {
    static func open() {
        openlog("writd", LOG_PID | LOG_NDELAY, LOG_AUTHPRIV)
    }

    static func log(_ priority: Int32, _ message: String) {
        message.withCString { text in
            withVaList([text]) { vsyslog(LOG_AUTHPRIV | priority, "%s", $0) }
        }
    }
}
