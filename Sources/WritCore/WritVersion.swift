/// The one version of Writ: `writ --version`, `writd --version`, `sudo -V` (the plugins), writd's
/// ping answer and the Debian package all print this.
public enum WritVersion {
    /// A literal, so the module (Embedded Swift, C callers) can hand out a C string without
    /// allocating.
    public static let literal: StaticString = "0.6.0"

    public static var current: String {
        String(decoding: UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount), as: UTF8.self)
    }
}
