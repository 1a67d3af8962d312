import WritCore
import WritExpr
import WritHooks
import WritPolicy
import WritProtocol

/// What writd shows in Slack, as Block Kit: the request card, the DMs, the forms. Pure functions
/// of the request as it is now, so an update always shows the latest state and a card re-posted
/// after an outage is right.
///
/// Everything a requester typed (reason, commands, fields) is escaped for mrkdwn: `<`, `>` and
/// `&` become entities, so a reason cannot mention `@channel` or forge a link.
enum SlackCards {
    static let approveAction = "writ_approve"
    static let denyAction = "writ_deny"
    static let extendAction = "writ_extend"
    static let requestCallback = "writ_request"
    static let denyCallback = "writ_deny"
    static let approveCallback = "writ_approve_confirm"

    /// mrkdwn-safe text (Slack's three entities), at most `limit` Unicode scalars. Compared per
    /// scalar, not per character: a prepended mark such as U+0600 joins the `<` after it into one
    /// character, which would otherwise pass unescaped and open a link or an @channel.
    static func escape(_ text: String, limit: Int = 2000) -> String {
        var out = String.UnicodeScalarView()
        var count = 0
        for scalar in text.unicodeScalars {
            if count == limit { return String(out) + "…" }
            count += 1
            switch scalar {
            case "&": out.append(contentsOf: "&amp;".unicodeScalars)
            case "<": out.append(contentsOf: "&lt;".unicodeScalars)
            case ">": out.append(contentsOf: "&gt;".unicodeScalars)
            default: out.append(scalar)
            }
        }
        return String(out)
    }

    static func plain(_ text: String, limit: Int = 150) -> JSONValue {
        let t = text.count > limit ? String(text.prefix(limit - 1)) + "…" : text
        return .object(["type": "plain_text", "text": .string(t), "emoji": true])
    }

    static func mrkdwn(_ text: String) -> JSONValue { .object(["type": "mrkdwn", "text": .string(text)]) }

    static func section(_ text: String) -> JSONValue { .object(["type": "section", "text": mrkdwn(text)]) }

    static func context(_ text: String) -> JSONValue {
        .object(["type": "context", "elements": .array([mrkdwn(text)])])
    }

    /// "sudo as root" / "login".
    static func what(_ r: RequestView) -> String {
        r.capability == "sudo" ? "sudo as \(r.runas)" : r.capability
    }

    /// `14:05 UTC` (the time of day of an RFC 3339 timestamp, from WritExpr's calendar).
    static func time(_ t: Int64) -> String {
        let stamp = Calendar.rfc3339(t)  // 2026-11-25T14:05:00Z
        guard let tee = stamp.firstIndex(of: "T") else { return stamp }
        return String(stamp[stamp.index(after: tee)...].prefix(5)) + " UTC"
    }

    /// One line for notifications and `text` fallbacks.
    static func summary(_ r: RequestView) -> String {
        let verb = r.kind == "extend" ? "asks to extend" : "asks for"
        return "\(r.requester) \(verb) \(what(r)) on \(r.host) for \(DurationText.format(r.duration)) (\(r.id))"
    }

    // MARK: the request card

