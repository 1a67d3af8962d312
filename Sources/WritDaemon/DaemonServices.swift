import Logging
import ServiceLifecycle
import UnixSignals

/// Applies deadlines: starts the engine (crash recovery, due expiries), then lets the wall-clock
/// timer wake it. On shutdown, waits for session terminations in flight.
public struct ExpiryService: Service {
    let engine: Engine
    let timer: WallClockTimer

    public init(engine: Engine, timer: WallClockTimer) {
        self.engine = engine
        self.timer = timer
    }

    public func run() async throws {
        let engine = self.engine
        timer.run { Task { await engine.tick() } }
        try? await gracefulShutdown()
        timer.stop()
        await engine.drain()
    }
}

/// SIGHUP reloads the policy; a policy with errors leaves the last good one in force.
public struct ReloadService: Service {
    let engine: Engine
    let logger: Logger

    public init(engine: Engine, logger: Logger) {
        self.engine = engine
        self.logger = logger
    }

    public func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        await withGracefulShutdownHandler {
            for await _ in signals.cancelOnGracefulShutdown() {
                logger.notice("SIGHUP: reloading the policy")
                await engine.loadPolicy()
                _ = try? await engine.syncAfterReload()
            }
        } onGracefulShutdown: {
        }
    }
}

extension Engine {
    /// After a reload: pick up grants written behind writd's back, re-evaluate deadlines.
    func syncAfterReload() throws -> Int {
        let n = try syncWatch(now: now())
        tick(reconcile: true)
        return n
    }
}
