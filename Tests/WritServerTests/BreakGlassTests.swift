import FakeServices
import Glibc
import Testing
import WritAgent
import WritFleetAPI

/// PagerDuty break-glass decided by writ-server: the server reads the fleet's integrations file
/// and asks PagerDuty (a local fake speaking its REST API v2, Tests/Fakes/fake_pagerduty.py)
/// whether the requester is on call, as writd does standalone.
@Suite("writ-server: PagerDuty break-glass on the server", .serialized)
struct BreakGlassTests {
    static let policy = """
        version: 1
        flows:
          - name: glass
            capability: sudo
            hosts: ["web-*"]
            requesters: {users: [alice, carol]}
            approvers: {users: [bob]}
            duration: {default: 30m, max: 2h}
            break_glass:
              pagerduty: {escalation_policies: [PEPOPS], max_level: 1}
              max_duration: 45m

        """

    static func filing(_ user: String) -> Components.Schemas.RequestFiling {
        .init(user: user, groups: [], capability: "sudo", duration: 7200, reason: "INC-7 site down")
    }

    @Test(
        "on call now: the server approves at once; not on call, PagerDuty away, or an integrations file others can read: to people"
    )
    func breakGlass() async throws {
        try await FakeService.with(script: "fake_pagerduty.py") { pd in
            let now = Int64(time(nil))
            try await pd.post(
                "seed",
                """
                {"users": [{"id": "PALICE", "name": "Alice", "email": "alice@example.test"},
                           {"id": "PCAROL", "name": "Carol", "email": "carol@example.test"}],
                 "escalation_policies": [{"id": "PEPOPS", "name": "Ops"}, {"id": "PEPWEB", "name": "Web"}],
                 "schedules": [],
                 "oncalls": [
                   {"user": "PALICE", "escalation_policy": "PEPOPS", "schedule": null, "escalation_level": 1,
                    "start": "\(Self.iso(now - 3600))", "end": "\(Self.iso(now + 3600))"},
                   {"user": "PCAROL", "escalation_policy": "PEPWEB", "schedule": null, "escalation_level": 1,
                    "start": null, "end": null}]}
                """
            )
            let fleet = try await Fleet.make(.sqlite)
            let policyPath = fleet.stateDir + "/policy.yaml"
            let integrationsPath = fleet.stateDir + "/integrations.yaml"
            try TempDir.write(Self.policy, to: policyPath)
            try TempDir.write(
                """
                pagerduty:
                  token: pd-fake-token
                  api_url: \(pd.url)
                  timeout: 2s
                identities:
                  email_template: "{user}@example.test"

                """,
                to: integrationsPath
            )
            // Readable by others first: a file holding a token is refused, so nobody is on call.
            chmod(integrationsPath, 0o644)
            let server = try await fleet.start(["--policy", policyPath, "--integrations", integrationsPath])
            defer { server.stop() }
            let (_, web) = try await fleet.enroll("web-01", server: server)
            defer { Task { await web.shutdown() } }

            let refusedFile = try await web.fileRequest(Self.filing("alice"))
            #expect(refusedFile.state == "pending", "with the integrations file refused: \(refusedFile.state)")
            _ = try await web.cancel(refusedFile.id, user: "alice")

            chmod(integrationsPath, 0o600)
            server.child.signal(SIGHUP)
            // alice is on call for PEPOPS at level 1: approved by the server at once.
            var alice = try await web.fileRequest(Self.filing("alice"))
            for _ in 0..<20 where alice.state == "pending" {
                _ = try await web.cancel(alice.id, user: "alice")
                try await Task.sleep(for: .milliseconds(250))
                alice = try await web.fileRequest(Self.filing("alice"))
            }
            #expect(alice.state == "approved" && alice.grantId != nil, "alice on call: \(alice.state)")
            #expect(
                alice.decisionNote?.contains("on call in PagerDuty: escalation policy PEPOPS") == true,
                "the evidence: \(alice.decisionNote ?? "none")"
            )
            // 2h asked, clamped to break-glass's 45m.
            #expect(alice.duration == 2700)
            // The evidence is in the fleet's audit chain.
            let audit = try await fleet.admin(["audit", "--user", "alice"])
            #expect(audit.status == 0 && audit.output.contains("on call in PagerDuty"), "\(audit.output.suffix(600))")
            let asked = try await pd.get("requests?path=/oncalls")
            #expect(asked.contains("alice@example.test") || asked.contains("PALICE"), "\(asked.prefix(300))")

            // carol is on call, but for an escalation policy the flow does not list: to people.
            let carol = try await web.fileRequest(Self.filing("carol"))
            #expect(carol.state == "pending", "carol on call elsewhere: \(carol.state)")

            // PagerDuty answering 503: the request goes to people, not through.
            try await pd.post("down", #"{"mode": "503"}"#)
            let away = try await web.fileRequest(Self.filing("alice"))
            #expect(away.state == "pending", "with PagerDuty down: \(away.state)")
        }
    }

    static func iso(_ t: Int64) -> String {
        var tt = time_t(t)
        var parts = tm()
        gmtime_r(&tt, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%SZ", &parts)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
