import Glibc
import Logging
import ServiceLifecycle
import Synchronization
import WritCore
import WritHooks
import WritPolicy
import WritSlack

/// writd's Slack app: checks the bot token (`auth.test`), holds the Socket Mode connection (or
/// serves HTTP mode), and delivers the outbox. Restarts itself when integrations.yaml changes.
/// Without Slack in integrations.yaml it waits and does nothing.
///
/// Slack spreads an app's envelopes over all its open connections, so exactly one process per
/// Slack app may hold them: in standalone mode that is this writd. Use one Slack app per host.
public struct SlackService: Service {
    let engine: Engine
    let logger: Logger

    public init(engine: Engine, logger: Logger) {
        self.engine = engine
        self.logger = logger
    }

    public func run() async throws {
        let hub = engine.integrations
        var generation = -1
        var loads = -1
        var session: Task<Void, Never>?
        let ended = SessionEnded()
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                let (g, l, settings, api, identities) = hub.state.withLock {
                    ($0.generation, $0.loads, $0.settings?.slack, $0.slackAPI, $0.settings?.identities)
                }
                // New settings start over; a reload also restarts a session that stopped.
                if g != generation || (l != loads && ended.flag.withLock { $0 }) {
                    generation = g
                    session?.cancel()
                    await session?.value
                    session = nil
                    ended.flag.withLock { $0 = false }
                    if let settings, let api {
                        let run = SlackSession(
                            engine: engine,
                            api: api,
                            settings: settings,
                            identities: identities ?? .init(),
                            logger: logger,
                            ended: ended
                        )
                        session = Task {
                            await run.run()
                            ended.flag.withLock { $0 = true }
                        }
                    }
                }
                loads = l
                try? await Task.sleep(for: .milliseconds(500))
            }
        } onGracefulShutdown: {
        }
        session?.cancel()
        await session?.value
    }
}

/// Set when a session returned by itself (link_disabled, a refused token).
final class SessionEnded: Sendable {
    let flag = Mutex(false)
}

/// One configuration's Slack connection and outbox delivery, until cancelled.
struct SlackSession: Sendable {
    let engine: Engine
    let api: SlackWebAPI
    let settings: IntegrationSettings.Slack
    let identities: IntegrationSettings.Identities
    let logger: Logger
    /// Set when the connection stops by itself (link_disabled): a reload starts it again.
    let ended: SessionEnded

    var hub: IntegrationHub { engine.integrations }

    func setStatus(_ text: String) { hub.state.withLock { $0.slackStatus = text } }

