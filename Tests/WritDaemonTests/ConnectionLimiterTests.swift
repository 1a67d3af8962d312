import Testing
import WritCore

@testable import WritDaemon

@Suite("Connection limits")
struct ConnectionLimiterTests {
    @Test("accounts filling the total never shut out root, and a refusal blames the right uid")
    func rootAlwaysGetsIn() {
        let limiter = ConnectionLimiter()
        // 96 accounts with their whole share: the total (3,072) is reached.
        for uid in UInt32(2000)..<2096 {
            for _ in 0..<ConnectionLimiter.perUser { #expect(limiter.acquire(uid, now: 0).refusal == nil) }
        }
        let another = limiter.acquire(3000, now: 0)
        #expect(another.refusal == .everyone(open: ConnectionLimiter.total))
        #expect(another.logLine?.contains("from other users") == true)
        #expect(another.logLine?.contains("uid 3000") == true)
        #expect(limiter.acquire(2000, now: 0).refusal == .ownShare(uid: 2000, open: ConnectionLimiter.perUser))
        // Root (the modules' reports) gets its own budget, whatever the others hold.
        for _ in 0..<ConnectionLimiter.perRoot { #expect(limiter.acquire(0, now: 0).refusal == nil) }
        #expect(limiter.acquire(0, now: 0).refusal == .ownShare(uid: 0, open: ConnectionLimiter.perRoot))
        // A closed connection makes room for the next user.
        limiter.release(2000)
        #expect(limiter.acquire(3000, now: 0).refusal == nil)
    }

    @Test("a root peer with a user's real uid (sudo) counts as that user, not against root's own budget")
    func setuidPeersCountAsTheirUser() {
        let limiter = ConnectionLimiter()
        for _ in 0..<ConnectionLimiter.perUser { #expect(limiter.acquire(0, realUID: 2000, now: 0).refusal == nil) }
        #expect(
            limiter.acquire(0, realUID: 2000, now: 0).refusal == .ownShare(uid: 2000, open: ConnectionLimiter.perUser)
        )
        #expect(limiter.acquire(2000, now: 0).refusal != nil)
        // Root's own processes (real uid 0) still get in.
        #expect(limiter.acquire(0, realUID: 0, now: 0).refusal == nil)
        #expect(limiter.acquire(0, now: 0).refusal == nil)
    }

    @Test("refusals are logged once per interval, with the number not logged")
    func refusalsAreThrottled() {
        let limiter = ConnectionLimiter()
        for _ in 0..<ConnectionLimiter.perUser { _ = limiter.acquire(2000, now: 100) }
        #expect(limiter.acquire(2000, now: 100).logLine != nil)
        for _ in 0..<500 { #expect(limiter.acquire(2000, now: 105).logLine == nil) }
        let next = limiter.acquire(2000, now: 110).logLine
        #expect(next?.contains("500 more refused") == true)
    }

    @Test("LogThrottle: one line per interval, counting the rest")
    func throttle() {
        var t = LogThrottle(interval: 10)
        #expect(t.admit(now: 0) == (true, 0))
        #expect(t.admit(now: 9) == (false, 0))
        #expect(t.admit(now: 9) == (false, 0))
        #expect(t.admit(now: 10) == (true, 2))
        #expect(t.admit(now: 30) == (true, 0))
    }
}