    static func card(_ r: RequestView, mode: SlackApproval, grant: Grant?) -> (text: String, blocks: JSONValue) {
        var blocks: [JSONValue] = []
        let verb = r.kind == "extend" ? "asks to extend" : "asks for"
        blocks.append(.object(["type": "header", "text": plain("\(r.requester) \(verb) \(what(r)) on \(r.host)")]))
        var fields: [JSONValue] = [
            mrkdwn("*Who*\n\(escape(r.requester))"),
            mrkdwn("*What*\n\(escape(what(r)))"),
            mrkdwn("*Host*\n\(escape(r.host))"),
            mrkdwn("*For*\n\(DurationText.format(r.duration))"),
            mrkdwn("*Flow*\n\(escape(r.flow))"),
            mrkdwn("*Request*\n`\(escape(r.id))`"),
        ]
        if let g = r.extendsGrant { fields.append(mrkdwn("*Extends*\n`\(escape(g))`")) }
        blocks.append(.object(["type": "section", "fields": .array(fields)]))
        if let commands = r.commands, !commands.isEmpty {
            // A section's text holds at most 3,000 characters (Slack refuses the whole message
            // beyond that): the commands that fit, and how many more there are.
            var list = ""
            var shown = 0
            for c in commands {
                let line = escape(c, limit: 300)
                if list.count + line.count > 2_600 { break }
                list += (list.isEmpty ? "" : "\n") + line
                shown += 1
            }
            let more =
                shown < commands.count ? "\n…and \(commands.count - shown) more (writ status shows them all)" : ""
            blocks.append(section("*Commands (exactly)*\n```\(list)```\(more)"))
        } else if r.capability == "sudo" {
            blocks.append(section("*Commands*\nany command as \(escape(r.runas))"))
        }
        blocks.append(section("*Why*\n>\(escape(r.reason, limit: 1000).replacingNewlines)"))
        if let f = r.fields, !f.isEmpty {
            blocks.append(
                context(f.map { "\(escape($0.name)): \(escape($0.value, limit: 200))" }.joined(separator: " · "))
            )
        }
        if let progress = progress(r) { blocks.append(context(progress)) }
        blocks.append(section(stateLine(r, grant: grant)))
        if r.state == "pending" {
            switch mode {
            case .allowed, .confirm:
                var approve: [String: JSONValue] = [
                    "type": "button", "action_id": .string(approveAction), "style": "primary",
                    "text": plain("Approve"), "value": .string(r.id),
                ]
                if mode == .allowed {
                    approve["confirm"] = .object([
                        "title": plain("Approve \(r.id)?"),
                        "text": mrkdwn(
                            "\(escape(r.requester)) gets \(escape(what(r))) on \(escape(r.host)) for \(DurationText.format(r.duration))."
                        ),
                        "confirm": plain("Approve"), "deny": plain("Cancel"),
                    ])
                }
                let deny: JSONValue = .object([
                    "type": "button", "action_id": .string(denyAction), "style": "danger", "text": plain("Deny"),
                    "value": .string(r.id),
                ])
                blocks.append(
                    .object([
                        "type": "actions", "block_id": "writ_decide", "elements": .array([.object(approve), deny]),
                    ])
                )
                if mode == .confirm {
                    blocks.append(context("Approving asks for a comment (flow setting slack_approve: confirm)."))
                }
            case .cli:
                blocks.append(
                    context(
                        "This flow is approved on a host only: `writ approve \(escape(r.id))` (or `writ deny \(escape(r.id)) --reason …`)."
                    )
                )
            }
        }
        let text = "\(summary(r)): \(r.state)"
        return (text, .array(blocks))
    }

    /// "Approvals 1/2 · step team: bob ✓ · waiting for carol, dave" while pending.
    static func progress(_ r: RequestView) -> String? {
        guard let steps = r.steps, !steps.isEmpty else { return nil }
        var parts: [String] = []
        for (i, step) in steps.enumerated() {
            let done =
                step.approvals.isEmpty
                ? "" : " approved by " + step.approvals.map { escape($0) }.joined(separator: ", ")
            let current = r.currentStep == i && r.state == "pending"
            var line =
                "\(current ? "*" : "")\(escape(step.name)) \(step.approvals.count)/\(step.required)\(current ? "*" : "")\(done)"
            if current {
                let waiting = step.approvers.filter { !step.approvals.contains($0) && $0 != r.requester }
                if !waiting.isEmpty {
                    line += " — waiting for " + waiting.prefix(8).map { escape($0) }.joined(separator: ", ")
                }
            }
            parts.append(line)
        }
        return (steps.count > 1 || r.requiredApprovals > 1 || !r.approvals.isEmpty)
            ? "Approvals: " + parts.joined(separator: " → ") : nil
    }

