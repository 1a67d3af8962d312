import Glibc
import Logging
import NIOConcurrencyHelpers
import WritExpr
import WritIntegrations
import WritPolicy

/// The fleet's integrations on writ-server: PagerDuty's on-call facts, which break-glass flows
/// and `when:` conditions decide on, from the file `--integrations` names (writd's
/// `integrations.yaml` format). Read at start and again whenever it changes (with the policy's
/// check, and on SIGHUP); a file that does not load is logged and the integrations are off
/// until it does: a break-glass request then goes to people, as when PagerDuty does not answer.
/// Slack stays with each host's writd for now: a `slack:` section here is not used, and the
/// log says so.
public final class ServerIntegrations: Sendable {
    private struct State {
        var stamp: FileStamp?
        var settings: IntegrationSettings?
        var pagerDuty: PagerDutyClient?
        var error: String?
    }

    public let path: String
    private let state = NIOLockedValueBox(State())
    private let reading = NIOLock()
    private let logger: Logger

    public init(path: String, logger: Logger) {
        self.path = path
        self.logger = logger
    }

    /// Reads the file again when it changed since the last read (always with `force`).
    public func reload(force: Bool = false) {
        reading.withLock { read(force: force) }
    }

    private func read(force: Bool) {
        var st = stat()
        guard stat(path, &st) == 0 else {
            let missing = errno == ENOENT
            let why = "\(path): \(String(cString: strerror(errno)))"
            let changed = state.withLockedValue { s in
                defer { s = State(error: missing ? nil : why) }
                return s.settings != nil || s.error != (missing ? nil : why) || force
            }
            if changed {
                if missing {
                    logger.notice("no integrations (\(path) does not exist): break-glass requests go to people")
                } else {
                    logger.error("integrations not loaded: \(why)")
                }
            }
            return
        }
        let stamp = FileStamp(st)
        if !force, state.withLockedValue({ $0.stamp == stamp }) { return }
        // It holds tokens: nobody but root and this server's account may read it, nobody else
        // change it.
        guard st.st_uid == 0 || st.st_uid == geteuid(), st.st_mode & 0o027 == 0 else {
            failed(
                "\(path) is owned by uid \(st.st_uid) with mode \(String(st.st_mode & 0o777, radix: 8)); it holds tokens: make it root's or this server's account's, mode 0600 or 0640 (chmod o-rwx,g-w)",
                stamp: stamp
            )
            return
        }
        let settings: IntegrationSettings
        do {
            let bytes = try Policy.contents(of: path)
            settings = try IntegrationSettings.parse(String(decoding: bytes, as: UTF8.self), file: path)
        } catch {
            failed(error.description, stamp: stamp)
            return
        }
        let client = settings.pagerDuty.map {
            PagerDutyClient(
                configuration: PagerDutyConfiguration(
                    apiURL: $0.apiURL,
                    token: $0.token,
                    timeoutMilliseconds: $0.timeoutMilliseconds
                )
            )
        }
        state.withLockedValue { $0 = State(stamp: stamp, settings: settings, pagerDuty: client) }
        logger.notice(
            "integrations loaded from \(path): PagerDuty \(client == nil ? "not configured" : "configured")\(settings.slack == nil ? "" : "; its slack: section is not used by writ-server (Slack stays with each host's writd)")"
        )
        if let client {
            Task {
                if let failure = await client.ping() { self.logger.error("PagerDuty: \(failure.description)") }
            }
        }
    }

    private func failed(_ why: String, stamp: FileStamp) {
        let repeated = state.withLockedValue { s in
            defer { s = State(stamp: stamp, error: why) }
            return s.error == why
        }
        if !repeated {
            logger.error("integrations not loaded (break-glass requests go to people until it loads): \(why)")
        }
    }

    /// What the integrations know about `user` now, as the policy's `context` (see
    /// `PagerDutyClient.requesterFacts`); empty without PagerDuty.
    public func context(for user: String, now: Int64) async -> [String: Value] {
        let (client, identities) = state.withLockedValue { ($0.pagerDuty, $0.settings?.identities) }
        guard let client else { return [:] }
        let answer = await client.requesterFacts(
            user: user,
            email: identities?.email(of: user),
            settingsPath: path,
            now: now
        )
        if let failure = answer.failure {
            logger.warning("PagerDuty lookup for \(user) failed; the request goes on without on-call facts: \(failure)")
        }
        return answer.facts
    }
}
