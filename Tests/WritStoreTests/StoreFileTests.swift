import Testing
import WritStore

@Suite("StoreFile")
final class StoreFileTests {
    let scratch: Scratch

    init() throws { scratch = try Scratch() }

    @Test(
        "split separates the directory and the file name",
        arguments: [
            ("/var/lib/writ/grants.db", "/var/lib/writ", "grants.db"),
            ("/grants.db", "/", "grants.db"),
            ("grants.db", ".", "grants.db"),
            ("/a/b/", "/a/b", ""),
        ]
    )
    func split(path: String, directory: String, name: String) {
        let parts = StoreFile.split(path)
        #expect(parts.directory == directory)
        #expect(parts.name == name)
    }

    @Test("the default path is under /var/lib/writ")
    func defaultPath() {
        #expect(StoreFile.defaultPath == "/var/lib/writ/grants.db")
    }

    @Test("verify accepts a root-owned 0600 file in a root-owned 0700 directory")
    func verifyGood() throws {
        _ = try scratch.makeStore()
        try StoreFile.verify(path: scratch.store)
    }

    @Test(
        "store errors have stable codes and one-line descriptions",
        arguments: [
            (StoreError.missing(path: "/p"), "missing"),
            (.unreadable(path: "/p", errno: 13), "unreadable"),
            (.symlink(path: "/p"), "symlink"),
            (.notRegularFile(path: "/p"), "not_regular_file"),
            (.notOwnedByRoot(path: "/p", uid: 1000), "not_owned_by_root"),
            (.writableByOthers(path: "/p", mode: 0o100666), "writable_by_others"),
            (.directoryInsecure(path: "/d", detail: "x"), "directory_insecure"),
            (.corrupt(path: "/p", detail: "x"), "corrupt"),
            (.uninitialized(path: "/p"), "uninitialized"),
            (.newerSchema(path: "/p", found: 2, supported: 1), "newer_schema"),
            (.busy(path: "/p"), "busy"),
            (.sqlite(path: "/p", code: 1, message: "x"), "sqlite_error"),
            (.notFound(id: "g"), "not_found"),
            (.invalid("x"), "invalid"),
        ]
    )
    func errorCodes(error: StoreError, code: String) {
        #expect(error.code == code)
        #expect(!error.description.isEmpty)
        #expect(!error.description.contains("\n"))
    }

    @Test("writableByOthers shows the permission bits only")
    func writableByOthersDescription() {
        #expect(StoreError.writableByOthers(path: "/p", mode: 0o100666).description.contains("mode 666"))
    }
}
