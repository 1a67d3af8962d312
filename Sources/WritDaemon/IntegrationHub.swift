import Glibc
import Logging
import Synchronization
import WritCore
import WritExpr
import WritIntegrations
import WritPolicy
import WritSlack

/// writd's integrations (PagerDuty, Slack), read from `/etc/writ/integrations.yaml`.
///
/// Used off the engine actor: a PagerDuty lookup takes up to its timeout, and the actor must not
/// wait on the network. The settings are swapped under a mutex on reload.
public final class IntegrationHub: Sendable {
    struct State: Sendable {
        var settings: IntegrationSettings?
        var pagerDuty: PagerDutyClient?
        /// Why the file was not used, for the log and `writ doctor`.
        var error: String?
        /// The last PagerDuty ping: nil until it answered.
        var pagerDutyStatus: String?
        var slackAPI: SlackWebAPI?
        /// `auth.test`'s answer, once it came: the workspace clicks must come from.
        var slackIdentity: SlackIdentity?
        /// What `SlackService` says about the connection, for `writ doctor`.
        var slackStatus: String?
        /// Bumped when Slack's settings change: `SlackService` then starts over.
        var generation = 0
        /// Bumped on every load (SIGHUP): a Slack session that stopped (link_disabled, a refused
        /// token) is started again.
        var loads = 0
    }

    let path: String
    let logger: Logger
    let state = Mutex(State())
    /// Wakes `SlackService`'s outbox loop after a commit that may have queued rows.
    let slackDoorbell = Doorbell()

    public init(path: String, logger: Logger) {
        self.path = path
        self.logger = logger
    }

    /// Whether Slack is configured: decisions then queue Slack messages.
    var slackEnabled: Bool { state.withLock { $0.settings?.slack != nil } }

    var slackSettings: IntegrationSettings.Slack? { state.withLock { $0.settings?.slack } }

    func wakeSlack() { slackDoorbell.ring() }

    /// Reads the file (at start and on SIGHUP). A missing file means no integrations; one that is
    /// not root's 0600 is refused (it holds tokens), as is one with mistakes: the integrations are
    /// then off and `writ doctor` says why.
    public func load() {
        var st = stat()
        guard stat(path, &st) == 0 else {
            state.withLock { $0 = State(generation: $0.generation + 1, loads: $0.loads + 1) }
            return
        }
        func refuse(_ why: String) {
            logger.error("integrations not loaded: \(why)")
            Syslog.log(LOG_ERR, "integrations not loaded from \(path): \(why)")
            state.withLock { $0 = State(error: why, generation: $0.generation + 1, loads: $0.loads + 1) }
        }
        guard st.st_uid == 0, st.st_mode & 0o077 == 0 else {
            refuse(
                "\(path) is owned by uid \(st.st_uid) with mode \(String(st.st_mode & 0o777, radix: 8)); it holds tokens: chown root: \(path) && chmod 0600 \(path)"
            )
            return
        }
        let settings: IntegrationSettings
        do {
            let bytes = try Policy.contents(of: path)
            settings = try IntegrationSettings.parse(String(decoding: bytes, as: UTF8.self), file: path)
        } catch {
            refuse(error.description)
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
        let slack = settings.slack.map {
            SlackWebAPI(
                configuration: SlackWebAPI.Configuration(
                    apiURL: $0.apiURL,
                    botToken: $0.botToken,
                    appToken: $0.appToken,
                    timeoutMilliseconds: $0.timeoutMilliseconds
                )
            )
        }
        state.withLock {
            let old = $0
            $0 = State(
                settings: settings,
                pagerDuty: client,
                slackAPI: slack,
                generation: old.generation + 1,
                loads: old.loads + 1
            )
            // Unchanged Slack settings keep the running connection: a policy reload (which reads
            // this file too) must not drop Socket Mode or in-flight clicks.
            if let before = old.settings, before.slack != nil, before.slack == settings.slack,
                before.identities == settings.identities
            {
                $0.slackAPI = old.slackAPI
                $0.slackIdentity = old.slackIdentity
                $0.slackStatus = old.slackStatus
                $0.generation = old.generation
            }
        }
        logger.notice(
            "integrations loaded from \(path): PagerDuty \(client == nil ? "not configured" : "configured"), Slack \(settings.slack.map { "configured (\($0.mode.rawValue) mode)" } ?? "not configured")"
        )
        wakeSlack()
        if let client {
            Task {
                let failure = await client.ping()
                let status = failure.map { "unreachable: \($0.description)" } ?? "reachable"
                self.state.withLock { $0.pagerDutyStatus = status }
                if let failure { self.logger.error("PagerDuty: \(failure.description)") }
            }
        }
    }

    /// One line per integration for `writ doctor` (root only).
    public var status: [String] {
        state.withLock { s in
            if let e = s.error { return ["integrations: not loaded — \(e)"] }
            guard let settings = s.settings else { return ["integrations: none (\(path) does not exist)"] }
            let pd =
                settings.pagerDuty == nil
                ? "pagerduty: not configured" : "pagerduty: configured, \(s.pagerDutyStatus ?? "not checked yet")"
            let slack =
                settings.slack.map {
                    "slack: configured (\($0.mode.rawValue) mode), \(s.slackStatus ?? "not checked yet")"
                }
                ?? "slack: not configured"
            return [pd, slack]
        }
    }

    /// What the integrations know about `user` now, as the policy's `context`:
    /// - `on_call` (bool) and `oncall` (a list of `{escalation_policy, escalation_policy_name,
    ///   schedule, schedule_name, level, start, end}`) from PagerDuty;
    /// - `pagerduty_error` (text) when PagerDuty did not answer: then `on_call` is absent, so no
    ///   condition or break-glass rule can take silence for "on call".
    /// Empty without integrations.
    public func context(for user: String, now: Int64) async -> [String: Value] {
        let (client, identities) = state.withLock { ($0.pagerDuty, $0.settings?.identities) }
        guard let client else { return [:] }
        let answer = await client.requesterFacts(
            user: user,
            email: identities?.email(of: user),
            settingsPath: path,
            now: now
        )
        if let failure = answer.failure {
            logger.warning("PagerDuty lookup for \(user) failed; the request goes on without on-call facts: \(failure)")
            Syslog.log(LOG_WARNING, "PagerDuty lookup for \(user) failed: \(LogText.escape(failure))")
        }
        return answer.facts
    }
}

/// One waiter sleeps until the bell rings or a timeout passes; a ring with nobody waiting is kept
/// for the next wait, so a commit between two looks at the outbox is never missed.
final class Doorbell: Sendable {
    private struct State {
        var rung = false
        var waiter: CheckedContinuation<Void, Never>?
    }
    private let state = Mutex(State())

    func ring() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            guard let w = s.waiter else {
                s.rung = true
                return nil
            }
            s.waiter = nil
            return w
        }
        waiter?.resume()
    }

    /// Returns when rung (now, if it was rung since the last wait), after `seconds`, or when the
    /// task is cancelled.
    func wait(seconds: Int64) async {
        let timer = Task { [self] in
            // A cancelled timer must not ring: that ring would end the next wait at once.
            guard (try? await Task.sleep(for: .seconds(seconds))) != nil else { return }
            ring()
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let now = state.withLock { s -> Bool in
                    if s.rung {
                        s.rung = false
                        return true
                    }
                    s.waiter = c
                    return false
                }
                if now { c.resume() }
            }
        } onCancel: {
            ring()
        }
        timer.cancel()
        state.withLock { $0.rung = false }
    }
}
