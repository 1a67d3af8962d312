/// One holder at a time, waiters served in order: the async counterpart of a mutex, for a
/// resource (an SQLite connection) that one transaction uses across suspension points.
actor AsyncGate {
    private var held = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func enter() async {
        if !held {
            held = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    /// Hands the gate to the first waiter, or opens it.
    func leave() {
        if waiters.isEmpty { held = false } else { waiters.removeFirst().resume() }
    }
}
