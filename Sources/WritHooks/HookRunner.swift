import FoundationEssentials
import Glibc
import WritPolicy

/// Runs policy hooks: checks the program, starts it as the hook user with a fixed environment,
/// feeds it the input, and collects its answer — on a thread of its own, so that neither the
/// caller's thread nor the cooperative pool waits for a hook.
///
/// Fails closed: anything unexpected is a `HookFailure`, never a decision.
public struct HookRunner: Sendable {
    /// The account hooks run as (a name, looked up with getpwnam_r at each run); nil only when
    /// writd is not root.
    public let user: String?
    /// The directory put on PYTHONPATH (where writ_hook.py is), or nil.
    public let libraryPath: String?

    /// The PATH every hook gets.
    static let path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    /// Variables a spec's `environment` cannot set (the policy parser refuses them too).
    public static var reservedNames: Set<String> { HookSpec.reservedNames }

    /// - Parameter user: the account hooks run as (name; resolved with getpwnam_r at each run).
    ///   When writd is root it must be an account other than root. When writd is not root, hooks
    ///   run as writd's own user and `user` must be that user or nil.
    /// - Parameter libraryPath: put on PYTHONPATH so `import writ_hook` works (writd passes its
    ///   install dir, tests pass the repo's hooks/python). It is checked like a hook's directory
    ///   (code there runs in every Python hook); when it does not exist, hooks run without
    ///   PYTHONPATH.
    public init(user: String?, libraryPath: String?) {
        self.user = user
        self.libraryPath = libraryPath
    }

    /// Runs the hook without blocking the caller's thread (the waiting happens on a dedicated
    /// thread, resumed via a continuation). Returns the raw stdout on exit 0.
    ///
    /// `event` is the hook's argv[1] and WRIT_HOOK_EVENT (lowercase letters, digits and `_`);
    /// `input` is its stdin, at most 64 KiB.
    public func run(_ spec: HookSpec, event: String, input: [UInt8]) async -> Result<[UInt8], HookFailure> {
        let runner = self
        return await HookThread.run { runner.runHere(spec, event: event, input: input) }
    }

    /// Convenience: encode HookInput, run, and parse the decision (on_request). The event is
    /// `input.event`. A `duration` longer than the request's is `.garbage`: a hook may only
    /// shorten a grant.
    public func decide(_ spec: HookSpec, input: HookInput) async -> Result<HookDecision, HookFailure> {
        let bytes: [UInt8]
        switch Self.encode(input) {
        case .success(let encoded): bytes = encoded
        case .failure(let failure): return .failure(failure)
        }
        let stdout: [UInt8]
        switch await run(spec, event: input.event, input: bytes) {
        case .success(let output): stdout = output
        case .failure(let failure): return .failure(failure)
        }
        switch HookDecision.parse(stdout) {
        case .success(let decision):
            if let duration = decision.duration, duration > input.request.duration {
                return .failure(
                    .garbage(
                        "\"duration\" \(duration) is longer than the \(input.request.duration) seconds requested; "
                            + "a hook may only shorten a grant"
                    )
                )
            }
            return .success(decision)
        case .failure(let failure):
            return .failure(failure)
        }
    }

    /// Convenience for notifications: runs and returns only the failure, if any.
    public func notify(_ spec: HookSpec, input: HookInput) async -> HookFailure? {
        let bytes: [UInt8]
        switch Self.encode(input) {
        case .success(let encoded): bytes = encoded
        case .failure(let failure): return failure
        }
        if case .failure(let failure) = await run(spec, event: input.event, input: bytes) { return failure }
        return nil
    }

