import ArgumentParser
import Dispatch
import Glibc
import WritAudit
import WritCore
import WritExpr
import WritHooks
import WritPolicy
import WritProcesses
import WritProtocol

struct PolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Check, test and replay approval policy files.",
        subcommands: [Validate.self, Test.self, Replay.self]
    )

    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a policy file; errors are printed as file:line:column: message.",
            discussion: "Exit status: 0 valid, 1 errors found. Use it in CI before a policy reaches hosts."
        )
        @Argument(help: "The policy file.") var path: String = "/etc/writ/policy.yaml"

        func run() throws {
            let policy = try loadPolicy(path)
            var line =
                "\(path): valid, \(policy.flows.count) flow(s): \(policy.flows.map(\.name).joined(separator: ", "))"
            if let commit = PolicyProvenance.gitCommit(forFileAt: path) { line += " (git \(commit.prefix(12)))" }
            print(line)
        }
    }

    struct Test: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a policy's test cases: one PASS/FAIL line per case and a summary.",
            discussion: """
                The cases live next to the policy (policy.yaml → policy.tests.yaml) unless --cases names \
                files; docs/policy-tests.md describes them. Hooks run for real (as the policy's hook_user \
                when run by root, else as you) unless a case gives their answer.
                Exit status: 0 all passed, 1 a case failed, 2 a file has errors.
                """
        )
        @Argument(help: "The policy file.") var path: String = "/etc/writ/policy.yaml"
        @Option(name: .customLong("cases"), help: "A cases file (repeatable); default: next to the policy.")
        var caseFiles: [String] = []
        @Flag(help: "Also print what each passing case decided.") var verbose = false
        @Option(help: "Directory holding writ_hook.py, put on hooks' PYTHONPATH.")
        var hookLibrary: String = HookRunner.installedLibraryPath

        func run() throws {
            let policy = try loadPolicy(path)
            let files = caseFiles.isEmpty ? [PolicyCases.defaultPath(forPolicy: path)] : caseFiles
            let runner = HookRunner(user: getuid() == 0 ? policy.hookUser : nil, libraryPath: hookLibrary)
            var passed = 0
            var failed = 0
            var covered: Set<String> = []
            for file in files {
                let suite: PolicyCases
                do { suite = try PolicyCases.load(path: file) } catch {
                    print(error.description)
                    throw CLIError("\(file): \(error.issues.count) error(s) in the test cases", exitCode: 2)
                }
                for c in suite.cases {
                    let result = suite.run(c, policy: policy) { hook, input, evaluation in
                        Self.runHook(runner, hook, input, evaluation, policy: policy, path: path)
                    }
                    if let flow = result.flow { covered.insert(flow) }
                    let problems = PolicyCases.mismatches(c, result)
                    if problems.isEmpty {
                        passed += 1
                        print("PASS  \(c.name)" + (verbose ? "  — \(result.summary)" : ""))
                    } else {
                        failed += 1
                        print("FAIL  \(c.name)  (\(c.place))")
                        for p in problems { print("      \(p)") }
                    }
                    if let note = result.hookNote, verbose || !problems.isEmpty { print("      \(note)") }
                    for e in result.conditionErrors { print("      condition error (treated as not deciding): \(e)") }
                }
            }
            // A flow no case reaches is policy nobody has checked: say so, without failing.
            let uncovered = policy.flows.map(\.name).filter { !covered.contains($0) }
            for name in uncovered { print("warn  flow \(name): no case reaches it — add one to \(files[0])") }
            print(
                "\(passed + failed) case(s): \(passed) passed, \(failed) failed"
                    + (uncovered.isEmpty ? "" : "; \(uncovered.count) flow(s) without a case")
            )
            if failed > 0 { throw ExitCode(1) }
        }

        /// Runs the flow's on_request hook for real with the case's request.
        static func runHook(
            _ runner: HookRunner,
            _ hook: HookSpec,
            _ input: RequestInput,
            _ evaluation: Evaluation,
            policy: Policy,
            path: String
        ) -> (HookVerdict, String) {
            let document = HookInput(
                event: "on_request",
                request: HookInput.Request(
                    id: "r_test",
                    kind: input.kind,
                    user: input.user,
                    uid: 0,
                    groups: input.unixGroups.sorted(),
                    capability: evaluation.flow.capability.rawValue,
                    flow: evaluation.flow.name,
                    host: input.host,
                    runas: evaluation.runas,
                    commands: evaluation.commands,
                    duration: evaluation.duration,
                    reason: input.reason,
                    fields: input.fields,
                    createdAt: input.now
                ),
                context: input.context.mapValues(JSONValue.init),
                time: HookInput.Time(now: input.now),
                policy: HookInput.PolicyInfo(
                    version: "test",
                    gitCommit: PolicyProvenance.gitCommit(forFileAt: path),
                    flow: evaluation.flow.name
                ),
                decision: nil
            )
            let result = blocking { await runner.decide(hook, input: document) }
            switch result {
            case .success(let d):
                let note = "ran \(hook.path): \(d.kind.rawValue)\(d.reason.isEmpty ? "" : " (\(d.reason))")"
                switch d.kind {
                case .approve: return (.approve(reason: d.reason, duration: d.duration), note)
                case .deny: return (.deny(reason: d.reason), note)
                case .defer: return (.defer(addApprovers: d.addApprovers), note)
                }
            case .failure(let failure):
                return (
                    .failed(failure.description),
                    "ran \(hook.path): failed — \(failure.description) (the request goes to people)"
                )
            }
        }
    }
}

