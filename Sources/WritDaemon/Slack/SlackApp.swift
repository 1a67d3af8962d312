import Glibc
import Logging
import WritCore
import WritEngine
import WritExpr
import WritPolicy
import WritProcesses
import WritProtocol
import WritSlack

/// What writd does with what people do in Slack: `/writ` opens the request form, a submitted
/// form files a request, the card's buttons approve and deny, the warning's Extend button files
/// an extension.
///
/// Slack only says who clicked; writd decides everything else itself. Every action goes through
/// the engine as the Unix account the clicker maps to, exactly as if they had run `writ` on the
/// host: the engine checks approvers, steps, self-approval and the state of the request, whatever
/// the card showed. A clicker is mapped by their Slack user id, never a display name: pinned by
/// the admin (`slack.users`), or matched once by email and pinned by writd; deleted, bot, guest
/// and other-workspace accounts are refused.
final class SlackApp: Sendable {
    let engine: Engine
    let api: SlackWebAPI
    let settings: IntegrationSettings.Slack
    let identities: IntegrationSettings.Identities
    /// The workspace the bot is in (`auth.test`): clicks from any other are refused.
    let teamID: String
    let logger: Logger

    init(
        engine: Engine,
        api: SlackWebAPI,
        settings: IntegrationSettings.Slack,
        identities: IntegrationSettings.Identities,
        teamID: String,
        logger: Logger
    ) {
        self.engine = engine
        self.api = api
        self.settings = settings
        self.identities = identities
        self.teamID = teamID
        self.logger = logger
    }

    // MARK: inbound

    func handle(_ inbound: SlackInbound) async {
        switch inbound {
        case .slashCommand(let fields):
            await slashCommand(fields)
        case .interactive(let payload):
            switch payload["type"]?.stringValue {
            case "block_actions": await blockActions(payload)
            case "view_submission": await viewSubmission(payload)
            default: break  // view_closed, shortcuts: nothing to do
            }
        case .event:
            break
        }
    }

    /// Where an answer to the clicker goes: an ephemeral message in the channel they clicked in,
    /// else the interaction's response_url, else a DM.
    struct ReplyTo: Sendable {
        var user: String
        var channel: String?
        var responseURL: String?
    }

    func reply(_ to: ReplyTo, _ text: String) async {
        // An ephemeral message in the channel, else the interaction's response_url (works where
        // the bot is not a member), else a DM.
        if let channel = to.channel, !channel.hasPrefix("D") {
            do throws(SlackError) {
                try await api.postEphemeral(channel: channel, user: to.user, text: text)
                return
            } catch {
                logger.info(
                    "Slack: no ephemeral message in \(LogText.escape(channel, limit: 20)): \(error.description)"
                )
            }
        }
        do throws(SlackError) {
            if let url = to.responseURL {
                try await api.respond(
                    responseURL: url,
                    .object(["response_type": "ephemeral", "replace_original": false, "text": .string(text)])
                )
            } else {
                let dm = try await api.openDM(user: to.user)
                _ = try await api.postMessage(channel: dm, text: text)
            }
        } catch {
            logger.warning("Slack: cannot answer \(LogText.escape(to.user, limit: 20)): \(error.description)")
        }
    }

    func slashCommand(_ f: [String: String]) async {
        let to = ReplyTo(user: f["user_id"] ?? "", channel: f["channel_id"], responseURL: f["response_url"])
        let text = (f["text"] ?? "").trimmingSpaces
        if text == "help" {
            await reply(
                to,
                "`/writ` opens the request form for \(engine.config.hostName). Approvers approve on the request card, or with `writ approve ID` on the host."
            )
            return
        }
        let who: UserDirectory.Account
        switch await account(slackID: to.user, team: f["team_id"]) {
        case .failure(let refusal):
            await reply(to, refusal.message)
            return
        case .success(let a): who = a
        }
        let flows = await engine.slackRequestableFlows(user: who.name)
        guard !flows.isEmpty else {
            await reply(
                to,
                "There is nothing you (\(who.name)) may request on \(engine.config.hostName) under its policy."
            )
            return
        }
        guard let trigger = f["trigger_id"] else { return }
        do throws(SlackError) {
            _ = try await api.openView(
                triggerID: trigger,
                view: SlackCards.requestForm(flows: flows, host: engine.config.hostName)
            )
        } catch {
            logger.warning("Slack: cannot open the request form for \(who.name): \(error.description)")
            await reply(
                to,
                "Writ could not open the form (\(error.description)); try again, or run `writ request` on the host."
            )
        }
    }