    /// The input document as compact JSON with sorted keys.
    static func encode(_ input: HookInput) -> Result<[UInt8], HookFailure> {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            return .success(Array(try encoder.encode(input)))
        } catch {
            return .failure(.notRunnable("the hook input could not be encoded as JSON: \(error)"))
        }
    }

    /// Everything `run` does, on the current thread (blocking).
    func runHere(_ spec: HookSpec, event: String, input: [UInt8]) -> Result<[UInt8], HookFailure> {
        switch prepare(spec, event: event, inputSize: input.count) {
        case .success(let launch):
            return HookProcess.run(launch, input: input, timeoutMilliseconds: spec.timeoutMilliseconds)
        case .failure(let failure):
            return .failure(failure)
        }
    }

    /// The checks before a run, and the launch they allow.
    func prepare(_ spec: HookSpec, event: String, inputSize: Int) -> Result<HookLaunch, HookFailure> {
        guard !event.isEmpty, event.utf8.count <= 64,
            event.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F })
        else {
            return .failure(
                .notRunnable("event name '\(HookText.escape(event, limit: 64))' is not valid (lowercase, digits, _)")
            )
        }
        guard inputSize <= HookProcess.inputLimit else {
            return .failure(
                .notRunnable(
                    "the input document is \(inputSize) bytes, over the limit of \(HookProcess.inputLimit); the "
                        + "request's reason, fields or context are too large to hand to a hook"
                )
            )
        }
        guard spec.timeoutMilliseconds > 0 else {
            return .failure(
                .notRunnable(
                    "the hook's timeout is \(spec.timeoutMilliseconds) ms; set a positive timeout in the policy"
                )
            )
        }
        for (name, value) in spec.environment {
            if let refusal = Self.environmentRefusal(name: name, value: value) {
                return .failure(.notRunnable(refusal))
            }
        }

        let program: String
        switch HookPath.checkProgram(spec.path) {
        case .success(let resolved): program = resolved
        case .failure(let failure): return .failure(failure)
        }
        var library: String?
        // A library directory that does not exist is left out (hooks that are not Python, or
        // that do not import writ_hook, still run); one that exists must be safe.
        if let libraryPath, !(libraryPath.hasPrefix("/") && HookPath.isMissing(libraryPath)) {
            let resolved: String
            switch HookPath.checkDirectory(libraryPath, what: "the hook library directory") {
            case .success(let path): resolved = path
            case .failure(let failure): return .failure(failure)
            }
            let module = (resolved == "/" ? "" : resolved) + "/writ_hook.py"
            if let failure = HookPath.checkOptionalFile(module) { return .failure(failure) }
            library = resolved
        }

        let identity: HookIdentity
        switch HookIdentity.resolve(user: user) {
        case .success(let resolved): identity = resolved
        case .failure(let failure): return .failure(failure)
        }

        var environment = [
            "PATH=" + Self.path,
            "LANG=C.UTF-8",
            "HOME=" + identity.home,
            "USER=" + identity.name,
            "LOGNAME=" + identity.name,
            "SHELL=/bin/sh",
            "WRIT_HOOK_EVENT=" + event,
            "WRIT_HOOK_VERSION=\(HookInput.protocolVersion)",
        ]
        if let library { environment.append("PYTHONPATH=" + library) }
        environment.append("PYTHONDONTWRITEBYTECODE=1")
        // The hook user's ~/.local site-packages would outlive one run and change the next.
        environment.append("PYTHONNOUSERSITE=1")
        for name in spec.environment.keys.sorted() { environment.append(name + "=" + spec.environment[name]!) }

        return .success(
            HookLaunch(program: program, arguments: [spec.path, event], environment: environment, identity: identity)
        )
    }

    /// Why an admin-set variable cannot be passed, or nil. Never quotes the value (it may be a
    /// secret).
    static func environmentRefusal(name: String, value: String) -> String? {
        let bytes = Array(name.utf8)
        let valid =
            !bytes.isEmpty
            && bytes.enumerated().allSatisfy { index, byte in
                (byte >= 0x41 && byte <= 0x5A) || byte == 0x5F || (index > 0 && byte >= 0x30 && byte <= 0x39)
            }
        let shown = HookText.escape(name, limit: 60)
        if !valid {
            return "environment variable name '\(shown)' is not valid; use capitals, digits and _ ([A-Z_][A-Z0-9_]*)"
        }
        if reservedNames.contains(name) {
            return "environment variable \(shown) is set by writd for every hook; give the setting another name"
        }
        if value.utf8.contains(0) { return "environment variable \(shown) has a NUL byte in its value; remove it" }
        return nil
    }
}

/// Runs blocking work on a new thread and resumes the awaiting task with its result.
enum HookThread {
    static func run(
        _ body: @escaping @Sendable () -> Result<[UInt8], HookFailure>
    ) async -> Result<[UInt8], HookFailure> {
        await withCheckedContinuation { (continuation: CheckedContinuation<Result<[UInt8], HookFailure>, Never>) in
            let box = Unmanaged.passRetained(Job(body: body, continuation: continuation))
            var thread = pthread_t()
            let rc = pthread_create(
                &thread,
                nil,
                { raw in
                    guard let raw else { return nil }
                    let job = Unmanaged<Job>.fromOpaque(raw).takeRetainedValue()
                    job.continuation.resume(returning: job.body())
                    return nil
                },
                box.toOpaque()
            )
            if rc == 0 {
                pthread_detach(thread)
            } else {
                box.release()
                continuation.resume(
                    returning: .failure(
                        .notRunnable("could not start a thread for the hook: \(String(cString: strerror(rc)))")
                    )
                )
            }
        }
    }

    private final class Job {
        let body: @Sendable () -> Result<[UInt8], HookFailure>
        let continuation: CheckedContinuation<Result<[UInt8], HookFailure>, Never>
        init(
            body: @escaping @Sendable () -> Result<[UInt8], HookFailure>,
            continuation: CheckedContinuation<Result<[UInt8], HookFailure>, Never>
        ) {
            self.body = body
            self.continuation = continuation
        }
    }
}

extension HookRunner {
    /// Where writ_hook.py is installed for the running program: `PREFIX/lib/writ/python` beside
    /// `PREFIX/bin` or `PREFIX/sbin` (/usr/local from source, /usr from the Debian package).
    public static var installedLibraryPath: String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return "/usr/local/lib/writ/python" }
        let exe = String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var parts = exe.split(separator: "/", omittingEmptySubsequences: false).dropLast()  // the file
        guard let bin = parts.last, bin == "bin" || bin == "sbin" else { return "/usr/local/lib/writ/python" }
        parts = parts.dropLast()
        return parts.joined(separator: "/") + "/lib/writ/python"
    }
}
