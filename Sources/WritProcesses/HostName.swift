import Glibc

/// This host's kernel name (`uname -n`), as flows' `hosts:` patterns and grants see it.
public enum HostName {
    public static func current() -> String {
        var u = utsname()
        guard uname(&u) == 0 else { return "localhost" }
        return withUnsafeBytes(of: &u.nodename) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }
}