    func blockActions(_ p: JSONValue) async {
        guard let action = p["actions"]?.arrayValue?.first, let actionID = action["action_id"]?.stringValue,
            let value = action["value"]?.stringValue
        else { return }
        let user = p["user"]?["id"]?.stringValue ?? ""
        let team = p["user"]?["team_id"]?.stringValue ?? p["team"]?["id"]?.stringValue
        let channel = p["channel"]?["id"]?.stringValue ?? p["container"]?["channel_id"]?.stringValue
        let to = ReplyTo(user: user, channel: channel, responseURL: p["response_url"]?.stringValue)
        let who: UserDirectory.Account
        switch await account(slackID: user, team: team) {
        case .failure(let refusal):
            logger.notice(
                "Slack: refused \(LogText.escape(actionID, limit: 40)) on \(LogText.escape(value, limit: 40)) by \(LogText.escape(user, limit: 20)): \(refusal.message)"
            )
            Syslog.log(
                LOG_NOTICE,
                "Slack click refused: \(LogText.escape(actionID, limit: 40)) \(LogText.escape(value, limit: 40)) by \(LogText.escape(user, limit: 20)): \(refusal.message)"
            )
            await reply(to, refusal.message)
            return
        case .success(let a): who = a
        }
        switch actionID {
        case SlackCards.approveAction, SlackCards.denyAction:
            guard let (mode, request) = await engine.slackApproval(of: value) else {
                await reply(
                    to,
                    "Request \(LogText.escape(value, limit: 40)) does not exist on \(engine.config.hostName)."
                )
                return
            }
            if request.state != "pending" {
                await reply(to, "Request \(request.id) is \(request.state) already: nothing to do.")
                return
            }
            if actionID == SlackCards.approveAction {
                switch mode {
                case .cli:
                    await refuse(
                        to,
                        who: who,
                        request: request.id,
                        why: "flow \(request.flow) is approved on a host only: run `writ approve \(request.id)` there"
                    )
                case .confirm:
                    await openForm(
                        p,
                        SlackCards.decisionForm(approve: true, request: request, channel: channel),
                        to: to
                    )
                case .allowed:
                    await decide(request.id, approve: true, text: nil, who: who, slackUser: user, to: to)
                }
            } else {
                await openForm(p, SlackCards.decisionForm(approve: false, request: request, channel: channel), to: to)
            }
        case SlackCards.extendAction:
            guard let (grant, request) = await engine.slackGrant(value), let request else {
                await reply(
                    to,
                    "Grant \(LogText.escape(value, limit: 40)) cannot be extended from Slack: run `writ extend` on the host."
                )
                return
            }
            var r = WireRequest(op: .extend)
            r.id = grant.id
            r.duration = request.duration
            r.reason = request.reason
            let resp = await engine.serve(r, from: .slack(member: user, uid: who.uid))
            if let e = resp.error {
                await reply(to, "Extension refused: \(e.message)")
            } else if let v = resp.request {
                await reply(
                    to,
                    v.state == "approved"
                        ? "Extended: grant `\(grant.id)` runs \(DurationText.format(v.duration)) longer."
                        : "Extension `\(v.id)` is \(v.state): its approvers were asked."
                )
            }
        default:
            break
        }
    }

    func openForm(_ p: JSONValue, _ view: JSONValue, to: ReplyTo) async {
        guard let trigger = p["trigger_id"]?.stringValue else { return }
        do throws(SlackError) { _ = try await api.openView(triggerID: trigger, view: view) } catch {
            logger.warning("Slack: cannot open a form: \(error.description)")
            await reply(
                to,
                "Writ could not open the form (\(error.description)); use `writ approve`/`writ deny` on the host."
            )
        }
    }

    func refuse(_ to: ReplyTo, who: UserDirectory.Account, request: String, why: String) async {
        let id = LogText.escape(request, limit: 40)
        logger.notice("Slack: refused \(who.name)'s click on \(id): \(LogText.escape(why))")
        Syslog.log(LOG_NOTICE, "Slack click on \(id) by \(who.name) refused: \(LogText.escape(why))")
        await reply(to, "Not done: \(why).")
    }

    /// Approves or denies as `who`, through the engine (which checks everything again).
    func decide(
        _ id: String,
        approve: Bool,
        text: String?,
        who: UserDirectory.Account,
        slackUser: String,
        to: ReplyTo
    ) async {
        var r = WireRequest(op: approve ? .approve : .deny)
        r.id = id
        if approve { r.comment = text } else { r.reason = text }
        let resp = await engine.serve(r, from: .slack(member: slackUser, uid: who.uid))
        if let e = resp.error {
            let why = e.code == "not_found" ? "you (\(who.name)) are not an approver of request \(id)" : e.message
            await refuse(to, who: who, request: id, why: why)
        } else if let v = resp.request, approve, v.state == "pending" {
            await reply(
                to,
                "Your approval of `\(id)` is recorded; it needs more approvals (\(v.approvals.count)/\(v.requiredApprovals))."
            )
        }
    }