    static func stateLine(_ r: RequestView, grant: Grant?) -> String {
        let by = escape(r.decidedBy ?? "?")
        let note = r.decisionNote.map { escape($0, limit: 500) } ?? ""
        switch r.state {
        case "pending":
            return ":hourglass_flowing_sand: *Waiting for approval* — expires unanswered at \(time(r.pendingUntil))"
        case "approved":
            let until = grant.map { " — grant `\(escape($0.id))` until \(time($0.expiresAt))" } ?? ""
            if let via = r.decidedVia, by.hasPrefix("policy:") || by.hasPrefix("hook:") {
                return
                    ":robot_face: *Auto-approved* by \(escape(via))\(until)\(note.isEmpty ? "" : "\n>\(note.replacingNewlines)")"
            }
            return ":white_check_mark: *Approved* by \(by)\(until)"
        case "denied":
            if let via = r.decidedVia, by.hasPrefix("policy:") || by.hasPrefix("hook:") {
                return ":no_entry: *Denied* by \(escape(via)): \(note)"
            }
            return ":x: *Denied* by \(by): \(note)"
        case "expired": return ":hourglass: *Expired unanswered* at \(time(r.pendingUntil))"
        case "cancelled": return ":heavy_multiplication_x: *Cancelled* by \(by)"
        default: return "*\(escape(r.state))*"
        }
    }

    /// The reply in the card's thread for one event.
    static func threadReply(event: String, actor: String, detail: String, request r: RequestView) -> String? {
        let who = escape(actor)
        switch event {
        case "request.approval":
            return ":ballot_box_with_check: \(who) approved\(detail.isEmpty ? "" : ": \(escape(detail))")"
        case "request.step":
            return ":arrow_right: step complete; next: \(escape(r.steps?[r.currentStep ?? 0].name ?? "?"))"
        case "request.escalate": return ":rotating_light: escalated: \(escape(detail)) may now approve"
        case "request.approve":
            return actor.hasPrefix("policy:") || actor.hasPrefix("hook:")
                ? ":robot_face: auto-approved (\(escape(r.decidedVia ?? actor)))\(detail.isEmpty ? "" : ": \(escape(detail))")"
                : ":white_check_mark: approved by \(who)"
        case "request.deny": return ":x: denied by \(who): \(escape(detail))"
        case "request.expire": return ":hourglass: expired: nobody approved in time"
        case "request.cancel": return ":heavy_multiplication_x: cancelled by \(who)"
        case "grant.extend": return ":stopwatch: grant extended"
        default: return nil
        }
    }

    // MARK: direct messages

    /// The DM to the requester or holder for one event, or nil when the event tells them nothing.
    static func directMessage(_ job: SlackJob) -> (text: String, blocks: JSONValue?)? {
        if job.event.hasPrefix("grant."), let g = job.grant {
            let what = g.capability == .sudo ? "sudo (as \(g.runas))" : g.capability.rawValue
            switch job.event {
            case "grant.warn":
                guard g.revokedAt == nil else { return nil }
                let text =
                    ":hourglass_flowing_sand: Your \(what) grant `\(g.id)` on \(escape(g.host)) ends at \(time(g.expiresAt)); sessions opened under it will be closed."
                let blocks: JSONValue = .array([
                    section(text),
                    .object([
                        "type": "actions", "block_id": "writ_extend",
                        "elements": .array([
                            .object([
                                "type": "button", "action_id": .string(extendAction), "text": plain("Extend"),
                                "value": .string(g.id),
                            ])
                        ]),
                    ]),
                    context("Extend asks for the same time again, through the same flow and approvers."),
                ])
                return (text, blocks)
            case "grant.expire":
                return (
                    ":lock: Your \(what) grant `\(g.id)` on \(escape(g.host)) has ended; sessions opened under it are being closed.",
                    nil
                )
            case "grant.revoke":
                return (
                    ":no_entry_sign: Your \(what) grant `\(g.id)` on \(escape(g.host)) was revoked by \(escape(job.actor)).",
                    nil
                )
            default:
                return nil
            }
        }
        guard let r = job.request else { return nil }
        let subject =
            r.kind == "extend"
            ? "extension of `\(escape(r.extendsGrant ?? "?"))`" : "request for \(escape(what(r))) on \(escape(r.host))"
        switch job.event {
        case "request.approve":
            let until = job.grant.map { " until \(time($0.expiresAt))" } ?? ""
            return (
                ":white_check_mark: Your \(subject) (`\(r.id)`) is approved (\(escape(job.actor.hasPrefix("policy:") ? r.decidedVia ?? job.actor : job.actor)))\(until): it works now.",
                nil
            )
        case "request.deny":
            return (":x: Your \(subject) (`\(r.id)`) was denied by \(escape(job.actor)): \(escape(job.detail))", nil)
        case "request.expire":
            return (
                ":hourglass: Your \(subject) (`\(r.id)`) expired: nobody approved it in time. Ask again with `/writ`.",
                nil
            )
        default:
            return nil
        }
    }

