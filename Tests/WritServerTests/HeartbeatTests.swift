import AsyncHTTPClient
import FoundationEssentials
import NIOCore
import NIOSSL
import Testing
import WritAgent

/// The long-poll's heartbeats (HeartbeatMiddleware), read off the wire with a plain HTTPS client
/// holding the host's certificate: what the agent's dead-connection detection relies on.
@Suite("long-poll heartbeats")
struct HeartbeatTests {
    @Test(
        "a poll that asks for heartbeats hears a space each interval, then its JSON; an early refusal keeps its status"
    )
    func spacesThenJSON() async throws {
        let fleet = try await Fleet.make(.sqlite)
        let server = try await fleet.start()
        defer { server.stop() }
        let (credentials, client) = try await fleet.enroll("web-01", server: server)
        defer { Task { await client.shutdown() } }
        let cursor = try await client.snapshot().value.cursor
        let http = try plainClient(credentials)
        defer { Task { try? await http.shutdown() } }

        // A 3 s wait with a heartbeat a second: the head and a space at 1 s, another at 2 s, the
        // page at 3 s (the last tick and the answer may come in either order).
        let started = ContinuousClock.now
        let polled = try await http.execute(
            HTTPClientRequest(url: "\(server.url)/v1/agent/grants/changes?cursor=\(cursor)&wait=3&heartbeat=1"),
            timeout: .seconds(20)
        )
        let headAfter = ContinuousClock.now - started
        #expect(polled.status == .ok)
        #expect(headAfter >= .milliseconds(900), "the head came before the first interval: \(headAfter)")
        let body = String(buffer: try await polled.body.collect(upTo: 1 << 16))
        let spaces = body.prefix { $0 == " " }.count
        #expect((2...4).contains(spaces), "\(spaces) heartbeats before the JSON: \(body.debugDescription)")
        #expect(body.dropFirst(spaces).hasPrefix("{\"") && body.contains("\"cursor\""), "\(body.debugDescription)")

        // Not asked for: the JSON alone, after the wait.
        let plain = try await http.execute(
            HTTPClientRequest(url: "\(server.url)/v1/agent/grants/changes?cursor=\(cursor)&wait=2"),
            timeout: .seconds(20)
        )
        #expect(String(buffer: try await plain.body.collect(upTo: 1 << 16)).hasPrefix("{"))

        // A bad cursor is refused at once, with its own status, heartbeats or not.
        let bad = try await http.execute(
            HTTPClientRequest(url: "\(server.url)/v1/agent/grants/changes?cursor=nonsense&wait=3&heartbeat=1"),
            timeout: .seconds(20)
        )
        #expect(bad.status == .badRequest)

        // The agent's own client asks for heartbeats and reads the page after them.
        let page = try await client.changes(after: cursor, wait: 3)
        #expect(page.value.grants.isEmpty && !page.value.cursor.isEmpty)
    }

    @Test("a poll whose client went away frees its place at once, not at the end of its wait")
    func goneClientFreesItsWait() async throws {
        let fleet = try await Fleet.make(.sqlite)
        let server = try await fleet.start()
        defer { server.stop() }
        let (credentials, client) = try await fleet.enroll("web-01", server: server)
        defer { Task { await client.shutdown() } }
        let cursor = try await client.snapshot().value.cursor

        // Four polls of 60 s (a host's limit), over a client that is then shut down.
        let http = try plainClient(credentials)
        let url = "\(server.url)/v1/agent/grants/changes?cursor=\(cursor)&wait=60&heartbeat=1"
        let polls = (0..<4).map { _ in
            Task {
                let response = try await http.execute(HTTPClientRequest(url: url), timeout: .seconds(90))
                return try await response.body.collect(upTo: 1 << 16).readableBytes
            }
        }
        try await Task.sleep(for: .milliseconds(1500))
        let fifth = await agentError { _ = try await client.changes(after: cursor, wait: 0) }
        guard case .busy = fifth else {
            Issue.record("the host's four waits were not all pending: \(String(describing: fifth))")
            return
        }
        for p in polls { p.cancel() }
        try await http.shutdown()

        // The server notices at its next heartbeat write; the waits end, and a new one is taken
        // well before the 60 s the gone ones asked for.
        let deadline = ContinuousClock.now + .seconds(15)
        var last: AgentError?
        while ContinuousClock.now < deadline {
            last = await agentError { _ = try await client.changes(after: cursor, wait: 0) }
            if last == nil { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        #expect(last == nil, "a wait is still refused 15 s after the clients went away: \(String(describing: last))")
    }

    /// An HTTPS client with the host's certificate and the fleet CA, outside the agent's code.
    func plainClient(_ c: AgentCredentials) throws -> HTTPClient {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(c.caPEM.utf8)))
        tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(c.certificatePEM.utf8)).map { .certificate($0) }
        tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(c.keyPEM.utf8), format: .pem))
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
    }
}
