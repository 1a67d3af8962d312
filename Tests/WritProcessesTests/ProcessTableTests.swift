import Glibc
import Testing

@testable import WritProcesses

@Suite struct ProcessTableTests {
    @Test func describesThisProcess() throws {
        let me = try #require(ProcessTable.info(of: getpid()))
        #expect(me.identity.pid == getpid())
        #expect(me.identity.startTime > 0)
        #expect(me.ppid == getppid())
        #expect(me.sessionID == getsid(0))
        #expect(me.processGroup == getpgrp())
        #expect(me.realUID == getuid())
        #expect(me.effectiveUID == geteuid())
        #expect(ProcessTable.identity(of: getpid()) == me.identity)
        #expect(ProcessTable.isAlive(me.identity))
    }

    @Test func describesAChild() async throws {
        let child = try TestProcess(["/bin/sleep", "321"])
        let identity = try child.identity()
        let info = try #require(ProcessTable.info(of: child.pid))
        let me = try #require(ProcessTable.identity(of: getpid()))
        #expect(info.identity == identity)
        #expect(info.ppid == getpid())
        #expect(info.realUID == getuid())
        #expect(identity.startTime >= me.startTime)
        #expect(ProcessTable.isAlive(identity))

        kill(child.pid, SIGKILL)
        child.reap()
        #expect(!ProcessTable.isAlive(identity))
        #expect(ProcessTable.info(of: child.pid) == nil)
    }

    @Test func noProcessForImpossiblePIDs() {
        for pid: Int32 in [0, -1, Int32.max] {
            #expect(ProcessTable.identity(of: pid) == nil)
            #expect(ProcessTable.info(of: pid) == nil)
            #expect(!ProcessTable.isAlive(ProcessIdentity(pid: pid, startTime: 0)))
        }
    }

    @Test func snapshotListsInitThisProcessAndChildren() throws {
        let child = try TestProcess(["/bin/sleep", "322"])
        let snapshot = ProcessTable.snapshot()
        let pids = Set(snapshot.map(\.identity.pid))
        #expect(pids.contains(1))
        #expect(pids.contains(getpid()))
        #expect(pids.contains(child.pid))
        #expect(pids.count == snapshot.count)
    }

    @Test func aWrongStartTimeIsNotAliveAndIsNeverSignalled() async throws {
        let child = try TestProcess(["/bin/sleep", "323"])
        let identity = try child.identity()
        let impostors = [
            ProcessIdentity(pid: identity.pid, startTime: identity.startTime + 1),
            ProcessIdentity(pid: identity.pid, startTime: identity.startTime - 1),
        ]
        for impostor in impostors {
            #expect(!ProcessTable.isAlive(impostor))
            #expect(ProcessTable.tree(of: impostor, in: ProcessTable.snapshot()).isEmpty)
            #expect(!ProcessSignal.send(SIGKILL, to: impostor))
        }
        let report = await SessionTerminator.end(impostors, grace: .milliseconds(100))
        #expect(report.hungUp.isEmpty && report.killed.isEmpty && report.survivors.isEmpty)
        #expect(TerminalNotifier.write("x", toTerminalsOf: impostors).isEmpty)

        // sleep dies of any of these signals: it is still there, so none reached it.
        try await Task.sleep(for: .milliseconds(50))
        #expect(ProcessTable.isAlive(identity))
        #expect(!child.reapIfEnded())
    }

    @Test func aZombieIsNotAlive() async throws {
        let child = try TestProcess(["/bin/sh", "-c", "exit 7"])
        let identity = try child.identity()
        #expect(await eventually { ProcessTable.info(of: child.pid)?.state == "Z" })
        let info = try #require(ProcessTable.info(of: child.pid))
        #expect(info.hasExited)
        #expect(info.identity == identity)
        #expect(!ProcessTable.isAlive(identity))
        #expect(!ProcessSignal.send(SIGHUP, to: identity))

        let report = await SessionTerminator.end([identity], grace: .seconds(60))
        #expect(report.hungUp.isEmpty && report.killed.isEmpty && report.survivors.isEmpty)
        #expect(report.elapsedNanoseconds < 30_000_000_000)  // not the 60 s grace: nothing to wait for
        #expect(exitCode(child.reap()) == 7)
    }

    @Test func aNameChosenToMisleadTheParserIsReadCorrectly() async throws {
        var template = Array("/tmp/writ-procs-XXXXXX".utf8CString)
        let made: String? = template.withUnsafeMutableBufferPointer { buffer in
            guard let base = buffer.baseAddress, let result = mkdtemp(base) else { return nil }
            return String(cString: result)
        }
        let directory = try #require(made)
        let link = directory + "/x) Z 1 1"
        #expect(symlink("/bin/sleep", link) == 0)
        defer {
            unlink(link)
            rmdir(directory)
        }
        let child = try TestProcess([link, "324"])
        defer { killTree(child) }
        #expect(await eventually { ProcessTable.info(of: child.pid)?.state == "S" })
        let info = try #require(ProcessTable.info(of: child.pid))
        #expect(info.ppid == getpid())
        #expect(!info.hasExited)
        let comm = try FileDescriptor.open("/proc/\(child.pid)/comm", flags: O_RDONLY).readToEnd(limit: 64)
        #expect(comm == Array("x) Z 1 1\n".utf8))
    }
}
