import Glibc
import Logging
import ServiceLifecycle
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
        var session: Task<Void, Never>?
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                let (g, settings, api, identities) = hub.state.withLock {
                    ($0.generation, $0.settings?.slack, $0.slackAPI, $0.settings?.identities)
                }
                if g != generation {
                    generation = g
                    session?.cancel()
                    await session?.value
                    session = nil
                    if let settings, let api {
                        let run = SlackSession(
                            engine: engine,
                            api: api,
                            settings: settings,
                            identities: identities ?? .init(),
                            logger: logger
                        )
                        session = Task { await run.run() }
                    }
                }
                try? await Task.sleep(for: .milliseconds(500))
            }
        } onGracefulShutdown: {
        }
        session?.cancel()
        await session?.value
    }
}

/// One configuration's Slack connection and outbox delivery, until cancelled.
struct SlackSession: Sendable {
    let engine: Engine
    let api: SlackWebAPI
    let settings: IntegrationSettings.Slack
    let identities: IntegrationSettings.Identities
    let logger: Logger

    var hub: IntegrationHub { engine.integrations }

    func setStatus(_ text: String) { hub.state.withLock { $0.slackStatus = text } }

    func run() async {
        guard let identity = await checkToken() else { return }
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
                let why = "cannot listen on \(settings.listenHost):\(settings.listenPort): \(error)"
                setStatus("auth.test ok (team \(team.team)), HTTP mode off: \(why)")
                logger.error("Slack: \(why)")
                Syslog.log(LOG_ERR, "Slack HTTP mode off: \(LogText.escape(why))")
            }
        }
    }

    // MARK: the outbox

    /// Delivers the outbox in order, forever: woken by commits, and by the next retry time.
    func deliver(_ app: SlackApp) async {
        while !Task.isCancelled {
            let (jobs, wakeAt) = await engine.slackJobs()
            var stalled: Int64? = wakeAt
            for job in jobs {
                if Task.isCancelled { return }
                switch await deliver(job, app: app) {
                case .done(let card):
                    await engine.slackDelivered(job.seq, card: card)
                case .retry(let error):
                    // 1, 2, 4 … 300 s: an outage delays messages, it does not lose them.
                    let wait = Int64(min(300, 1 << min(job.attempts, 8)))
                    let at = engine.config.clock() + wait
                    await engine.slackRetry(job.seq, error: error.description, at: at)
                    if job.attempts == 0 || job.attempts % 5 == 4 {
                        logger.warning(
                            "Slack: \(job.event) for \(job.request?.id ?? job.grant?.id ?? "?") waits: \(error.description)"
                        )
                    }
                    stalled = at
                case .drop(let error):
                    logger.error(
                        "Slack: dropped \(job.event) for \(job.request?.id ?? job.grant?.id ?? "?"): \(error.description)"
                    )
                    Syslog.log(LOG_ERR, "Slack message dropped (\(job.event)): \(LogText.escape(error.description))")
                    await engine.slackDelivered(job.seq)
                }
                if stalled != nil && stalled != wakeAt { break }
            }
            if !jobs.isEmpty && stalled == nil { continue }  // more may be queued
            let seconds = stalled.map { max(0, $0 - engine.config.clock()) } ?? 30
            // A commit wakes the loop at once; otherwise the next retry or a periodic look.
            await hub.slackDoorbell.wait(seconds: max(1, seconds))
        }
    }

    enum Outcome {
        case done((requestID: String, ref: SlackCardRef)?)
        case retry(SlackError)
        case drop(SlackError)
    }

    func deliver(_ job: SlackJob, app: SlackApp) async -> Outcome {
        do throws(SlackError) {
            if let r = job.request, job.event.hasPrefix("request.") {
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
                    // Recorded at once: a DM that must wait must not post the card twice.
                    await engine.slackSaveCard(r.id, SlackCardRef(channel: at.channel, ts: at.ts))
                }
            }
            if let dm = SlackCards.directMessage(job), let user = job.recipient {
                guard let id = await app.slackID(of: user) else {
                    logger.info("Slack: no DM for \(user) (\(job.event)): not found in Slack")
                    return .done(nil)
                }
                let channel = try await api.openDM(user: id)
                _ = try await api.postMessage(channel: channel, text: dm.text, blocks: dm.blocks)
            }
            return .done(nil)
        } catch {
            return error.isTransient ? .retry(error) : .drop(error)
        }
    }
}
