import Glibc
import WritAudit
import WritCore
import WritEngine
import WritExpr
import WritHooks
import WritPolicy
import WritProcesses
import WritStore

/// Policy hooks: the flow's `on_request` hook may decide a request; `on_approve`, `on_deny` and
/// `on_expire` are told. Hooks run off the actor (a hook may take seconds); their answer comes
/// back through `applyRequestHook`, which decides only a request that is still pending.
extension Engine {
    func hookRunner() -> HookRunner {
        // A writd that is not root (tests) can only run hooks as itself.
        HookRunner(
            user: getuid() == 0 ? policy?.hookUser ?? Policy.builtInHookUser : nil,
            libraryPath: config.hookLibraryPath
        )
    }

    /// The document a hook reads on stdin.
    func hookInput(_ r: EngineRequest, event: String, grant: Grant? = nil) -> HookInput {
        let decision: HookInput.Decision? =
            event == "on_request"
            ? nil
            : HookInput.Decision(
                state: r.core.state.rawValue,
                by: r.core.decidedBy,
                note: r.core.decisionNote,
                grantId: grant?.id ?? r.grantID,
                expiresAt: grant?.expiresAt
            )
        return HookInput(
            event: event,
            request: HookInput.Request(
                id: r.core.id,
                kind: r.kind,
                user: r.core.requester,
                uid: r.requesterUID,
                groups: r.groups,
                capability: r.core.capability.rawValue,
                flow: r.flow,
                host: r.host,
                runas: r.runas,
                commands: r.commands,
                duration: r.core.duration,
                reason: r.core.reason,
                fields: r.fields,
                createdAt: r.core.createdAt
            ),
            context: Self.decodeContext(r.context),
            time: HookInput.Time(now: now()),
            policy: HookInput.PolicyInfo(version: r.policyVersion, gitCommit: r.policyCommit, flow: r.flow),
            decision: decision
        )
    }

    static func decodeContext(_ text: String) -> [String: JSONValue] {
        guard text != "{}", case .object(let o)? = EngineRequest.decodeJSON(JSONValue.self, text) else { return [:] }
        return o
    }

    /// At most this many hooks run at once (each is a process and a thread). Requesters decide
    /// how often hooks run, so beyond it an on_request hook is not run (the request goes to
    /// people, as when a hook fails) and a notification is dropped, both logged.
    static let maxRunningHooks = 16

    /// Counts a hook as running; false (and nothing counted) when `maxRunningHooks` run already.
    func admitHook() -> Bool {
        guard runningHooks < Self.maxRunningHooks else { return false }
        runningHooks += 1
        return true
    }

    func hookFinished() { runningHooks -= 1 }

    /// Runs the on_request hook of a request just filed, and applies its answer when it comes.
    func startRequestHook(_ request: EngineRequest, hook: HookSpec, flow: Flow, input: RequestInput) {
        let id = request.core.id
        guard admitHook() else {
            applyRequestHook(
                id,
                hook: hook,
                result: .failure(.notRunnable("\(Self.maxRunningHooks) hooks are running already; not run")),
                tookMs: 0
            )
            return
        }
        let runner = hookRunner()
        let document = hookInput(request, event: "on_request")
        let spec = hook
        let started = DaemonConfiguration.monotonicMilliseconds()
        // The task runs on this actor; only the hook's run itself is awaited off it.
        Task {
            let result = await runner.decide(spec, input: document)
            self.hookFinished()
            self.applyRequestHook(
                id,
                hook: hook,
                result: result,
                tookMs: DaemonConfiguration.monotonicMilliseconds() - started
            )
        }
    }

