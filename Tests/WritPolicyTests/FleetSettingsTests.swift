import Testing
import WritCore

@testable import WritPolicy

@Suite("Policy: a fleet's approval routes")
struct FleetSettingsTests {
    @Test("approve_from_hosts: the request's own host, and the hosts it names")
    func approveFromHosts() throws {
        let p = try Policy.parse(
            """
            version: 1
            flows:
              - name: db
                capability: sudo
                hosts: ["db-*"]
                requesters: {users: [alice]}
                approvers: {users: [bob]}
                approve_from_hosts: ["bastion-*", admin-01]
              - name: web
                capability: sudo
                requesters: {users: [alice]}
                approvers: {users: [bob]}
            """,
            file: "p.yaml"
        )
        let db = try #require(p.flow(named: "db"))
        #expect(db.approveFromHosts == ["bastion-*", "admin-01"])
        #expect(db.acceptsApproval(through: "db-01", forRequestOn: "db-01"))
        #expect(db.acceptsApproval(through: "bastion-07", forRequestOn: "db-01"))
        // Full names only: a short name that happens to match gives no authority.
        #expect(!db.acceptsApproval(through: "db-01.lab", forRequestOn: "db-01"))
        #expect(db.acceptsApproval(through: "admin-01", forRequestOn: "db-02"))
        #expect(!db.acceptsApproval(through: "db-02", forRequestOn: "db-01"))
        #expect(!db.acceptsApproval(through: "web-01", forRequestOn: "db-01"))
        let web = try #require(p.flow(named: "web"))
        #expect(web.approveFromHosts.isEmpty)
        #expect(web.acceptsApproval(through: "web-01", forRequestOn: "web-01"))
        #expect(!web.acceptsApproval(through: "bastion-01", forRequestOn: "web-01"))
    }

    @Test("approve_from_hosts must be a list of ASCII host patterns")
    func badApproveFromHosts() {
        for (value, expected) in [("bastion-01", "must be a list"), ("[\"bästion\"]", "must be ASCII")] {
            do {
                _ = try Policy.parse(
                    """
                    version: 1
                    flows:
                      - name: db
                        capability: sudo
                        requesters: {users: [alice]}
                        approvers: {users: [bob]}
                        approve_from_hosts: \(value)
                    """,
                    file: "p.yaml"
                )
                Issue.record("parsed \(value)")
            } catch {
                #expect(
                    error.issues.map(\.description).contains { $0.contains("p.yaml:7:") && $0.contains(expected) },
                    "\(error.issues.map(\.description))"
                )
            }
        }
    }
}
