import Testing
import WritAgent
import WritProtocol

@testable import WritDaemon

/// What a user reads when writ-server does not give the relayed call's answer.
@Suite("the relay's failures, as the user reads them")
struct FleetRelayErrorTests {
    @Test("a busy server: try again; a server that failed or does not know the call: tell its admins")
    func failures() {
        for status in [429, 502, 503, 504] {
            guard case .busy = FleetClient.undocumented(status) else {
                Issue.record("HTTP \(status) is not busy")
                continue
            }
            #expect(FleetRelay.wireError(FleetClient.undocumented(status)).message.contains("try again in a minute"))
        }
        for status in [400, 404, 500, 501] {
            let error = FleetClient.undocumented(status)
            guard case .failed(let m) = error else {
                Issue.record("HTTP \(status) read as \(error)")
                continue
            }
            #expect(m.contains("HTTP \(status)"))
            let wire = FleetRelay.wireError(error)
            #expect(wire.code == "internal" && wire.message.contains("tell the fleet's admins"), "\(wire.message)")
            #expect(!wire.message.contains("try again in a minute"))
        }
        guard case .failed(let m) = FleetClient.undocumented(404) else { return }
        #expect(m.contains("does not know this call"))
    }
}