    /// Applies an on_request hook's answer. A hook that failed decides nothing: the request stays
    /// with people. Either way the run is audited and a failure goes to syslog.
    func applyRequestHook(_ id: String, hook: HookSpec, result: Result<HookDecision, HookFailure>, tookMs: Int64) {
        let now = self.now()
        guard var request = try? EngineRequest.load(db, id: id) else { return }
        let verdict: HookVerdict
        switch result {
        case .success(let d):
            switch d.kind {
            case .approve: verdict = .approve(reason: d.reason, duration: d.duration)
            case .deny: verdict = .deny(reason: d.reason)
            case .defer: verdict = .defer(addApprovers: d.addApprovers)
            }
        case .failure(let failure):
            verdict = .failed(failure.description)
            logger.error(
                "request \(id): hook on_request \(hook.path) failed, the request goes to people: \(failure.description)"
            )
            Syslog.log(
                LOG_ERR,
                "hook on_request \(LogText.escape(hook.path)) failed for request \(id): \(LogText.escape(failure.description)) — the request goes to its approvers"
            )
        }
        var run: [AuditEvent.Field] = [
            .init("request", id), .init("hook", "on_request"), .init("path", hook.path),
            .init("took_ms", String(tookMs)),
        ]
        var still = request.core.state == .pending && now < request.core.pendingUntil
        // Only accounts that exist, and never the requester: a hook cannot make a requester their
        // own approver. Recorded as added only if they were.
        var names: [String] = []
        switch verdict {
        case .approve(let reason, let d):
            run += [.init("result", "approve"), .init("reason", reason)]
            if let d { run.append(.init("duration", String(d))) }
        case .deny(let reason): run += [.init("result", "deny"), .init("reason", reason)]
        case .defer(let add):
            run.append(.init("result", "defer"))
            names = add.filter { $0 != request.core.requester && directory.user(named: $0) != nil }
        case .failed(let message): run += [.init("result", "failed"), .init("error", message)]
        }
        if !still {
            run.append(.init("applied", "no: the request was decided before the hook answered"))
        } else if policy?.flow(named: request.flow)?.hooks.onRequest?.path != hook.path {
            // The policy was reloaded while the hook ran and no longer asks this hook.
            still = false
            run.append(.init("applied", "no: the policy no longer names this hook"))
        }
        let by = "hook:on_request"
        var decided: AccessRequest.State? = nil
        do {
            try state.transaction { () throws(StoreError) in
                guard still else {
                    try audit.queue(db, AuditEvent(time: now, event: "hook.run", actor: "writd", fields: run))
                    return
                }
                if !names.isEmpty {
                    let added = request.core.addApprovers(names, toStep: 0)
                    run.append(
                        .init(
                            "added_approvers",
                            added.isEmpty ? "none (the first step was done)" : added.joined(separator: ",")
                        )
                    )
                }
                try audit.queue(db, AuditEvent(time: now, event: "hook.run", actor: "writd", fields: run))
                switch verdict.resolution(forDuration: request.core.duration) {
                case .approved(let duration, let reason):
                    request.core = request.core.decidedWithoutPeople(
                        .approved,
                        at: now,
                        by: by,
                        note: reason.isEmpty ? "approved by the on_request hook" : reason,
                        duration: duration
                    )
                    request.decidedVia = "hook on_request (\(hook.path))"
                    try issue(&request, notBefore: now, expiresAt: now + duration, approvedBy: by, at: now)
                    try audit.queue(db, requestEvent("request.approve", request, actor: by, at: now, via: nil))
                    decided = .approved
                case .denied(let reason):
                    request.core = request.core.decidedWithoutPeople(
                        .denied,
                        at: now,
                        by: by,
                        note: reason.isEmpty ? "denied by the on_request hook" : reason
                    )
                    request.decidedVia = "hook on_request (\(hook.path))"
                    try audit.queue(db, requestEvent("request.deny", request, actor: by, at: now, via: nil))
                    decided = .denied
                case .people:
                    break
                }
                try request.save(db)
            }
        } catch {
            logger.error("request \(id): cannot apply the on_request hook's answer: \(error.description)")
        }
        flushAudit()
        rearm()
        if decided == .approved { notifyHook("on_approve", request) }
        if decided == .denied { notifyHook("on_deny", request) }
    }

    /// Tells the flow's hook for `event` (on_approve, on_deny, on_expire) what happened, without
    /// waiting for it. A failure is logged; it changes nothing.
    func notifyHook(_ event: String, _ request: EngineRequest, grant: Grant? = nil) {
        guard let hook = policy?.flow(named: request.flow)?.hooks[event] else { return }
        guard admitHook() else {
            logger.error("request \(request.core.id): hook \(event) not run: \(Self.maxRunningHooks) hooks are running")
            Syslog.log(LOG_ERR, "hook \(event) not run for request \(request.core.id): too many hooks running")
            return
        }
        let runner = hookRunner()
        let document = hookInput(request, event: event, grant: grant)
        let spec = hook
        let logger = self.logger
        let id = request.core.id
        Task {
            let failure = await runner.notify(spec, input: document)
            self.hookFinished()
            if let failure {
                logger.error("request \(id): hook \(event) \(hook.path) failed: \(failure.description)")
                Syslog.log(
                    LOG_ERR,
                    "hook \(event) \(LogText.escape(hook.path)) failed for request \(id): \(LogText.escape(failure.description))"
                )
            }
        }
    }
}