    func run() async {
        guard let identity = await checkToken() else { return }
        // Messages that waited for a previous session (a refused token, an outage) go now.
        await engine.slackRescheduleAll()
        let app = SlackApp(
            engine: engine,
            api: api,
            settings: settings,
            identities: identities,
            teamID: identity.teamID,
            logger: logger
        )
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await deliver(app) }
            group.addTask { await receive(app, team: identity) }
            await group.waitForAll()
        }
    }

    /// `auth.test` until it answers: a token Slack refuses stops Slack here (said in the log,
    /// syslog and `writ doctor`), an outage is retried.
    func checkToken() async -> SlackIdentity? {
        var delay = 1.0
        while !Task.isCancelled {
            do throws(SlackError) {
                let id = try await api.authTest()
                hub.state.withLock { $0.slackIdentity = id }
                setStatus("auth.test ok (team \(id.team), bot \(id.userID))")
                logger.notice("Slack: connected to workspace \(id.team) (\(id.teamID)) as \(id.userID)")
                return id
            } catch {
                if !error.isTransient {
                    let why =
                        "auth.test failed: \(error.description) — check bot_token in \(hub.path) (Bot User OAuth Token, xoxb-…)"
                    setStatus(why)
                    logger.error("Slack is off: \(why)")
                    Syslog.log(LOG_ERR, "Slack is off: \(LogText.escape(why))")
                    return nil
                }
                setStatus("unreachable: \(error.description) (retrying)")
                logger.warning("Slack: auth.test: \(error.description); retrying in \(Int(delay)) s")
            }
            try? await Task.sleep(for: .seconds(delay))
            delay = min(delay * 2, 60)
        }
        return nil
    }

    // MARK: receiving

    func receive(_ app: SlackApp, team: SlackIdentity) async {
        let handler: @Sendable (SlackInbound) async -> Void = { inbound in await app.handle(inbound) }
        switch settings.mode {
        case .socket:
            let client = SocketModeClient(
                openURL: { () async throws(SlackError) -> String in try await api.openSocketURL() },
                logger: logger,
                handler: handler
            )
            let watcher = Task {
                while !Task.isCancelled {
                    let text: String =
                        switch client.status {
                        case .starting: "Socket Mode connecting"
                        case .connected(let n): "Socket Mode connected (\(n) connection\(n == 1 ? "" : "s"))"
                        case .reconnecting(let why): "Socket Mode reconnecting (\(why))"
                        case .stopped(let why): "Socket Mode stopped: \(why)"
                        }
                    hub.state.withLock { $0.slackStatus = "auth.test ok (team \(team.team)), \(text)" }
                    try? await Task.sleep(for: .seconds(1))
                }
            }
            await client.run()
            watcher.cancel()
            if case .stopped(let why) = client.status, !Task.isCancelled {
                ended.flag.withLock { $0 = true }
                setStatus("auth.test ok (team \(team.team)), Socket Mode stopped: \(why)")
                Syslog.log(LOG_ERR, "Slack Socket Mode stopped: \(LogText.escape(why))")
            }
        case .http:
            let receiver = SlackHTTPReceiver(
                configuration: SlackHTTPReceiver.Configuration(
                    host: settings.listenHost,
                    port: settings.listenPort,
                    signingSecret: settings.signingSecret ?? "",
                    tlsCertificatePath: settings.tlsCertificate,
                    tlsKeyPath: settings.tlsKey
                ),
                logger: logger,
                handler: handler
            )
            do {
                let port = try await receiver.start()
                setStatus("auth.test ok (team \(team.team)), HTTP mode listening on \(settings.listenHost):\(port)")
                logger.notice("Slack: HTTP mode listening on \(settings.listenHost):\(port)")
                while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
                await receiver.stop()
            } catch {
                ended.flag.withLock { $0 = true }  // a reload tries again
                let why = "cannot listen on \(settings.listenHost):\(settings.listenPort): \(error)"
                setStatus("auth.test ok (team \(team.team)), HTTP mode off: \(why)")
                logger.error("Slack: \(why)")
                Syslog.log(LOG_ERR, "Slack HTTP mode off: \(LogText.escape(why))")
            }
        }
    }

    // MARK: the outbox

    /// Delivers the outbox, forever: woken by commits, and when a waiting row falls due. Rows of
    /// one request go in order; an outage or HTTP 429 delays them (1, 2, 4 … 300 s); a token Slack
    /// refuses pauses everything and keeps every row; a row Slack refuses for good, or one older
    /// than a day, is dropped with a log line.
    func deliver(_ app: SlackApp) async {
        while !Task.isCancelled {
            let (jobs, wakeAt) = await engine.slackJobs()
            var paused: Int64?
            for job in jobs {
                if Task.isCancelled { return }
                let what = "\(job.kind) for \(job.event) of \(job.request?.id ?? job.grant?.id ?? "?")"
                var recorded = true
                if engine.config.clock() - job.createdAt > SlackOutbox.maximumAge {
                    logger.error("Slack: dropped the \(what): undelivered for more than a day")
                    Syslog.log(LOG_ERR, "Slack message dropped (\(what)): undelivered for more than a day")
                    recorded = await engine.slackDelivered(job.seq)
                    if !recorded { paused = engine.config.clock() + 5 }
                    continue
                }
                let outcome = await deliver(job, app: app)
                let now = engine.config.clock()  // after the call: its own time does not count as waiting
                switch outcome {
                case .done:
                    recorded = await engine.slackDelivered(job.seq)
                case .retry(let error):
                    var wait = Int64(min(300, 1 << min(job.attempts, 9)))
                    if case .rateLimited(_, let after) = error { wait = max(wait, Int64(after)) }
                    recorded = await engine.slackRetry(job.seq, error: error.description, at: now + wait)
                    if job.attempts == 0 || job.attempts % 10 == 9 {
                        logger.warning("Slack: the \(what) waits: \(error.description)")
                    }
                case .pause(let error):
                    // Nothing will go through until an admin fixes the token or the app's scopes:
                    // every row waits (the next session, after a reload, retries them at once).
                    let at = now + 300
                    recorded = await engine.slackRetry(job.seq, error: error.description, at: at)
                    await engine.slackRescheduleAll(at: at)
                    let why =
                        "\(error.description) — messages wait in the outbox; fix the bot token or the app's scopes in \(hub.path), then reload writd"
                    logger.error("Slack paused: \(why)")
                    Syslog.log(LOG_ERR, "Slack paused: \(LogText.escape(why))")
                    paused = at
                case .drop(let error):
                    logger.error("Slack: dropped the \(what): \(error.description)")
                    Syslog.log(LOG_ERR, "Slack message dropped (\(what)): \(LogText.escape(error.description))")
                    recorded = await engine.slackDelivered(job.seq)
                }
                // writd.db cannot be written: wait rather than send the same row again at once.
                if !recorded { paused = min(paused ?? .max, now + 5) }
                if paused != nil { break }
            }
            if !jobs.isEmpty && paused == nil { continue }  // more may be due
            let now = engine.config.clock()
            let next = [wakeAt, paused].compactMap { $0 }.min()
            // A commit wakes the loop at once; otherwise the next due row or a periodic look.
            await hub.slackDoorbell.wait(seconds: max(1, next.map { $0 - now } ?? 60))
        }
    }

    enum Outcome {
        case done
        case retry(SlackError)
        case pause(SlackError)
        case drop(SlackError)
    }

    /// Slack's answers that no retry fixes but an admin can: every message waits for them.
    static let pausing: Set<String> = [
        "invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive", "missing_scope",
        "no_permission", "team_access_not_granted", "ekm_access_denied",
    ]

    func deliver(_ job: SlackJob, app: SlackApp) async -> Outcome {
        do throws(SlackError) {
            switch job.kind {
            case "card":
                guard let r = job.request else { return .done }
                let (text, blocks) = SlackCards.card(r, mode: job.approveMode, grant: job.grant)
                if let card = job.card {
                    try await api.update(channel: card.channel, ts: card.ts, text: text, blocks: blocks)
                    if let reply = SlackCards.threadReply(
                        event: job.event,
                        actor: job.actor,
                        detail: job.detail,
                        request: r
                    ) {
                        _ = try await api.postMessage(channel: card.channel, text: reply, threadTS: card.ts)
                    }
                } else if job.event == "request.create", let channel = job.channel {
                    let at = try await api.postMessage(channel: channel, text: text, blocks: blocks)
                    await engine.slackSaveCard(r.id, SlackCardRef(channel: at.channel, ts: at.ts))
                }
            default:
                guard let dm = SlackCards.directMessage(job), let user = job.recipient else { return .done }
                switch await app.slackID(of: user) {
                case .found(let id):
                    let channel = try await api.openDM(user: id)
                    _ = try await api.postMessage(channel: channel, text: dm.text, blocks: dm.blocks)
                case .none(let why):
                    logger.info("Slack: no DM to \(user) (\(job.event)): \(why)")
                case .failed(let error):
                    throw error
                }
            }
            return .done
        } catch {
            if case .api(_, let code) = error, Self.pausing.contains(code) { return .pause(error) }
            return error.isTransient ? .retry(error) : .drop(error)
        }
    }
}
