import Glibc
import Testing

@testable import WritProcesses

@Suite struct SessionTerminatorTests {
    /// Waits until `root`'s tree has `count` processes, and returns it.
    private func tree(of root: ProcessIdentity, count: Int) async throws -> [ProcessInfo] {
        #expect(await eventually { ProcessTable.tree(of: root, in: ProcessTable.snapshot()).count == count })
        let tree = ProcessTable.tree(of: root, in: ProcessTable.snapshot())
        try #require(tree.count == count)
        return tree
    }

    @Test func aTreeThatExitsOnHangupEndsWithinTheGrace() async throws {
        let shell = try TestProcess(["/bin/sh", "-c", "sleep 341 & sleep 341 & wait"])
        defer { killAll(["sleep", "341"]) }
        let members = try await tree(of: shell.identity(), count: 3)

        // A long grace, so the bound below (far from it) tells "ended on the hangup" from "waited
        // out the grace" even on a machine that stalls for seconds.
        let report = await SessionTerminator.end([try shell.identity()], grace: .seconds(60))
        #expect(Set(report.hungUp) == Set(members.map(\.identity.pid)))
        #expect(report.killed.isEmpty)
        #expect(report.survivors.isEmpty)
        #expect(report.elapsedNanoseconds < 30_000_000_000)
        #expect(members.allSatisfy { !ProcessTable.isAlive($0.identity) })
        #expect(terminatingSignal(shell.reap()) == SIGHUP)
        #expect(running(["sleep", "341"]).isEmpty)
    }

    @Test func aTreeIgnoringHangupIsKilledAfterTheGrace() async throws {
        // sleep inherits the ignored SIGHUP from the shell.
        let shell = try TestProcess(["/bin/sh", "-c", "trap '' HUP; sleep 342 & wait"])
        defer { killAll(["sleep", "342"]) }
        let members = try await tree(of: shell.identity(), count: 2)

        let report = await SessionTerminator.end([try shell.identity()], grace: .milliseconds(300))
        #expect(Set(report.hungUp) == Set(members.map(\.identity.pid)))
        #expect(Set(report.killed) == Set(members.map(\.identity.pid)))
        #expect(report.survivors.isEmpty)
        #expect(report.elapsedNanoseconds >= 300_000_000)
        #expect(members.allSatisfy { !ProcessTable.isAlive($0.identity) })
        #expect(terminatingSignal(shell.reap()) == SIGKILL)
        #expect(running(["sleep", "342"]).isEmpty)
    }

    @Test func aStoppedProcessIsContinuedToSeeTheHangup() async throws {
        // The shell handles SIGHUP by exiting 0: a handler runs only once the process is continued,
        // so without SIGCONT it would stay stopped and be killed after the grace.
        let shell = try TestProcess(["/bin/sh", "-c", "trap 'exit 0' HUP; while :; do sleep 343; done"])
        defer { killAll(["sleep", "343"]) }
        let root = try shell.identity()
        _ = try await tree(of: root, count: 2)
        kill(shell.pid, SIGSTOP)
        #expect(await eventually { ProcessTable.info(of: shell.pid)?.state == "T" })

        let report = await SessionTerminator.end([root], grace: .seconds(10))
        #expect(report.hungUp.contains(shell.pid))
        #expect(report.killed.isEmpty)
        #expect(report.survivors.isEmpty)
        #expect(!ProcessTable.isAlive(root))
        #expect(exitCode(shell.reap()) == 0)
    }

    @Test func aStoppedProcessIgnoringHangupIsKilled() async throws {
        let shell = try TestProcess(["/bin/sh", "-c", "trap '' HUP; exec sleep 344"])
        let root = try shell.identity()
        #expect(await eventually { running(["sleep", "344"]) == [shell.pid] })
        kill(shell.pid, SIGSTOP)
        #expect(await eventually { ProcessTable.info(of: shell.pid)?.state == "T" })

        let report = await SessionTerminator.end([root], grace: .milliseconds(200))
        #expect(report.killed == [shell.pid])
        #expect(report.survivors.isEmpty)
        #expect(terminatingSignal(shell.reap()) == SIGKILL)
    }

    @Test func processesForkedDuringTheGraceAreKilled() async throws {
        let shell = try TestProcess(["/bin/sh", "-c", "trap '' HUP; while :; do sleep 345 & sleep 0.05; done"])
        defer { killAll(["sleep", "345"]) }
        let root = try shell.identity()
        #expect(await eventually { !running(["sleep", "345"]).isEmpty })
        let before = Set(ProcessTable.tree(of: root, in: ProcessTable.snapshot()).map(\.identity.pid))

        let report = await SessionTerminator.end([root], grace: .milliseconds(500))
        let forkedDuringGrace = Set(report.killed).subtracting(before)
        #expect(forkedDuringGrace.count >= 3)
        #expect(report.killed.contains(shell.pid))
        #expect(report.survivors.isEmpty)
        #expect(terminatingSignal(shell.reap()) == SIGKILL)
        #expect(running(["sleep", "345"]).isEmpty)
    }

    @Test func aChildOrphanedByTheHangupIsStillKilled() async throws {
        // The shell dies of SIGHUP; its child ignores it and is reparented away from the tree.
        let shell = try TestProcess(["/bin/sh", "-c", "(trap '' HUP; exec sleep 346) & wait"])
        defer { killAll(["sleep", "346"]) }
        let root = try shell.identity()
        #expect(await eventually { running(["sleep", "346"]).count == 1 })
        let orphan = try #require(running(["sleep", "346"]).first)

        let report = await SessionTerminator.end([root], grace: .milliseconds(300))
        #expect(report.hungUp.contains(shell.pid))
        #expect(report.killed == [orphan])
        #expect(report.survivors.isEmpty)
        #expect(terminatingSignal(shell.reap()) == SIGHUP)
        #expect(await eventually { running(["sleep", "346"]).isEmpty })
    }

    @Test func initAndWritdItselfAreNeverTargets() async throws {
        let me = try #require(ProcessTable.identity(of: getpid()))
        let initProcess = try #require(ProcessTable.identity(of: 1))
        let report = await SessionTerminator.end(
            [me, initProcess, ProcessIdentity(pid: 0, startTime: 0), ProcessIdentity(pid: -1, startTime: 0)],
            grace: .milliseconds(100)
        )
        #expect(report.hungUp.isEmpty && report.killed.isEmpty && report.survivors.isEmpty)
        #expect(!ProcessSignal.send(SIGCONT, to: me))
        #expect(!ProcessSignal.send(SIGCONT, to: initProcess))
    }

    @Test func severalRootsEndTogether() async throws {
        let first = try TestProcess(["/bin/sleep", "347"])
        let second = try TestProcess(["/bin/sh", "-c", "trap '' HUP; exec sleep 347"])
        #expect(await eventually { running(["sleep", "347"]).count == 1 })
        let report = await SessionTerminator.end(
            [try first.identity(), try second.identity(), try first.identity()],
            grace: .milliseconds(200)
        )
        #expect(Set(report.hungUp) == [first.pid, second.pid])
        #expect(report.hungUp.count == 2)
        #expect(report.killed == [second.pid])
        #expect(terminatingSignal(first.reap()) == SIGHUP)
        #expect(terminatingSignal(second.reap()) == SIGKILL)
    }
}
