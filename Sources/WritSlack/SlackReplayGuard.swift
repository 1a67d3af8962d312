import Synchronization
import WritIntegrations

/// The signatures of the signed requests accepted lately, so that each is accepted once. A
/// signature stays for as long as its timestamp is inside Slack's window (`SlackSignature.window`
/// either side of now); after that the request is refused as stale anyway. At most `capacity`
/// are kept: when that many are live, new requests are refused until some age out (only holders
/// of the signing secret can add entries, so this binds Slack itself, not strangers).
package final class SlackReplayGuard: Sendable {
    package enum Verdict: Equatable {
        case first
        case replay
        case full
    }

    private struct State {
        /// Signature → the second after which it no longer needs keeping.
        var seen: [String: Int64] = [:]
        var nextSweep: Int64 = .min
    }

    let capacity: Int
    private let state = Mutex(State())

    package init(capacity: Int) {
        self.capacity = capacity
    }

    /// Records `signature` (of a request verified as signed at `timestamp`) seen at `now`.
    package func check(signature: String, timestamp: Int64, now: Int64) -> Verdict {
        state.withLock { state in
            if now >= state.nextSweep || state.seen.count >= capacity {
                state.seen = state.seen.filter { $0.value >= now }
                state.nextSweep = now + 30
            }
            if let until = state.seen[signature], until >= now { return .replay }
            guard state.seen.count < capacity else { return .full }
            state.seen[signature] = timestamp + SlackSignature.window
            return .first
        }
    }

    /// How many signatures are kept now (tests).
    var count: Int { state.withLock { $0.seen.count } }
}
