/// What one account may add to root's audit log and to writd's work, per kind of event (a token
/// bucket per account and kind). Refused requests and sudo refusals can be caused in a loop by
/// any local user; each is a record and an fsync. Within the budget each is recorded in full;
/// past it the first one is recorded with a note that more are being counted, the rest are only
/// counted, and the next record once the budget refills says how many were not recorded. So a
/// flood costs a few records, and the evidence that someone tried (and how often) stays.
struct AuditBudget {
    /// Records allowed at once (a full bucket).
    let burst: Int
    /// Seconds for one record to come back.
    let refillSeconds: Int64

    enum Verdict: Equatable {
        /// Record it; `notRecorded` events of this key were counted but not recorded before it.
        case record(notRecorded: Int)
        /// Over the budget, first time: record it with a note that further ones are counted.
        case recordAndMute
        /// Over the budget: count it only.
        case countOnly
    }

    private struct Bucket {
        var tokens: Int
        var refilledAt: Int64
        var muted = false
        var notRecorded = 0
    }
    private var buckets: [String: Bucket] = [:]
    private var lastSweep: Int64 = 0

    init(burst: Int, refillSeconds: Int64) {
        self.burst = burst
        self.refillSeconds = refillSeconds
    }

    /// Spends one record of `key` (an account, or "kind:account") at `now`.
    mutating func spend(_ key: String, now: Int64) -> Verdict {
        var b = refilled(key, now: now)
        let verdict: Verdict
        if b.muted && b.tokens < burst {
            // Muted until the flood has stopped long enough for the whole budget to come back:
            // a steady flood costs one record, not one per refill.
            b.notRecorded += 1
            verdict = .countOnly
        } else if b.tokens > 0 {
            b.tokens -= 1
            verdict = .record(notRecorded: b.notRecorded)
            b.notRecorded = 0
            b.muted = false
        } else if !b.muted {
            b.muted = true
            verdict = .recordAndMute
        } else {
            b.notRecorded += 1
            verdict = .countOnly
        }
        buckets[key] = b
        return verdict
    }

    /// Takes one token of `key` at `now` if there is one; else the seconds until there is.
    mutating func take(_ key: String, now: Int64) -> Int64? {
        var b = refilled(key, now: now)
        defer { buckets[key] = b }
        guard b.tokens > 0 else { return max(1, b.refilledAt + refillSeconds - now) }
        b.tokens -= 1
        return nil
    }

    /// `key`'s bucket with the tokens earned since it was last filled.
    private mutating func refilled(_ key: String, now: Int64) -> Bucket {
        sweep(now: now)
        var b = buckets[key] ?? Bucket(tokens: burst, refilledAt: now)
        if now < b.refilledAt {
            b.refilledAt = now  // the clock stepped back: count from now
        } else if b.tokens >= burst {
            b.refilledAt = now
        } else {
            let back = Int(min((now - b.refilledAt) / refillSeconds, Int64(burst)))
            if back > 0 {
                b.tokens = min(burst, b.tokens + back)
                b.refilledAt = b.tokens >= burst ? now : b.refilledAt + Int64(back) * refillSeconds
            }
        }
        return b
    }

    /// Forgets buckets that are full again and have nothing to report (every 10 minutes), so the
    /// table holds only accounts that are busy now.
    private mutating func sweep(now: Int64) {
        guard now - lastSweep >= 600 else { return }
        lastSweep = now
        let horizon = Int64(burst) * refillSeconds
        buckets = buckets.filter { $0.value.notRecorded > 0 || now - $0.value.refilledAt < horizon }
    }

    /// How many keys are tracked (tests).
    var count: Int { buckets.count }
}
