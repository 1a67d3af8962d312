import Glibc

/// Writes a warning to the terminals of sessions about to be ended.
public enum TerminalNotifier {
    /// The most message bytes written, after sanitizing.
    static let maximumMessageBytes = 400

    /// Writes `message` to the controlling terminals of `roots` and of every process in their
    /// trees, once per terminal, framed by CR LF. Control characters are removed from the message
    /// (see `sanitized`). A terminal that cannot take the text right away (its buffer is full, its
    /// session is suspended) is skipped: this never blocks. Returns the device paths written.
    public static func write(_ message: String, toTerminalsOf roots: [ProcessIdentity]) -> [String] {
        let forest = ProcessForest(ProcessTable.records())
        var terminals: [Int32] = []
        for root in roots {
            let tree = forest.tree(of: root)
            // A root with a terminal is the user's terminal; the ptys below it (sudo's use_pty)
            // are relayed to it, and writing there too would show the message twice. A root
            // without one (sshd) leaves its descendants' terminals.
            let own = tree.first.map { $0.ttyNumber != 0 } ?? false
            for record in (own ? Array(tree.prefix(1)) : tree)
            where record.ttyNumber != 0 && !terminals.contains(record.ttyNumber) {
                terminals.append(record.ttyNumber)
            }
        }
        let bytes = Array("\r\n".utf8) + sanitized(message) + Array("\r\n".utf8)
        return terminals.compactMap { tty in
            guard let path = devicePath(forTTY: tty), deliver(bytes, to: path, ttyNumber: tty) else { return nil }
            return path
        }
    }

    /// The device file of a terminal, from `tty_nr` (field 7 of /proc/PID/stat): pseudo-terminal
    /// slaves (majors 136–143) and virtual consoles (major 4, minors 1–63). Anything else (serial
    /// lines, /dev/tty0 which is whatever console is in front) is nil.
    static func devicePath(forTTY tty: Int32) -> String? {
        let raw = UInt32(bitPattern: tty)
        let major = (raw >> 8) & 0xfff
        let minor = (raw & 0xff) | ((raw >> 12) & 0xfff00)
        switch major {
        case 136...143: return "/dev/pts/\(minor + (major - 136) * 256)"
        case 4 where minor >= 1 && minor < 64: return "/dev/tty\(minor)"
        default: return nil
        }
    }

    /// Writes `bytes` to the terminal device at `path`, provided it is the terminal `ttyNumber`.
    /// True only when every byte was written.
    static func deliver(_ bytes: [UInt8], to path: String, ttyNumber: Int32) -> Bool {
        // O_NOFOLLOW and the check of st_rdev: writd runs as root, so the file it opens must be the
        // session's terminal and nothing else, even if the path were swapped for a symlink or
        // another device. O_NOCTTY: writd must never acquire a controlling terminal. O_NONBLOCK: a
        // user who stops reading (Ctrl-S, a full buffer) must not hang the daemon.
        guard
            let fd = try? FileDescriptor.open(path, flags: O_WRONLY | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW),
            let st = try? fd.status(),
            st.st_mode & S_IFMT == S_IFCHR,
            UInt64(st.st_rdev) == UInt64(UInt32(bitPattern: ttyNumber))
        else { return false }
        var remaining = bytes[...]
        while !remaining.isEmpty {
            // EAGAIN (full) or EIO (hung up): give up on this terminal.
            guard let wrote = try? fd.write(remaining), wrote > 0 else { return false }
            remaining = remaining.dropFirst(wrote)
        }
        return true
    }

    /// `message` as UTF-8, without anything a terminal could act on: C0 and C1 control characters
    /// (ESC starts escape sequences that can retitle the window, rewrite the screen or, on some
    /// terminals, answer back as typed input; U+009B is a one-character CSI) and format characters
    /// (bidirectional overrides that show text in another order than it reads). Tabs and line
    /// breaks become spaces, so words stay apart. At most `maximumMessageBytes`, cut between
    /// characters.
    static func sanitized(_ message: String) -> [UInt8] {
        var bytes: [UInt8] = []
        for scalar in message.unicodeScalars {
            let kept: Unicode.Scalar
            switch scalar {
            case "\t", "\n", "\r", "\u{0B}", "\u{0C}", "\u{85}", "\u{2028}", "\u{2029}":
                kept = " "
            default:
                switch scalar.properties.generalCategory {
                case .control, .format, .lineSeparator, .paragraphSeparator, .surrogate:
                    continue
                default:
                    kept = scalar
                }
            }
            let encoded = Array(String(kept).utf8)
            guard bytes.count + encoded.count <= maximumMessageBytes else { break }
            bytes += encoded
        }
        return bytes
    }
}
