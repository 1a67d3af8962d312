// swift-tools-version:6.1
//
// Writ — just-in-time privilege for Linux servers.
//
// Layout:
//   WritCore    pure core: grants, matching, durations, decisions (standard library only)
//   WritStore   the SQLite grant store: read-only hot-path reader and the migrating writer
//   WritModule  pam_writ.so / sudo_writ.so: one shared object that is both the PAM module and
//               the sudo approval + audit plugin. SwiftPM compiles it as a regular module (type
//               checks, and the same sources serve tests); the shared object itself is built with
//               Embedded Swift by scripts/build-module.sh, which SwiftPM cannot express.
//   WritAudit   the hash-chained audit log (append, verify)
//   WritPolicy  the approval policy file (YAML): flows, who may request and approve, durations
//   WritExpr    the condition language of `when:` clauses (a CEL subset) and its linear-time regex
//   WritHooks   policy hooks: executables run as an unprivileged user, JSON in and out
//   WritIntegrations  PagerDuty over HTTPS, Slack request signatures: clients, retries, on-call evidence
//   WritSlack   Slack transport: the Web API client, Socket Mode (WebSocket), HTTP mode (signed
//               requests); no engine logic, so writd and later writ-server can both hold it
//   WritProcesses  the host: /proc sessions opened under a grant, ending them, their terminals;
//               users and groups (NSS); writd's pid file
//   WritProtocol   the framed, versioned messages between writ and writd (and the modules)
//   WritEngine  the approval engine apart from any host: requests, decisions, grants that name
//               users (never uids), expiry, escalation, the audit chain, over a store port
//               (`ApprovalStore`); its SQLite store. Who asks is a `Principal` per call
//   WritEnginePostgres  the engine's PostgreSQL store (postgres-nio), for writ-server replicas;
//               writd never links it
//   WritDaemon  writd: the host's side (sessions, grants.db, terminals, the timer), the socket
//               protocol, Slack, and the engine's steps in one synchronous transaction
//   writd       the host daemon (executable)
//   WritCLI     the `writ` command
//   writ-fuzz   coverage-guided fuzzers for every parser of untrusted input (scripts/fuzz.sh builds
//               it with libFuzzer; a plain build replays the corpus in Fuzz/Corpus)
//   CShims/     C only for what Swift cannot express (variadic calls, macros, data symbols)
import PackageDescription

/// The hot-path modules are also built with Embedded Swift (scripts/build-module.sh), which has
/// neither _Concurrency nor _StringProcessing: without their implicit imports, the regular build
/// catches code that would only fail there.
let hotPathSwiftFlags: [SwiftSetting] = [
    .unsafeFlags([
        "-Xfrontend", "-disable-implicit-concurrency-module-import",
        "-Xfrontend", "-disable-implicit-string-processing-module-import",
    ])
]

/// writ, writd and writ-server as they ship: the Swift runtime linked in (they run where no
/// toolchain is installed), every symbol resolved at start and the GOT read-only (full RELRO), as
/// Debian's hardening flags do for C programs. `-static-stdlib` is given to the link of these
/// three alone, not as `--static-swift-stdlib` to the whole build: that flag also changes every
/// compile command, so the unit tests (whose Testing library exists only as a shared one) would
/// need a second build of everything. This way one release build serves both.
/// Foundation's static archives name their own dependencies only in the modules of the static
/// resource directory, which a build without `--static-swift-stdlib` does not compile against:
/// CoreFoundation and ICU are named here instead (for Yams' and swift-certificates' Foundation).
/// Linked by lld (the toolchain's) with relative relocations packed (RELR, glibc 2.36) and no
/// symbol exported (nothing loads these programs' symbols; the backtracer reads .symtab): with
/// gold and 50,000 exported symbols every start read 3.2 MiB of relocations and looked up
/// symbols, and an idle agent held 35.9 MiB resident; now 30.7-31.3 MiB (BENCHMARKS.md).
let shipped: [LinkerSetting] = [
    .unsafeFlags([
        "-static-stdlib", "-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs",
        "-Xlinker", "--no-export-dynamic", "-Xlinker", "-z", "-Xlinker", "now",
        "-Xlinker", "--start-group", "-lFoundation", "-lCoreFoundation", "-l_FoundationICU",
        "-lFoundationInternationalization", "-lFoundationEssentials", "-l_FoundationCShims",
        "-l_FoundationCollections", "-lswiftSynchronization", "-lswiftDispatch", "-Xlinker", "--end-group",
    ])
]

