import FoundationEssentials
import Glibc
import Testing
import WritPolicy

@testable import WritHooks

@Suite("Hook path and user checks")
struct HookPathTests {
    let runner = testRunner()

    func refusal(_ path: String, runner: HookRunner? = nil) async -> String? {
        let result = await (runner ?? self.runner).decide(HookSpec(path: path), input: sampleInput())
        if case .failure(.notRunnable(let why)) = result { return why }
        return nil
    }

    @Test func unsafePathsAreRefused() async throws {
        try await Sandbox.with { box in
            let answer = "#!/bin/sh\necho '{\"decision\":\"defer\"}'\n"
            let good = try box.write("good", answer)
            #expect(await runner.decide(HookSpec(path: good), input: sampleInput()).map(\.kind) == .success(.defer))

            #expect(await refusal("good")?.contains("is not absolute") == true)
            #expect(await refusal("./hooks/good")?.contains("is not absolute") == true)

            let groupWritable = try box.write("groupw", answer, mode: 0o775)
            #expect(await refusal(groupWritable)?.contains("writable by group or others; run: chmod go-w") == true)
            let worldWritable = try box.write("worldw", answer, mode: 0o757)
            #expect(await refusal(worldWritable)?.contains("writable by group or others") == true)

            mkdir(box.root + "/open", 0o755)
            chmod(box.root + "/open", 0o777)
            let inOpenDir = try box.write("open/hook", answer)
            let why = await refusal(inOpenDir)
            #expect(why?.contains("directory \(box.root)/open is writable by group or others") == true, "\(why ?? "")")

            #expect(await refusal(box.root + "/missing")?.contains("does not exist") == true)
            #expect(await refusal(box.root + "/nodir/hook")?.contains("/nodir does not exist") == true)
            let plain = try box.write("plain", answer, mode: 0o644)
            #expect(await refusal(plain)?.contains("is not executable; run: chmod 0755") == true)
            #expect(await refusal(box.root)?.contains("is not a regular file") == true)
            #expect(await refusal(good + "/x")?.contains("is not a directory") == true)
            #expect(await refusal("/proc/self/exe")?.contains("/proc") == true)

            // A symlink through trusted places is followed; one into an open directory is not.
            symlink(good, box.root + "/link")
            #expect(
                await runner.decide(HookSpec(path: box.root + "/link"), input: sampleInput()).map(\.kind)
                    == .success(.defer)
            )
            symlink(inOpenDir, box.root + "/badlink")
            #expect(await refusal(box.root + "/badlink")?.contains("writable by group or others") == true)

            if geteuid() == 0 {
                let foreign = try box.write("foreign", answer)
                chown(foreign, 65534, 65534)
                #expect(await refusal(foreign)?.contains("is owned by uid 65534, not root; run: chown root:") == true)
            }
        }
    }

    @Test func libraryDirectoryIsChecked() async throws {
        try await Sandbox.with { box in
            let hook = try box.write("good", "#!/bin/sh\necho '{\"decision\":\"defer\"}'\n")
            mkdir(box.root + "/lib", 0o755)
            chmod(box.root + "/lib", 0o777)
            let open = await refusal(hook, runner: testRunner(library: box.root + "/lib"))
            #expect(open?.contains("lib is writable by group or others") == true)
            chmod(box.root + "/lib", 0o755)
            try box.write("lib/writ_hook.py", "", mode: 0o666)
            let module = await refusal(hook, runner: testRunner(library: box.root + "/lib"))
            #expect(module?.contains("writ_hook.py is writable by group or others") == true)
            #expect(await refusal(hook, runner: testRunner(library: "relative/lib"))?.contains("not absolute") == true)
            // A library directory that does not exist is left out; the hook still runs.
            let missing = await testRunner(library: box.root + "/nolib").decide(
                HookSpec(path: hook),
                input: sampleInput()
            )
            #expect(missing.map(\.kind) == .success(.defer))
        }
    }

    @Test func hookUserIsChecked() async throws {
        try await Sandbox.with { box in
            let hook = try box.write("good", "#!/bin/sh\necho '{\"decision\":\"defer\"}'\n")
            if geteuid() == 0 {
                #expect(
                    await refusal(hook, runner: HookRunner(user: nil, libraryPath: nil))?.contains("no user is set")
                        == true
                )
                #expect(
                    await refusal(hook, runner: HookRunner(user: "root", libraryPath: nil))?.contains(
                        "never run as root"
                    )
                        == true
                )
            } else {
                #expect(
                    await refusal(hook, runner: HookRunner(user: "root", libraryPath: nil))?.contains(
                        "not running as root"
                    )
                        == true
                )
            }
            #expect(
                await refusal(hook, runner: HookRunner(user: "writ-no-such-user-x", libraryPath: nil))?.contains(
                    geteuid() == 0 ? "does not exist" : "not running as root"
                ) == true
            )
        }
    }
}
