import FoundationEssentials
import Glibc
import Testing
import WritPolicy

@testable import WritHooks

/// Real executables in a temp directory, run by the real runner.
@Suite("Running hooks")
struct HookRunnerTests {
    let runner = testRunner()

    func decide(
        _ path: String,
        _ input: HookInput = sampleInput(),
        timeout: Int = 5000
    ) async -> Result<
        HookDecision, HookFailure
    > {
        await runner.decide(HookSpec(path: path, timeoutMilliseconds: timeout), input: input)
    }

    @Test func approveDenyDefer() async throws {
        try await Sandbox.with { box in
            let approve = try box.write(
                "approve",
                """
                #!/bin/sh
                input=$(cat)
                case "$input" in *'"user":"alice"'*) ;; *) echo "no alice in: $input" >&2; exit 3 ;; esac
                echo '{"decision": "approve", "reason": "on call", "duration": 600}'
                """
            )
            #expect(await decide(approve) == .success(HookDecision(kind: .approve, reason: "on call", duration: 600)))

            let deny = try box.write(
                "deny",
                "#!/bin/sh\ncat >/dev/null\necho '{\"decision\":\"deny\",\"reason\":\"no\"}'\n"
            )
            #expect(await decide(deny) == .success(HookDecision(kind: .deny, reason: "no")))

            let deferring = try box.write(
                "defer",
                #"""
                #!/bin/sh
                cat >/dev/null
                printf '%s\n' '{"decision": "defer", "reason": "needs a DBA", "add_approvers": ["carol", "dave"]}'
                """#
            )
            #expect(
                await decide(deferring)
                    == .success(HookDecision(kind: .defer, reason: "needs a DBA", addApprovers: ["carol", "dave"]))
            )

            // A hook may only shorten a grant.
            let longer = try box.write(
                "longer",
                "#!/bin/sh\ncat >/dev/null\necho '{\"decision\":\"approve\",\"reason\":\"ok\",\"duration\":7200}'\n"
            )
            guard case .failure(.garbage(let what)) = await decide(longer) else {
                Issue.record("a longer duration was accepted")
                return
            }
            #expect(what.contains("may only shorten"))
        }
    }

    @Test func crashAndSignal() async throws {
        try await Sandbox.with { box in
            let crash = try box.write(
                "crash",
                "#!/bin/sh\necho 'connecting to db' >&2\necho 'boom: database unreachable' >&2\nexit 1\n"
            )
            #expect(
                await decide(crash)
                    == .failure(.exited(status: 1, stderr: "connecting to db\\nboom: database unreachable"))
            )
            let silent = try box.write("silent", "#!/bin/sh\nexit 7\n")
            #expect(await decide(silent) == .failure(.exited(status: 7, stderr: "")))
            let noisy = try box.write(
                "noisy",
                "#!/bin/sh\nhead -c 100000 /dev/zero | tr '\\0' x >&2\necho ' the end' >&2\nexit 2\n"
            )
            guard case .failure(.exited(2, let tail)) = await decide(noisy) else {
                Issue.record("no exit status 2")
                return
            }
            #expect(tail.utf8.count <= 1024 && tail.hasPrefix("…") && tail.hasSuffix("xxx the end"))

            let killed = try box.write("killed", "#!/bin/sh\necho 'about to die' >&2\nkill -KILL $$\n")
            #expect(await decide(killed) == .failure(.signalled(signal: SIGKILL, stderr: "about to die")))
            let aborted = try box.write("aborted", "#!/bin/sh\nkill -TERM $$\n")
            #expect(await decide(aborted) == .failure(.signalled(signal: SIGTERM, stderr: "")))
        }
    }

    @Test func timeoutKillsTheGroup() async throws {
        try await Sandbox.with { box in
            let slow = try box.write(
                "slow",
                "#!/bin/sh\nsleep 60 &\necho $! > \(box.out)/child\necho $$ > \(box.out)/pid\nsleep 60\n"
            )
            let clock = ContinuousClock()
            let started = clock.now
            #expect(await decide(slow, timeout: 300) == .failure(.timedOut(milliseconds: 300)))
            let took = clock.now - started
            #expect(took >= .milliseconds(300) && took < .seconds(25), "took \(took)")
            let pid = try #require(box.read(box.out + "/pid").flatMap { Int32($0.trimmingSpaces) })
            let child = try #require(box.read(box.out + "/child").flatMap { Int32($0.trimmingSpaces) })
            #expect(isGone(pid), "the hook was not reaped")
            #expect(await becomesGone(child), "the hook's child survived")
        }
    }

    @Test func backgroundChildHoldingStdout() async throws {
        try await Sandbox.with { box in
            // The child keeps stdout open for 60 s; the hook itself answers and exits. The bounds below
            // tell "ended at its timeout" from "waited for the child": loose, for a loaded machine
            // (AddressSanitizer and every suite at once: 9.6 s seen for a 0.5 s timeout).
            let forks = try box.write(
                "forks",
                """
                #!/bin/sh
                cat >/dev/null
                sleep 60 &
                echo "{\\"decision\\": \\"defer\\", \\"reason\\": \\"child $! hook $$\\"}"
                """
            )
            let clock = ContinuousClock()
            let started = clock.now
            let result = await decide(forks, timeout: 4000)
            #expect(clock.now - started < .seconds(25))
            let reason = try result.get().reason
            let words = reason.split(separator: " ")
            let child = try #require(Int32(words[1]))
            let hook = try #require(Int32(words[3]))
            #expect(isGone(hook))
            #expect(await becomesGone(child), "the background child survived the hook")
        }
    }

    @Test func childThatLeftTheGroupCannotHoldWritdPastTheTimeout() async throws {
        try await Sandbox.with { box in
            let escapes = try box.write(
                "escapes",
                """
                #!/bin/sh
                cat >/dev/null
                setsid sleep 60 &
                echo $! > \(box.out)/escaped
                echo '{"decision": "defer"}'
                sleep 0.2  # until the child has left the group (else the hook's exit kills it)
                """
            )
            let clock = ContinuousClock()
            let started = clock.now
            let result = await decide(escapes, timeout: 500)
            let took = clock.now - started
            if let pid = box.read(box.out + "/escaped").flatMap({ Int32($0.trimmingSpaces) }) { kill(pid, SIGKILL) }
            #expect(result == .failure(.timedOut(milliseconds: 500)))
            #expect(took < .seconds(25), "took \(took)")
        }
    }

    @Test func garbageAndHugeOutput() async throws {
        try await Sandbox.with { box in
            let cases: [(String, String)] = [
                ("echo 'I approve'", "not JSON"),
                (#"echo '{"decision":"defer"}'; echo '{"decision":"approve","reason":"x"}'"#, "more than one"),
                (#"echo '{"decision":"yes"}'"#, "\"decision\" is \"yes\""),
                (#"echo '{"decision":"approve","reason":"x","duration":"1h"}'"#, "\"duration\" is \"1h\""),
                ("true", "no output"),
            ]
            for (index, (body, expected)) in cases.enumerated() {
                let hook = try box.write("garbage\(index)", "#!/bin/sh\n\(body)\n")
                guard case .failure(.garbage(let what)) = await decide(hook) else {
                    Issue.record("\(body) was not garbage")
                    continue
                }
                #expect(what.contains(expected), "\(body) -> \(what)")
            }
            let huge = try box.write(
                "huge",
                "#!/bin/sh\necho $$ > \(box.out)/huge\nhead -c 1048576 /dev/zero | tr '\\0' a\nsleep 30\n"
            )
            let clock = ContinuousClock()
            let started = clock.now
            #expect(await decide(huge) == .failure(.outputTooLarge(limit: 65536)))
            #expect(clock.now - started < .seconds(10))
            let pid = try #require(box.read(box.out + "/huge").flatMap { Int32($0.trimmingSpaces) })
            #expect(isGone(pid))
        }
    }

    @Test func hookThatIgnoresItsInput() async throws {
        try await Sandbox.with { box in
            // 60 KiB of context: more than fits a pipe write at once on some systems, under the cap.
            let big = sampleInput(context: ["notes": .string(String(repeating: "n", count: 60 * 1024))])
            let closes = try box.write(
                "closes",
                "#!/bin/sh\nexec 0<&-\nsleep 0.2\necho '{\"decision\":\"deny\",\"reason\":\"closed stdin\"}'\n"
            )
            #expect(await decide(closes, big) == .success(HookDecision(kind: .deny, reason: "closed stdin")))
            let ignores = try box.write(
                "ignores",
                "#!/bin/sh\nsleep 0.2\necho '{\"decision\":\"deny\",\"reason\":\"never read\"}'\n"
            )
            #expect(await decide(ignores, big) == .success(HookDecision(kind: .deny, reason: "never read")))
            // Exits at once without reading: writing to it must not raise SIGPIPE in writd.
            let quick = try box.write("quick", "#!/bin/sh\necho '{\"decision\":\"defer\"}'\n")
            for _ in 0..<5 { #expect(await decide(quick, big).map(\.kind) == .success(.defer)) }
        }
    }

    @Test func inputIsCapped() async throws {
        try await Sandbox.with { box in
            let hook = try box.write("ran", "#!/bin/sh\ntouch \(box.out)/ran\necho '{\"decision\":\"defer\"}'\n")
            let huge = sampleInput(reason: String(repeating: "r", count: 200 * 1024))
            guard case .failure(.notRunnable(let why)) = await decide(hook, huge) else {
                Issue.record("a 200 KiB document was accepted")
                return
            }
            #expect(why.contains("over the limit of 65536"))
            #expect(box.read(box.out + "/ran") == nil, "the hook ran")
            let raw = await runner.run(
                HookSpec(path: hook),
                event: "on_request",
                input: [UInt8](repeating: 0x20, count: 65537)
            )
            guard case .failure(.notRunnable) = raw else {
                Issue.record("65537 bytes of input were accepted")
                return
            }
        }
    }

    @Test func environmentIsExactlyTheFixedSet() async throws {
        setenv("WRIT_TEST_CANARY", "leaked", 1)
        setenv("PYTHONPATH", "/nonexistent/leak", 1)
        try await Sandbox.with { box in
            let hook = try box.write(
                "env.py",
                """
                #!/usr/bin/python3
                import json, os, sys
                json.dump({"env": dict(os.environ), "argv": sys.argv, "cwd": os.getcwd()}, sys.stdout)
                """
            )
            let spec = HookSpec(
                path: hook,
                environment: ["WEBHOOK_URL": "http://127.0.0.1:9/x", "TICKET_TOKEN": "s3cret"]
            )
            let raw = try await runner.run(spec, event: "on_approve", input: Array("{}".utf8)).get()
            struct Seen: Decodable {
                var env: [String: String]
                var argv: [String]
                var cwd: String
            }
            let seen = try JSONDecoder().decode(Seen.self, from: Data(raw))
            let account = geteuid() == 0 ? "nobody" : (Account.lookup(uid: geteuid())?.name ?? String(geteuid()))
            let home = geteuid() == 0 ? "/nonexistent" : (Account.lookup(uid: geteuid())?.home ?? "/")
            #expect(
                seen.env == [
                    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "LANG": "C.UTF-8",
                    "HOME": home,
                    "USER": account,
                    "LOGNAME": account,
                    "SHELL": "/bin/sh",
                    "WRIT_HOOK_EVENT": "on_approve",
                    "WRIT_HOOK_VERSION": "1",
                    "PYTHONPATH": Sandbox.resolvedLibrary,
                    "PYTHONDONTWRITEBYTECODE": "1",
                    "PYTHONNOUSERSITE": "1",
                    "WEBHOOK_URL": "http://127.0.0.1:9/x",
                    "TICKET_TOKEN": "s3cret",
                ]
            )
            #expect(seen.argv == [hook, "on_approve"])
            #expect(seen.cwd == "/")

            // Without a library path there is no PYTHONPATH at all.
            let bare = try await testRunner(library: nil).run(HookSpec(path: hook), event: "on_request", input: [])
                .get()
            let bareSeen = try JSONDecoder().decode(Seen.self, from: Data(bare))
            #expect(bareSeen.env["PYTHONPATH"] == nil)
            #expect(bareSeen.env["WRIT_TEST_CANARY"] == nil)
        }
        unsetenv("WRIT_TEST_CANARY")
        unsetenv("PYTHONPATH")
    }

    @Test func environmentNamesAreChecked() async throws {
        try await Sandbox.with { box in
            let hook = try box.write("ok", "#!/bin/sh\necho '{\"decision\":\"defer\"}'\n")
            for (name, expected) in [
                ("PATH", "set by writd"), ("WRIT_HOOK_EVENT", "set by writd"), ("PYTHONPATH", "set by writd"),
                ("lower", "not valid"), ("1ABC", "not valid"), ("A-B", "not valid"), ("", "not valid"),
            ] {
                let spec = HookSpec(path: hook, environment: [name: "hunter2-secret"])
                guard case .failure(let failure) = await runner.decide(spec, input: sampleInput()) else {
                    Issue.record("\(name) was accepted")
                    continue
                }
                #expect(failure.description.contains(expected), "\(name): \(failure)")
                #expect(!failure.description.contains("hunter2"))
            }
            let nul = HookSpec(path: hook, environment: ["TOKEN": "a\u{0}hunter2"])
            guard case .failure(let failure) = await runner.decide(nul, input: sampleInput()) else {
                Issue.record("a NUL byte was accepted")
                return
            }
            #expect(failure.description.contains("NUL") && !failure.description.contains("hunter2"))
        }
    }

    @Test func runsAsTheHookUserInAConfinedProcess() async throws {
        try await Sandbox.with { box in
            let hook = try box.write(
                "facts",
                """
                #!/bin/sh
                echo "uid $(id -u)"
                echo "gid $(id -g)"
                echo "groups $(id -G)"
                echo "cwd $(pwd)"
                echo "core $(ulimit -c)"
                echo "files $(ulimit -n)"
                echo "fds $(ls /proc/self/fd | sort -n | tr '\\n' ' ')"
                echo "session $(cut -d' ' -f6 /proc/$$/stat) self $$"
                grep -E '^(NoNewPrivs|SigBlk|SigIgn):' /proc/$$/status | tr -d '\\t'
                echo "umask $(umask)"
                """
            )
            let raw = try await runner.run(HookSpec(path: hook), event: "on_request", input: Array("{}".utf8)).get()
            var facts: [String: String] = [:]
            for line in String(decoding: raw, as: UTF8.self).split(separator: "\n") {
                let parts = line.split(separator: line.contains(":") ? ":" : " ", maxSplits: 1)
                if parts.count == 2 { facts[String(parts[0])] = String(parts[1]).trimmingSpaces }
            }
            let uid = geteuid() == 0 ? "65534" : String(geteuid())
            #expect(facts["uid"] == uid)
            if geteuid() == 0 {
                #expect(facts["gid"] == "65534")
                #expect(facts["groups"] == "65534")
            }
            #expect(facts["cwd"] == "/")
            #expect(facts["core"] == "0")
            #expect(facts["files"] == "256")
            #expect(facts["fds"] == "0 1 2 3")  // 3 is ls's own directory
            #expect(facts["NoNewPrivs"] == "1")
            #expect(facts["SigBlk"] == "0000000000000000")
            #expect(facts["SigIgn"] == "0000000000000000")
            #expect(facts["umask"] == "0022")
            let session = try #require(facts["session"]?.split(separator: " "))
            #expect(session.count == 3 && session[0] == session[2], "not its own session: \(session)")
        }
    }

    @Test func manyAtOnce() async throws {
        try await Sandbox.with { box in
            let hook = try box.write(
                "echo",
                #"""
                #!/bin/sh
                id=$(sed -n 's/.*"id":"\(r-[0-9]*\)".*/\1/p')
                echo "{\"decision\": \"deny\", \"reason\": \"$id\"}"
                """#
            )
            let runner = self.runner
            let reasons = await withTaskGroup(of: (Int, String?).self) { group in
                for index in 0..<12 {
                    group.addTask {
                        var input = sampleInput()
                        input.request.id = "r-\(index)"
                        let result = await runner.decide(HookSpec(path: hook), input: input)
                        return (index, try? result.get().reason)
                    }
                }
                var all: [Int: String?] = [:]
                for await (index, reason) in group { all[index] = reason }
                return all
            }
            for index in 0..<12 { #expect(reasons[index] == "r-\(index)") }
        }
    }

    @Test func startFailures() async throws {
        try await Sandbox.with { box in
            let noInterpreter = try box.write("nointerp", "#!/nonexistent/interpreter\n")
            guard case .failure(.notRunnable(let why)) = await decide(noInterpreter) else {
                Issue.record("a missing interpreter was not refused")
                return
            }
            #expect(why.contains("could not execute") && why.contains("interpreter"), "\(why)")

            let timeout = try box.write("t", "#!/bin/sh\necho '{\"decision\":\"defer\"}'\n")
            guard case .failure(.notRunnable(let zero)) = await decide(timeout, timeout: 0) else {
                Issue.record("a zero timeout was accepted")
                return
            }
            #expect(zero.contains("positive timeout"))
            let badEvent = await runner.run(HookSpec(path: timeout), event: "on request; rm", input: [])
            guard case .failure(.notRunnable) = badEvent else {
                Issue.record("a bad event name was accepted")
                return
            }
        }
    }
}

extension String {
    var trimmingSpaces: String {
        String(self.drop(while: { $0.isWhitespace }).reversed().drop(while: { $0.isWhitespace }).reversed())
    }
}
