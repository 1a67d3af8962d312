import ArgumentParser
import Glibc
import WritProtocol

/// Talking to writd from the CLI. The CLI holds no authority: writd decides by the socket peer's
/// uid, so pointing `--socket` elsewhere only changes whom this user talks to.
enum Daemon {
    static func connect(_ path: String) throws -> WritClient {
        do { return try WritClient(socketPath: path) } catch { throw CLIError(error.description) }
    }

    /// Connects if writd is up; nil if it is not running (the admin's break-glass commands then
    /// write the store directly).
    static func connectIfRunning(_ path: String) throws -> WritClient? {
        do { return try WritClient(socketPath: path) } catch {
            if case .notRunning = error { return nil }
            throw CLIError(error.description)
        }
    }

    /// Connects if writd is up and writes the store at `store` (the admin commands go through the
    /// store's single writer); nil otherwise, and the CLI writes the store itself.
    static func connectIfServing(store: String, socket: String) throws -> WritClient? {
        guard let client = try connectIfRunning(socket) else { return nil }
        let daemon = try call(client, WireRequest(op: .ping)).daemon
        return daemon?.storePath == store ? client : nil
    }

    /// One call; a refusal becomes the CLI's one-line error.
    static func call(_ client: WritClient, _ request: WireRequest) throws -> WireResponse {
        var response: WireResponse
        do { response = try client.call(request) } catch { throw CLIError(error.message) }
        // writd caps connections per user; under a burst it refuses some as busy. Back off and
        // retry for up to about twenty seconds, with jitter so a crowd does not come back at once.
        var attempt = 0
        while response.error?.code == "busy" && attempt < 80 {
            attempt += 1
            usleep(UInt32.random(in: 50_000...250_000))
            do {
                try client.reconnect()
                response = try client.call(request)
            } catch let e as WireError {
                throw CLIError(e.message)
            } catch {
                throw CLIError("\(error)")
            }
        }
        if !response.ok || response.error != nil {
            let e = response.error ?? WireError("internal", "writd refused without saying why")
            throw CLIError(e.message, exitCode: e.code == "bad_request" ? 64 : 1)
        }
        return response
    }
}

struct SocketOptions: ParsableArguments {
    @Option(help: "writd's socket.")
    var socket: String = Wire.defaultSocketPath
}