/// Reads and checks a policy; errors are printed as file:line:column lines.
func loadPolicy(_ path: String) throws -> Policy {
    do { return try Policy.load(path: path) } catch {
        print(error.description)
        throw CLIError(
            "\(path): \(error.issues.count) error(s) — fix them, then reload writd (\(DaemonControl.command("reload")))"
        )
    }
}

/// Waits for async work from synchronous command code (the hooks' runner is async: it waits on
/// its own thread, so blocking here cannot starve it).
func blocking<T: Sendable>(_ work: @escaping @Sendable () async -> T) -> T {
    let box = BlockingBox<T>()
    let done = DispatchSemaphore(value: 0)
    Task {
        box.value = await work()
        done.signal()
    }
    done.wait()
    return box.value!
}

/// Carries a result out of the task `blocking` waits for (written once, read after the signal).
final class BlockingBox<T>: @unchecked Sendable {
    var value: T?
}

extension PolicyCommand {
    struct Replay: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Decide the requests in the audit log again under a policy, and show what would change.",
            discussion: """
                Each request.create and request.refuse record is decided again under POLICY: with the \
                requester's groups, fields, context and time as recorded, approver groups as this host \
                resolves them now. Hooks are not run (a flow that would ask its hook says so). \
                Exit status: 0, or 1 with --fail-on-change when a decision would change.
                """
        )
        @Argument(help: "The policy to replay under (e.g. the changed file, before it ships).") var path: String
        @OptionGroup var auditOptions: AuditOptions
        @Option(help: "Only requests newer than this: a duration (30d) or UTC seconds.") var since: String?
        @Flag(help: "List every request, not only the changed ones.") var all = false
        @Flag(help: "Exit 1 when any decision would change (for CI).") var failOnChange = false
        @Flag(help: "Print JSON lines instead of a table.") var json = false

        func run() throws {
            let policy = try loadPolicy(path)
            let log = try auditOptions.log()
            let lines: [String]
            do { lines = try log.lines() } catch {
                throw CLIError("cannot read the audit log \(log.path): \(error.description) — replay reads it as root")
            }
            var sinceEpoch: Int64? = nil
            if let since { sinceEpoch = try Int64(since) ?? (currentTime() - parseDuration(since)) }
            let outcomes = PolicyReplay.replay(
                lines.compactMap(AuditLine.flatFields),
                policy: policy,
                since: sinceEpoch,
                membersOf: UserDirectory.members(ofGroup:)
            )
            let shown = all ? outcomes : outcomes.filter(\.changed)
            if json {
                for o in shown {
                    print(
                        JSONOut.encode(
                            ReplayLine(
                                request: o.id,
                                time: o.time,
                                user: o.user,
                                flow: o.flow,
                                changed: o.changed,
                                change: o.change,
                                then: o.then.description,
                                now: o.now.description
                            )
                        )
                    )
                }
            } else if !shown.isEmpty {
                print(
                    Table.render(
                        ["REQUEST", "TIME (UTC)", "USER", "FLOW", "THEN", "UNDER \(path)"],
                        shown.map {
                            [
                                $0.id, UTCTime.format($0.time), LogText.escape($0.user, limit: 32), $0.flow,
                                LogText.escape($0.then.description, limit: 90),
                                LogText.escape($0.now.description, limit: 90),
                            ]
                        },
                        useColor: isatty(1) != 0
                    )
                )
            }
            let changed = outcomes.filter(\.changed)
            var kinds: [String: Int] = [:]
            for o in changed { kinds[o.change ?? "changed", default: 0] += 1 }
            let detail = kinds.sorted { $0.value > $1.value }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
            print(
                "replayed \(outcomes.count) request(s) from \(log.path): \(changed.count) would be decided differently"
                    + (detail.isEmpty ? "" : " — \(detail)")
            )
            if failOnChange && !changed.isEmpty { throw ExitCode(1) }
        }
    }

    /// One request of `writ policy replay --json`.
    struct ReplayLine: Encodable {
        var request: String
        var time: Int64
        var user: String
        var flow: String
        var changed: Bool
        var change: String?
        var then: String
        var now: String
    }
}
