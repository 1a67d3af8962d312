import Glibc
import Testing

@testable import WritProcesses

@Suite struct ProcessTreeTests {
    @Test func aShellAndItsTwoBackgroundSleeps() async throws {
        let shell = try TestProcess(["/bin/sh", "-c", "sleep 331 & sleep 331 & wait"])
        defer { killAll(["sleep", "331"]) }
        let root = try shell.identity()
        #expect(await eventually { ProcessTable.tree(of: root, in: ProcessTable.snapshot()).count == 3 })

        let tree = ProcessTable.tree(of: root, in: ProcessTable.snapshot())
        #expect(tree.count == 3)
        #expect(tree.first?.identity == root)
        #expect(tree.dropFirst().allSatisfy { $0.ppid == shell.pid && $0.identity.startTime >= root.startTime })
        #expect(Set(tree.dropFirst().map(\.identity.pid)) == Set(running(["sleep", "331"])))
        #expect(!tree.contains { $0.identity.pid == getpid() })

        killTree(shell)
        #expect(ProcessTable.tree(of: root, in: ProcessTable.snapshot()).isEmpty)
        #expect(await eventually { running(["sleep", "331"]).isEmpty })
    }

    private func node(_ pid: Int32, _ start: UInt64, parent: Int32) -> ProcessInfo {
        ProcessInfo(
            identity: ProcessIdentity(pid: pid, startTime: start),
            state: "S",
            ppid: parent,
            sessionID: 1,
            processGroup: 1,
            ttyNumber: 0,
            realUID: 0,
            effectiveUID: 0
        )
    }

    @Test func descendantsAreTransitiveAndVerifiedByStartTime() {
        let snapshot = [
            node(10, 100, parent: 1),
            node(11, 110, parent: 10),
            node(12, 120, parent: 11),
            node(5, 50, parent: 10),  // started before pid 10's holder: a stale link to a recycled pid
            node(6, 130, parent: 5),
            node(20, 100, parent: 1),
        ]
        let tree = ProcessTable.tree(of: ProcessIdentity(pid: 10, startTime: 100), in: snapshot)
        #expect(tree.map(\.identity.pid) == [10, 11, 12])
        #expect(ProcessTable.tree(of: ProcessIdentity(pid: 10, startTime: 99), in: snapshot).isEmpty)
        #expect(ProcessTable.tree(of: ProcessIdentity(pid: 99, startTime: 100), in: snapshot).isEmpty)
    }

    @Test func aCycleInAnInconsistentSnapshotEnds() {
        let snapshot = [node(10, 100, parent: 11), node(11, 100, parent: 10)]
        #expect(
            ProcessTable.tree(of: ProcessIdentity(pid: 10, startTime: 100), in: snapshot).map(\.identity.pid) == [
                10, 11,
            ]
        )
    }
}
