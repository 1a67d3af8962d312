// swift-tools-version:6.1
//
// Writ — just-in-time privilege for Linux servers.
//
// Layout:
//   WritCore    pure core: grants, matching, durations, decisions (standard library only)
//   WritStore   the SQLite grant store: read-only hot-path reader and the migrating writer
//   WritModule  pam_writ.so / sudo_writ.so: one shared object that is both the PAM module and
//               the sudo approval + audit plugin (one Swift runtime copy in sudo's process)
//   WritCLI     the `writ` command
//   CShims/     C only for what Swift cannot express (variadic calls, macros, data symbols)
import PackageDescription

/// Link flags for the module loaded into sshd, sudo, su and login.
///
/// - `-static-stdlib`: the Swift runtime goes inside the .so (`--static-swift-stdlib` is ignored for
///   dynamic products), so nothing from the toolchain is needed at run time.
/// - `-static-libstdc++` / `-static-libgcc`: the runtime's C++ dependencies are linked in and hidden
///   instead of loading libstdc++.so.6 into every sudo (about 0.6 ms of the load cost).
/// - `-z nodelete`: Linux-PAM dlcloses modules at pam_end; unmapping a Swift image crashes or leaks.
/// - version script: export only the PAM entry points and the two sudo plugin symbols.
/// - `--gc-sections`, `-z pack-relative-relocs` (DT_RELR, glibc >= 2.36): fewer pages touched at load.
let moduleLinkFlags: [String] = [
    "-static-stdlib",
    "-use-ld=lld",
    "-L", "\(Context.packageDirectory)/CShims/link",
    "-Xclang-linker", "-static-libgcc",
    "-Xlinker", "-z", "-Xlinker", "nodelete",
    "-Xlinker", "-z", "-Xlinker", "now",
    "-Xlinker", "-z", "-Xlinker", "relro",
    "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs",
    "-Xlinker", "--gc-sections",
    "-Xlinker", "--as-needed",
    "-Xlinker", "--version-script=\(Context.packageDirectory)/CShims/writ_module.map",
    // Functions a check runs, laid out together (scripts/profile-order.sh regenerates the list):
    // the kernel maps code in 64 KiB windows around each fault, so scattered hot code would make
    // megabytes of the runtime resident in every sudo and sshd.
    "-Xlinker", "--symbol-ordering-file=\(Context.packageDirectory)/CShims/writ_module.order",
    "-Xlinker", "--no-warn-symbol-ordering",
]

/// Keep the implicit _Concurrency and _StringProcessing imports out of the hot path.
let hotPathSwiftFlags: [SwiftSetting] = [
    .unsafeFlags([
        "-Xfrontend", "-disable-implicit-concurrency-module-import",
        "-Xfrontend", "-disable-implicit-string-processing-module-import",
    ])
]

let package = Package(
    name: "writ",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "writ_module", type: .dynamic, targets: ["WritModule"]),
        .executable(name: "writ", targets: ["WritCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0")
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
            swiftSettings: hotPathSwiftFlags,
            linkerSettings: [.unsafeFlags(moduleLinkFlags)]
        ),
        .executableTarget(
            name: "WritCLI",
            dependencies: [
                "WritCore", "WritStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
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
        .testTarget(name: "WritCoreTests", dependencies: ["WritCore"]),
        .testTarget(name: "WritStoreTests", dependencies: ["WritStore", "WritCore"]),
    ],
    swiftLanguageModes: [.v6]
)