/// The modules the unit tests open with `@testable import`: testable in the release build too, so
/// the tests run on the objects that ship. The cost is measured in NOTES.md (internal symbols
/// stay visible to the linker, which keeps some it could otherwise drop).
let testable: [SwiftSetting] = [.unsafeFlags(["-enable-testing"], .when(configuration: .release))]

let package = Package(
    name: "writ",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "writ", targets: ["WritCLI"]),
        .executable(name: "writd", targets: ["writd"]),
        .executable(name: "writ-server", targets: ["writ-server"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.0"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-openapi-runtime", from: "1.13.0"),
        .package(url: "https://github.com/hummingbird-project/swift-openapi-hummingbird", from: "2.1.0"),
        .package(url: "https://github.com/swift-server/swift-openapi-async-http-client", from: "1.5.0"),
    ],
    targets: [
        .target(
            name: "CSQLite",
            path: "CShims/CSQLite",
            linkerSettings: [.linkedLibrary("sqlite3")]
        ),
        .target(
            name: "CWritHost",
            path: "CShims/CWritHost",
            linkerSettings: [.linkedLibrary("pam")]
        ),
        .target(name: "CWritSystem", path: "CShims/CWritSystem"),
        .target(name: "CWritSpawn", path: "CShims/CWritSpawn"),
        .target(name: "CWritFuzz", dependencies: ["CWritHost"], path: "CShims/CWritFuzz"),
        .target(
            name: "WritCore",
            swiftSettings: hotPathSwiftFlags
        ),
        .target(
            name: "WritStore",
            dependencies: ["WritCore", "CSQLite"],
            swiftSettings: hotPathSwiftFlags
        ),
        .target(
            name: "WritModule",
            dependencies: ["WritCore", "WritStore", "CWritHost"],
            swiftSettings: hotPathSwiftFlags
        ),
        .target(
            name: "WritAudit",
            dependencies: ["WritCore", "WritStore", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .target(
            name: "WritPolicy",
            dependencies: ["WritCore", "WritExpr", .product(name: "Yams", package: "Yams")],
            swiftSettings: testable
        ),
        .target(name: "WritProcesses", swiftSettings: testable),
        .target(name: "WritExpr", dependencies: ["WritCore"], swiftSettings: testable),
        .target(
            name: "WritHooks",
            dependencies: ["WritCore", "WritStore", "WritExpr", "WritPolicy", "CWritSpawn"],
            swiftSettings: testable
        ),
        .target(name: "WritProtocol"),
        .target(
            name: "WritIntegrations",
            dependencies: [
                "WritCore", "WritExpr",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: testable
        ),
        .target(
            name: "WritSlack",
            dependencies: [
                "WritCore", "WritIntegrations", "WritExpr",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: testable
        ),
        .target(
            name: "WritEngine",
            dependencies: [
                "WritCore", "WritStore", "WritAudit", "WritExpr", "WritPolicy",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "WritEnginePostgres",
            dependencies: [
                "WritEngine", "WritAudit",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "WritFleetAPI",
            dependencies: [
                "WritCore",
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            exclude: ["openapi.yaml", "openapi-generator-config.yaml"]
        ),
        .target(
            name: "WritAgent",
            dependencies: [
                "WritFleetAPI",
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "OpenAPIAsyncHTTPClient", package: "swift-openapi-async-http-client"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .target(
            name: "WritServer",
            dependencies: [
                "WritCore", "WritEngine", "WritEnginePostgres", "WritFleetAPI", "WritPolicy", "WritProcesses",
                "WritIntegrations", "WritExpr",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "OpenAPIHummingbird", package: "swift-openapi-hummingbird"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "writ-server",
            dependencies: [
                "WritServer", "WritCore", "WritAudit", "WritEngine", "WritExpr", "WritFleetAPI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            linkerSettings: shipped
        ),
        .target(
            name: "WritDaemon",
            dependencies: [
                "WritCore", "WritStore", "WritAudit", "WritPolicy", "WritExpr", "WritHooks", "WritProcesses",
                "WritEngine", "WritAgent", "WritFleetAPI",
                "WritProtocol", "WritIntegrations", "WritSlack", "CWritSystem",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: testable
        ),
        .executableTarget(
            name: "writd",
            dependencies: [
                "WritDaemon", "WritCore", "WritAudit", "WritProcesses", "WritHooks", "WritProtocol", "WritAgent",
                "WritFleetAPI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            linkerSettings: shipped
        ),
        .executableTarget(
            name: "WritCLI",
            dependencies: [
                "WritCore", "WritStore", "WritAudit", "WritPolicy", "WritExpr", "WritHooks", "WritProtocol",
                "WritProcesses", "CWritSystem",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            linkerSettings: shipped
        ),
        .executableTarget(
            name: "writ-bench-seed",
            dependencies: ["WritCore", "WritStore"],
            path: "Benchmarks/Seed"
        ),
        .executableTarget(
            name: "writ-bench-check",
            dependencies: ["WritCore", "WritStore"],
            path: "Benchmarks/Check"
        ),
        .executableTarget(
            name: "writ-bench-engine",
            dependencies: [
                "WritCore", "WritEngine", "WritEnginePostgres",
            ],
            path: "Benchmarks/Engine"
        ),
        .executableTarget(
            name: "writ-bench-feed",
            dependencies: [
                "WritCore", "WritEngine", "WritEnginePostgres",
            ],
            path: "Benchmarks/Feed"
        ),
        .executableTarget(
            name: "writ-bench-fleet",
            dependencies: [
                "WritAgent", "WritEngine", "WritEnginePostgres", .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Benchmarks/Fleet"
        ),
        .executableTarget(
            name: "writ-bench-policy",
            dependencies: ["WritCore", "WritPolicy"],
            path: "Benchmarks/Policy"
        ),
        .executableTarget(
            name: "writ-fuzz",
            dependencies: [
                "CWritFuzz", "WritCore", "WritStore", "WritModule", "WritAudit", "WritPolicy", "WritExpr", "WritHooks",
                "WritProtocol", "WritIntegrations", "WritSlack",
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Fuzz/Sources"
        ),
        .testTarget(name: "WritCoreTests", dependencies: ["WritCore"]),
        .testTarget(name: "WritStoreTests", dependencies: ["WritStore", "WritCore"]),
        .testTarget(name: "WritAuditTests", dependencies: ["WritAudit", "WritCore"]),
        .testTarget(name: "WritPolicyTests", dependencies: ["WritPolicy", "WritCore"]),
        .testTarget(name: "WritProcessesTests", dependencies: ["WritProcesses"]),
        .testTarget(name: "WritExprTests", dependencies: ["WritExpr"]),
        .testTarget(name: "WritHooksTests", dependencies: ["WritHooks", "WritExpr", "WritPolicy"]),
        // One engine instance per process, driven line by line: the two-process race tests.
        .executableTarget(
            name: "writ-engine-race",
            dependencies: ["WritEngine", "WritEnginePostgres"],
            path: "Tests/EngineRace"
        ),
        .testTarget(
            name: "WritEngineTests",
            dependencies: [
                "WritEngine", "WritEnginePostgres", "WritAudit", "WritCore", "FakeServices",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The fakes of Tests/Fakes/ as child processes, for the two test targets that use them.
        .target(
            name: "FakeServices",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Tests/FakeServices"
        ),
        .testTarget(
            name: "WritServerTests",
            dependencies: [
                "WritAgent", "WritFleetAPI", "WritEngine", "WritEnginePostgres", "WritAudit", "WritCore", "WritStore",
                "WritServer", "FakeServices",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "WritIntegrationsTests", dependencies: ["WritIntegrations", "WritExpr", "FakeServices"]),
        .testTarget(
            name: "WritSlackTests",
            dependencies: [
                "WritSlack", "WritExpr", "WritIntegrations", "FakeServices",
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "WritDaemonTests",
            dependencies: ["WritDaemon", "WritAgent", "WritProtocol", "WritCore", "WritStore"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
