// swift-tools-version:6.1
// Builds swift-openapi-generator's command-line tool, and nothing else: scripts/openapi.sh runs it
// to turn Sources/WritFleetAPI/openapi.yaml into the Swift sources committed beside it. Ahead of
// time, not a build plugin: the plugin would compile the generator (OpenAPIKit, Yams) in every
// build, debug and release, and in CI.
import PackageDescription

let package = Package(
    name: "writ-openapi-generate",
    dependencies: [
        .package(url: "https://github.com/apple/swift-openapi-generator", exact: "1.14.3")
    ]
)
