import Glibc
import Synchronization

/// Directories for the tests' SQLite stores, removed when the test process exits (a store may be
/// opened again after its test closed it, and by the race helper, so not earlier).
public enum TempDir {
    private static let made = Mutex<[String]>([])
    private static let removedAtExit: Void = { atexit { TempDir.removeAll() } }()

    public static func make() throws -> String {
        _ = removedAtExit
        var template = Array("/tmp/writ-engine-test.XXXXXX".utf8CString)
        guard let p = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw HarnessError("mkdtemp: errno \(errno)")
        }
        let dir = String(cString: p)
        made.withLock { $0.append(dir) }
        return dir
    }

    /// Writes `text` to `path` (0644), replacing the file whole: a reader sees the old or the
    /// new contents, never a part.
    public static func write(_ text: String, to path: String) throws {
        let temporary = path + ".new"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw HarnessError("open \(temporary): errno \(errno)") }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
        guard written == bytes.count, rename(temporary, path) == 0 else {
            throw HarnessError("write \(path): errno \(errno)")
        }
    }

    /// Each directory made, with everything in it (a store's database, journal, WAL; a server's
    /// CA directory).
    static func removeAll() {
        for dir in made.withLock({ $0 }) { remove(dir) }
    }

    private static func remove(_ dir: String) {
        if let d = opendir(dir) {
            while let entry = readdir(d) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                }
                guard name != "." && name != ".." else { continue }
                if entry.pointee.d_type == UInt8(DT_DIR) { remove(dir + "/" + name) } else { unlink(dir + "/" + name) }
            }
            closedir(d)
        }
        rmdir(dir)
    }
}

/// One private PostgreSQL cluster per test process.
public actor TestCluster {
    public static let shared = TestCluster()

    /// A new database name: `t_` and 12 random hex digits.
    public static func databaseName() -> String {
        "t_" + String(UInt64.random(in: 0..<(1 << 48)), radix: 16).leftPadded(to: 12)
    }
    /// Started once: the first caller starts it, the others wait for the same start.
    private var starting: Task<String, any Error>?

    /// The cluster's socket directory (user `writ`), started on the first call.
    public func directory() async throws -> String {
        if starting == nil {
            starting = Task {
                let d =
                    "/tmp/writ-pg-\(getpid())-\(String(UInt32.random(in: 0..<(1 << 24)), radix: 16).leftPadded(to: 6))"
                let out = try await ChildProcess.run([
                    "\(FakeService.repository)/scripts/pg-test-cluster.sh", "start", d, "--watch", String(getpid()),
                ])
                guard out.status == 0 else {
                    throw HarnessError(
                        "could not start the test PostgreSQL cluster (exit \(out.status)): \(out.output)"
                    )
                }
                return d
            }
        }
        return try await starting!.value
    }

    public func createDatabase(_ name: String) async throws {
        try await psql("writ", "CREATE DATABASE \(name)")
    }

    /// Runs one SQL command as `writ` in `database`.
    public func psql(_ database: String, _ sql: String) async throws {
        let out = try await ChildProcess.run([
            "psql", "-q", "-h", try await directory(), "-U", "writ", "-d", database, "-c", sql,
        ])
        guard out.status == 0 else { throw HarnessError("psql \(sql): exit \(out.status) \(out.output)") }
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        String(repeating: "0", count: max(0, width - count)) + self
    }
}