    func viewSubmission(_ p: JSONValue) async {
        guard let view = p["view"], let callback = view["callback_id"]?.stringValue else { return }
        let user = p["user"]?["id"]?.stringValue ?? ""
        let team = p["user"]?["team_id"]?.stringValue ?? p["team"]?["id"]?.stringValue
        let values = view["state"]?["values"]
        func value(_ block: String, _ action: String) -> String? {
            let v = values?[block]?[action]
            return v?["value"]?.stringValue ?? v?["selected_option"]?["value"]?.stringValue
        }
        let metadata = (view["private_metadata"]?.stringValue ?? "").split(separator: " ").map(String.init)
        let to = ReplyTo(user: user, channel: metadata.count > 1 ? metadata[1] : nil, responseURL: nil)
        let who: UserDirectory.Account
        switch await account(slackID: user, team: team) {
        case .failure(let refusal):
            await reply(to, refusal.message)
            return
        case .success(let a): who = a
        }
        switch callback {
        case SlackCards.requestCallback:
            var r = WireRequest(op: .request)
            guard let flowName = value("flow", "flow"),
                let flow = await engine.slackRequestableFlows(user: who.name).first(where: { $0.name == flowName })
            else {
                await reply(to, "That flow is no longer yours to request; run `/writ` again.")
                return
            }
            r.flow = flow.name
            r.capability = flow.capability.rawValue
            r.duration = value("duration", "duration").flatMap { Int64($0) }
            r.reason = value("reason", "reason")
            let resp = await engine.serve(r, from: .slack(member: user, uid: who.uid))
            if let e = resp.error {
                await reply(to, "Request refused: \(e.message)")
            } else if let v = resp.request {
                let next =
                    switch v.state {
                    case "approved": "approved (\(v.decidedVia ?? "policy")): it works now."
                    case "denied": "denied: \(v.decisionNote ?? "")"
                    default:
                        "waiting for approval by \(v.approvers.filter { $0 != who.name }.prefix(8).joined(separator: ", "))."
                    }
                await reply(
                    to,
                    "Request `\(v.id)` (\(SlackCards.what(v)) on \(v.host) for \(DurationText.format(v.duration))) is \(next)"
                )
            }
        case SlackCards.approveCallback, SlackCards.denyCallback:
            guard let id = metadata.first else { return }
            await decide(
                id,
                approve: callback == SlackCards.approveCallback,
                text: value("text", "text"),
                who: who,
                slackUser: user,
                to: to
            )
        default:
            break
        }
    }

    // MARK: who clicked

    struct Refusal: Error {
        var message: String
    }

    /// The Unix account a Slack user speaks for, or why they speak for nobody.
    func account(slackID: String, team: String?) async -> Result<UserDirectory.Account, Refusal> {
        let host = engine.config.hostName
        guard !slackID.isEmpty else { return .failure(Refusal(message: "Slack did not say who you are.")) }
        if let team, team != teamID {
            return .failure(
                Refusal(message: "Writ on \(host) takes requests and approvals from its own Slack workspace only.")
            )
        }
        let user: SlackUser
        do throws(SlackError) { user = try await api.userInfo(slackID) } catch {
            logger.warning("Slack: users.info \(LogText.escape(slackID, limit: 20)): \(error.description)")
            return .failure(
                Refusal(
                    message:
                        "Writ could not check who you are in Slack (\(error.description)); try again, or use `writ` on the host."
                )
            )
        }
        if user.deleted { return .failure(Refusal(message: "Your Slack account is deactivated.")) }
        if user.isBot { return .failure(Refusal(message: "Bots cannot request or approve access.")) }
        if user.isGuest { return .failure(Refusal(message: "Guest accounts cannot request or approve access.")) }
        if user.teamID != teamID {
            return .failure(
                Refusal(message: "Writ on \(host) takes requests and approvals from its own Slack workspace only.")
            )
        }
        let unmapped = Refusal(
            message:
                "Writ on \(host) does not know which account is yours: ask an admin to add you under slack.users (or identities) in /etc/writ/integrations.yaml."
        )
        // Pinned by the admin: the map decides, in both directions.
        if let name = settings.users.first(where: { $0.value == slackID })?.key {
            guard let a = UserDirectory.user(named: name), a.uid != 0 else { return .failure(unmapped) }
            return .success(a)
        }
        if let pinned = await engine.slackPinned(slackID: slackID) {
            guard settings.users[pinned.unix] == nil, let a = Self.person(pinned.unix, identities: identities) else {
                return .failure(unmapped)
            }
            return .success(a)
        }
        // First sight: by email, then pinned so a later email change cannot move the account. The
        // address must be ASCII (EmailAddress), and Slack itself must give this member for the
        // address the identities name: a look-alike address is another Slack account.
        guard let email = user.email.flatMap(EmailAddress.folded),
            let name = Self.unixUser(email: email, identities: identities),
            settings.users[name] == nil, let a = Self.person(name, identities: identities)
        else {
            if let shown = user.email, EmailAddress.folded(shown) == nil {
                logger.warning(
                    "Slack: \(LogText.escape(slackID, limit: 20)) has the email \(LogText.escape(shown, limit: 80)), which is not plain ASCII: mapped to nobody (pin the account under slack.users if it is right)"
                )
            }
            return .failure(unmapped)
        }
        guard let listed = identities.email(of: name) else { return .failure(unmapped) }
        do throws(SlackError) {
            let owner = try await api.lookupByEmail(listed)
            guard owner.id == slackID else {
                logger.warning(
                    "Slack: \(LogText.escape(slackID, limit: 20)) has an email that maps to \(name), but Slack gives \(LogText.escape(owner.id, limit: 20)) for \(LogText.escape(listed, limit: 80)): not mapped"
                )
                return .failure(unmapped)
            }
        } catch {
            logger.warning("Slack: users.lookupByEmail for \(name): \(error.description)")
            return .failure(
                Refusal(
                    message:
                        "Writ could not check who you are in Slack (\(error.description)); try again, or use `writ` on the host."
                )
            )
        }
        guard await engine.slackPin(unix: name, slackID: slackID, email: email) else {
            return .failure(
                Refusal(
                    message:
                        "\(name) on \(host) is already tied to another Slack account; an admin can pin yours under slack.users in /etc/writ/integrations.yaml."
                )
            )
        }
        return .success(a)
    }