    // MARK: forms

    static let durationChoices: [Int64] = [900, 1800, 3600, 7200, 14400, 28800, 86400]

    /// The `/writ` form: the flows this user may request here, durations within their limits, a
    /// reason (with the flow's example when it has a pattern).
    static func requestForm(flows: [Flow], host: String) -> JSONValue {
        let options: [JSONValue] = flows.prefix(100).map { f in
            let scope = f.capability == .sudo ? "sudo as \(f.runas)" : "login"
            let label = f.description.isEmpty ? "\(f.name) — \(scope)" : "\(f.name) — \(f.description)"
            return .object(["text": plain(label, limit: 75), "value": .string(f.name)])
        }
        let longest = flows.map(\.maxDuration).max() ?? 3600
        var durations = Set(durationChoices.filter { $0 <= longest })
        for f in flows { durations.insert(f.defaultDuration) }
        let durationOptions: [JSONValue] = durations.sorted().prefix(100).map {
            .object(["text": plain(DurationText.format($0)), "value": .string(String($0))])
        }
        let first = flows.first
        let initialDuration = first.map { String($0.defaultDuration) } ?? ""
        let examples = flows.compactMap { f in f.reasonExample.map { "\(f.name): e.g. \($0)" } }
        var reason: [String: JSONValue] = [
            "type": "input", "block_id": "reason", "label": plain("Why"),
            "element": .object([
                "type": "plain_text_input", "action_id": "reason", "multiline": true, "max_length": 1000,
                "placeholder": plain(first?.reasonExample ?? "INC-4521 disk full on db-01"),
            ]),
        ]
        if !examples.isEmpty { reason["hint"] = plain(examples.joined(separator: "; "), limit: 2000) }
        var flowSelect: [String: JSONValue] = [
            "type": "static_select", "action_id": "flow", "options": .array(options),
        ]
        if let o = options.first { flowSelect["initial_option"] = o }
        var durationSelect: [String: JSONValue] = [
            "type": "static_select", "action_id": "duration", "options": .array(durationOptions),
        ]
        if let o = durationOptions.first(where: { $0["value"]?.stringValue == initialDuration }) {
            durationSelect["initial_option"] = o
        }
        return .object([
            "type": "modal",
            "callback_id": .string(requestCallback),
            "title": plain("Request access", limit: 24),
            "submit": plain("Request"),
            "close": plain("Cancel"),
            "blocks": .array([
                context("Access on *\(escape(host))*, granted for a limited time once approved."),
                .object(["type": "input", "block_id": "flow", "label": plain("What"), "element": .object(flowSelect)]),
                .object([
                    "type": "input", "block_id": "duration", "label": plain("For how long"),
                    "element": .object(durationSelect),
                ]),
                .object(reason),
            ]),
        ])
    }

    /// Asks the approver for a comment (approve, `slack_approve: confirm`) or a reason (deny).
    static func decisionForm(approve: Bool, request r: RequestView, channel: String?) -> JSONValue {
        .object([
            "type": "modal",
            "callback_id": .string(approve ? approveCallback : denyCallback),
            "private_metadata": .string(r.id + (channel.map { " " + $0 } ?? "")),
            "title": plain(approve ? "Approve request" : "Deny request", limit: 24),
            "submit": plain(approve ? "Approve" : "Deny"),
            "close": plain("Cancel"),
            "blocks": .array([
                section("*\(escape(summary(r)))*\n>\(escape(r.reason, limit: 500).replacingNewlines)"),
                .object([
                    "type": "input", "block_id": "text",
                    "label": plain(
                        approve
                            ? "Why you approve (recorded in the audit log)" : "Why you deny it (sent to the requester)"
                    ),
                    "element": .object([
                        "type": "plain_text_input", "action_id": "text", "multiline": true, "max_length": 1000,
                        "min_length": 3,
                    ]),
                ]),
            ]),
        ])
    }
}

extension String {
    /// For a mrkdwn block quote: every line quoted.
    var replacingNewlines: String {
        split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\n>")
    }
}
