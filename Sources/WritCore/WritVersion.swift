/// The one version of Writ: `writ --version`, `writd --version`, writd's ping answer and the
/// Debian package all print this.
public enum WritVersion {
    public static let current = "0.6.0"
}