    /// A person's account: never root, and a system account (uid below 1000) only when the admin
    /// named it in `identities.emails` — an email template must not turn `root@` or a service
    /// mailbox into an approver.
    static func person(_ name: String, identities: IntegrationSettings.Identities) -> UserDirectory.Account? {
        guard let a = UserDirectory.user(named: name), a.uid != 0 else { return nil }
        guard a.uid >= 1000 || identities.emails[name] != nil else { return nil }
        return a
    }

    /// The Unix user whose email (identities) is `email`; nobody when `email` is not plain ASCII
    /// (compared as `EmailAddress` does: ASCII case folding only).
    static func unixUser(email: String, identities: IntegrationSettings.Identities) -> String? {
        guard let email = EmailAddress.folded(email) else { return nil }
        if let e = identities.emails.first(where: { EmailAddress.same($0.value, email) }) { return e.key }
        guard let template = identities.emailTemplate.flatMap(EmailAddress.folded),
            let r = template.range(of: "{user}")
        else { return nil }
        let prefix = template[..<r.lowerBound]
        let suffix = template[r.upperBound...]
        guard email.utf8.count > prefix.utf8.count + suffix.utf8.count, email.hasPrefix(prefix),
            email.hasSuffix(suffix)
        else { return nil }
        let name = String(email.dropFirst(prefix.count).dropLast(suffix.count))
        // The template must give back exactly this address, and the explicit map must not send
        // that user elsewhere.
        guard identities.emails[name] == nil, let back = identities.email(of: name), EmailAddress.same(back, email)
        else { return nil }
        return name
    }

    enum Lookup {
        case found(String)
        /// Nobody to tell (no email, no such Slack user, or not one writd may DM), and why.
        case none(String)
        /// Slack did not answer: try again later.
        case failed(SlackError)
    }

    /// The Slack user id of `user` (for DMs): pinned, or by email (then pinned).
    func slackID(of user: String) async -> Lookup {
        if let id = settings.users[user] { return .found(id) }
        // A database pin whose Slack id the admin has since given to someone else is void.
        if let pinned = await engine.slackPinned(unix: user), !settings.users.values.contains(pinned.slackID) {
            return .found(pinned.slackID)
        }
        // Pinned only under the rules that map a click: the address gives back exactly this user,
        // and the account is a person's.
        guard Self.person(user, identities: identities) != nil else { return .none("not a person's account") }
        guard let email = identities.email(of: user).flatMap(EmailAddress.folded) else {
            return .none("no plain-ASCII email in identities")
        }
        let u: SlackUser
        do throws(SlackError) { u = try await api.lookupByEmail(email) } catch {
            if case .api(_, "users_not_found") = error { return .none("no Slack user with \(email)") }
            return .failed(error)
        }
        guard Self.unixUser(email: email, identities: identities) == user else {
            return .none("\(email) does not map back to \(user) alone")
        }
        guard !u.deleted, !u.isBot, !u.isGuest, u.teamID == teamID else {
            return .none("the Slack account of \(email) is deactivated, a bot, a guest or in another workspace")
        }
        return await engine.slackPin(unix: user, slackID: u.id, email: email)
            ? .found(u.id) : .none("\(user) is pinned to another Slack account")
    }
}
