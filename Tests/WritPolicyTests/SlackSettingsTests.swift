import Testing
import WritCore

@testable import WritPolicy

@Suite("Slack settings and flow options")
struct SlackSettingsTests {
    @Test("integrations.yaml: Socket Mode by default with an app token, HTTP mode with a signing secret")
    func modes() throws {
        let s = try IntegrationSettings.parse(
            """
            slack:
              bot_token: xoxb-1
              app_token: xapp-1
              channel: "#writ"
              users: {alice: U0ALICE001}
              timeout: 5s
            """,
            file: "i.yaml"
        )
        #expect(s.slack?.mode == .socket)
        #expect(s.slack?.apiURL == "https://slack.com/api/")
        #expect(s.slack?.channel == "#writ")
        #expect(s.slack?.users == ["alice": "U0ALICE001"])
        #expect(s.slack?.timeoutMilliseconds == 5000)
        let h = try IntegrationSettings.parse(
            "slack: {bot_token: xoxb-1, signing_secret: s3, listen: \"0.0.0.0:8443\", api_url: \"http://127.0.0.1:9/api\"}\n",
            file: "i.yaml"
        )
        #expect(h.slack?.mode == .http)
        #expect(h.slack?.listenHost == "0.0.0.0")
        #expect(h.slack?.listenPort == 8443)
        #expect(h.slack?.apiURL == "http://127.0.0.1:9/api/")
    }

    @Test("integrations.yaml: each Slack mistake is reported where it is")
    func mistakes() {
        do {
            _ = try IntegrationSettings.parse(
                """
                slack:
                  bot_token: xoxp-user-token
                  mode: websocket
                  api_url: "http://slack.example.com/api/"
                  listen: "3000"
                  tls_certificate: /etc/writ/cert.pem
                  users: {alice: alice}
                """,
                file: "i.yaml"
            )
            Issue.record("parsed")
        } catch {
            let lines = error.issues.map(\.description)
            #expect(lines.contains { $0.contains("i.yaml:2:") && $0.contains("must be a bot token (xoxb-") })
            #expect(lines.contains { $0.contains("'mode' in slack must be socket or http") })
            #expect(lines.contains { $0.contains("'api_url' in slack must be https://") })
            #expect(lines.contains { $0.contains("'listen' in slack must be host:port") })
            #expect(lines.contains { $0.contains("'tls_certificate' and 'tls_key' in slack go together") })
            #expect(lines.contains { $0.contains("alice in slack users is not a Slack user id") })
        }
        do {
            _ = try IntegrationSettings.parse(
                """
                slack: {bot_token: xoxb-1, app_token: xapp-1, users: {root: U0ROOT0001, al: U0AL000001, bo: U0AL000001}}
                identities: {emails: {al: al@example.com, backup: AL@example.com}}
                """,
                file: "i.yaml"
            )
            Issue.record("parsed")
        } catch {
            let lines = error.issues.map(\.description)
            #expect(lines.contains { $0.contains("root in slack users: root is never mapped") })
            #expect(lines.contains { $0.contains("U0AL000001 in slack users is pinned to") })
            #expect(
                lines.contains {
                    $0.contains("AL@example.com in identities emails is al's already")
                        || $0.contains("al@example.com in identities emails is backup's already")
                }
            )
        }
        do {
            _ = try IntegrationSettings.parse("slack: {bot_token: xoxb-1}\n", file: "i.yaml")
            Issue.record("parsed")
        } catch {
            #expect(error.issues.map(\.description).contains { $0.contains("'app_token' is missing in slack") })
        }
    }

    @Test("a flow's slack_channel and slack_approve")
    func flowOptions() throws {
        let p = try Policy.parse(
            """
            version: 1
            flows:
              - name: vault
                capability: sudo
                requesters: {users: [alice]}
                approvers: {users: [bob]}
                slack_channel: C0HIGHRISK
                slack_approve: cli
              - name: ops
                capability: sudo
                requesters: {users: [alice]}
                approvers: {users: [bob]}
            """,
            file: "p.yaml"
        )
        #expect(p.flow(named: "vault")?.slackChannel == "C0HIGHRISK")
        #expect(p.flow(named: "vault")?.slackApprove == .cli)
        #expect(p.flow(named: "ops")?.slackApprove == .allowed)
        #expect(p.flows(requestableBy: "alice", unixGroups: [], host: "web-01").map(\.name) == ["vault", "ops"])
        #expect(p.flows(requestableBy: "bob", unixGroups: [], host: "web-01").isEmpty)
        do {
            _ = try Policy.parse(
                """
                version: 1
                flows:
                  - name: ops
                    capability: sudo
                    requesters: {users: [alice]}
                    approvers: {users: [bob]}
                    slack_approve: never
                """,
                file: "p.yaml"
            )
            Issue.record("parsed")
        } catch {
            #expect(
                error.issues.map(\.description).contains { $0.contains("p.yaml:7:") && $0.contains("'slack_approve'") }
            )
        }
    }
}
