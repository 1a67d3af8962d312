/// What a grant lets its holder do on a host.
public enum Capability: String, Sendable, CaseIterable, Hashable {
    /// Log in (sshd, login, su): checked by pam_writ.so in the `account` stack.
    case login
    /// Run commands through sudo: checked by pam_writ.so in sudo's stack and by sudo_writ.so.
    case sudo
}
