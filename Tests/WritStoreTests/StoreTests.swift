import Foundation
import Glibc
import Testing
import WritCore
import WritStore

/// A fresh directory from mkdtemp, mode 0700, owned by root (the tests run as root), removed when
/// the owning test's suite instance goes away. The store lives at `dir/grants.db`.
final class Scratch {
    let dir: String

    init() throws {
        var template = Array("/tmp/writ-store-test-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        try #require(made != nil, "mkdtemp failed: errno \(errno)")
        dir = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        try #require(chmod(dir, 0o700) == 0)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: dir)
    }

    var store: String { dir + "/grants.db" }

    func path(_ name: String) -> String { dir + "/" + name }

    /// A new, migrated store at `store`.
    @discardableResult
    func makeStore() throws -> GrantStore { try GrantStore.create(path: store) }

    /// The file's mode and owner, without following a final symlink.
    func stat(_ path: String) throws -> (mode: UInt32, uid: UInt32) {
        var st = Glibc.stat()
        try #require(lstat(path, &st) == 0, "lstat \(path): errno \(errno)")
        return (st.st_mode, st.st_uid)
    }

    /// Writes raw bytes to a new file, root-owned, mode 0600.
    func write(_ bytes: [UInt8], to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        try #require(fd >= 0, "open \(path): errno \(errno)")
        defer { close(fd) }
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        try #require(written == bytes.count)
    }
}

/// Grant builders around one fixed clock.
enum Grants {
    static let now: Int64 = 1_700_000_000

    static func make(
        id: String,
        user: String = "alice",
        uid: UInt32 = 1000,
        capability: Capability = .sudo,
        host: String = "*",
        runas: String = "root",
        commands: [CommandPattern]? = nil,
        notBefore: Int64 = now - 60,
        expiresAt: Int64 = now + 3600,
        revokedAt: Int64? = nil,
        revokedBy: String? = nil,
        reason: String = "",
        approvedBy: String = "cli:root",
        requestID: String? = nil,
        policyVersion: String? = nil,
        createdAt: Int64? = nil
    ) -> Grant {
        Grant(
            id: id,
            user: user,
            uid: uid,
            capability: capability,
            host: host,
            runas: runas,
            commands: commands,
            notBefore: notBefore,
            expiresAt: expiresAt,
            revokedAt: revokedAt,
            revokedBy: revokedBy,
            reason: reason,
            approvedBy: approvedBy,
            requestID: requestID,
            policyVersion: policyVersion,
            createdAt: createdAt ?? notBefore
        )
    }

    /// What a reader returns for a stored grant: the fields the hot path needs, the rest blank.
    static func asCandidate(_ g: Grant) -> Grant {
        Grant(
            id: g.id,
            user: g.user,
            uid: g.uid,
            capability: g.capability,
            host: g.host,
            runas: g.runas,
            commands: g.commands,
            notBefore: g.notBefore,
            expiresAt: g.expiresAt,
            approvedBy: "",
            createdAt: 0
        )
    }
}

/// The schema version stored in a file, read over a separate connection.
func storedUserVersion(_ path: String) throws -> Int32 {
    try SQLiteDatabase(path: path, readOnly: true, busyTimeoutMs: 1000).userVersion()
}

/// Runs SQL against a store file over a separate read-write connection.
func rawExecute(_ path: String, _ sql: String) throws {
    try SQLiteDatabase(path: path, readOnly: false, busyTimeoutMs: 1000).execute(sql)
}
