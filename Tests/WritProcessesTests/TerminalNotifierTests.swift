import Glibc
import Testing

@testable import WritProcesses

@Suite struct TerminalNotifierTests {
    /// Starts `arguments` in a new session whose controlling terminal is `terminal`, and waits
    /// until it has taken the terminal.
    private func startOnTerminal(_ terminal: PseudoTerminal, _ arguments: [String]) async throws -> TestProcess {
        let child = try TestProcess(
            ["/usr/bin/setsid", "--ctty"] + arguments,
            stdin: terminal.slave,
            stdout: terminal.slave
        )
        #expect(
            await eventually {
                guard let info = ProcessTable.info(of: child.pid) else { return false }
                return info.sessionID == child.pid && info.ttyNumber == terminal.deviceNumber
            }
        )
        return child
    }

    @Test func writesTheSanitizedMessageToTheControllingTerminal() async throws {
        let terminal = try PseudoTerminal()
        let child = try await startOnTerminal(terminal, ["/bin/sleep", "351"])
        defer { killTree(child) }

        let message = "Grant \u{1B}[31mexpired\u{07}: session\tends\u{9B}2J in 60 s\u{202E}!\u{1B}]0;owned\u{07}"
        let written = TerminalNotifier.write(message, toTerminalsOf: [try child.identity()])
        #expect(written == [terminal.slavePath])

        let expected = Array("\r\nGrant [31mexpired: session ends2J in 60 s!]0;owned\r\n".utf8)
        let received = terminal.read(atLeast: expected.count)
        #expect(received == expected)
        #expect(!received.contains(0x1B) && !received.contains(0x07) && !received.contains(0x9B))
    }

    @Test func eachTerminalIsWrittenOnce() async throws {
        let terminal = try PseudoTerminal()
        let child = try await startOnTerminal(terminal, ["/bin/sh", "-c", "sleep 352 & sleep 352 & wait"])
        defer {
            killTree(child)
            killAll(["sleep", "352"])
        }
        let root = try child.identity()
        #expect(await eventually { ProcessTable.tree(of: root, in: ProcessTable.snapshot()).count == 3 })
        #expect(
            ProcessTable.tree(of: root, in: ProcessTable.snapshot()).allSatisfy {
                $0.ttyNumber == terminal.deviceNumber
            }
        )

        let written = TerminalNotifier.write("once", toTerminalsOf: [root, root])
        #expect(written == [terminal.slavePath])
        let received = terminal.read(atLeast: 100, timeout: .milliseconds(300))
        #expect(received == Array("\r\nonce\r\n".utf8))
    }

    @Test func aProcessWithoutTerminalGetsNothing() async throws {
        let child = try TestProcess(["/usr/bin/setsid", "/bin/sleep", "353"])
        defer { killTree(child) }
        #expect(await eventually { ProcessTable.info(of: child.pid)?.sessionID == child.pid })
        #expect(ProcessTable.info(of: child.pid)?.ttyNumber == 0)
        #expect(TerminalNotifier.write("nobody", toTerminalsOf: [try child.identity()]).isEmpty)
    }

    @Test func aFullTerminalIsSkippedWithoutBlocking() async throws {
        let terminal = try PseudoTerminal()
        let child = try await startOnTerminal(terminal, ["/bin/sleep", "354"])
        defer { killTree(child) }
        // Nobody reads the master: fill the terminal until it refuses even one byte, and still
        // does after the kernel has had time to move what it buffered towards the master.
        _ = fcntl(terminal.slave, F_SETFL, fcntl(terminal.slave, F_GETFL) | O_NONBLOCK)
        func fill(_ size: Int) -> Int {
            let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: size)
            var written = 0
            while written < 1 << 24 {
                let n = chunk.withUnsafeBytes { Glibc.write(terminal.slave, $0.baseAddress, $0.count) }
                guard n > 0 else { break }
                written += n
            }
            return written
        }
        var full = false
        for _ in 0..<50 where !full {
            _ = fill(1024)
            _ = fill(1)
            try await Task.sleep(for: .milliseconds(100))
            full = fill(1) == 0
        }
        try #require(full)

        let clock = ContinuousClock()
        let start = clock.now
        #expect(TerminalNotifier.write("late", toTerminalsOf: [try child.identity()]).isEmpty)
        #expect(start.duration(to: clock.now) < .seconds(20))  // a blocking write would never return
    }

    @Test func onlyTheTerminalItselfIsWritten() throws {
        let terminal = try PseudoTerminal()
        let message = Array("\r\nhello\r\n".utf8)
        // Another device at the path: the device number does not match.
        #expect(!TerminalNotifier.deliver(message, to: "/dev/null", ttyNumber: terminal.deviceNumber))
        // A symlink to the right terminal: not followed.
        let link = "/tmp/writ-procs-tty-\(getpid())"
        #expect(symlink(terminal.slavePath, link) == 0)
        defer { unlink(link) }
        #expect(!TerminalNotifier.deliver(message, to: link, ttyNumber: terminal.deviceNumber))
        #expect(terminal.read(atLeast: 1, timeout: .milliseconds(200)).isEmpty)

        #expect(TerminalNotifier.deliver(message, to: terminal.slavePath, ttyNumber: terminal.deviceNumber))
        #expect(terminal.read(atLeast: message.count) == message)
    }

    @Test func deviceNumbersMapToTerminalPaths() {
        func tty(major: UInt32, minor: UInt32) -> Int32 {
            Int32(bitPattern: (minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12))
        }
        #expect(TerminalNotifier.devicePath(forTTY: tty(major: 136, minor: 0)) == "/dev/pts/0")
        #expect(TerminalNotifier.devicePath(forTTY: tty(major: 136, minor: 5)) == "/dev/pts/5")
        #expect(TerminalNotifier.devicePath(forTTY: tty(major: 136, minor: 300)) == "/dev/pts/300")
        #expect(TerminalNotifier.devicePath(forTTY: tty(major: 137, minor: 2)) == "/dev/pts/258")
        #expect(TerminalNotifier.devicePath(forTTY: tty(major: 4, minor: 3)) == "/dev/tty3")
        #expect(TerminalNotifier.devicePath(forTTY: tty(major: 4, minor: 63)) == "/dev/tty63")
        // tty0 is whichever console is in front, not a session's terminal.
        #expect(TerminalNotifier.devicePath(forTTY: tty(major: 4, minor: 0)) == nil)
        #expect(TerminalNotifier.devicePath(forTTY: tty(major: 4, minor: 64)) == nil)  // ttyS0
        #expect(TerminalNotifier.devicePath(forTTY: tty(major: 5, minor: 1)) == nil)  // /dev/console
        #expect(TerminalNotifier.devicePath(forTTY: 0) == nil)
    }

    @Test func sanitizingRemovesEverythingATerminalActsOn() {
        let hostile = "a\u{1B}[2Jb\u{07}c\u{00}d\u{7F}e\u{9B}f\u{90}g\u{202E}h\u{200B}i\u{2028}j\r\nk"
        #expect(TerminalNotifier.sanitized(hostile) == Array("a[2Jbcdefghi j  k".utf8))
        #expect(TerminalNotifier.sanitized("Zugriff läuft ab ✓") == Array("Zugriff läuft ab ✓".utf8))
    }

    @Test func sanitizingCapsAt400BytesBetweenCharacters() {
        let long = TerminalNotifier.sanitized(String(repeating: "é", count: 300))
        #expect(long.count == 400)
        #expect(String(validating: long, as: UTF8.self) == String(repeating: "é", count: 200))
        let odd = TerminalNotifier.sanitized("x" + String(repeating: "é", count: 300))
        #expect(odd.count == 399)
        #expect(String(validating: odd, as: UTF8.self) != nil)
    }
}
