import CWritSystem
import Glibc
import Synchronization

/// A timer on the wall clock (timerfd, CLOCK_REALTIME, absolute), because grants end at a UTC
/// second, not after a monotonic interval: when the clock is stepped (NTP, an admin), the kernel
/// wakes the reader with ECANCELED (TFD_TIMER_CANCEL_ON_SET) and writd re-evaluates at once.
/// Idle writd sleeps in read(2) until the next deadline: no polling.
public final class WallClockTimer: Sendable {
    private let fd: Int32
    private let stopped = Atomic<Bool>(false)

    public init() throws(TimerError) {
        fd = writ_timerfd_create()
        guard fd >= 0 else { throw TimerError(errno: errno) }
    }

    deinit { close(fd) }

    public struct TimerError: Error, CustomStringConvertible {
        public var errno: Int32
        public var description: String { "timerfd_create: \(String(cString: strerror(errno)))" }
    }

    /// Fires at `epochSeconds` (at once if that has passed); nil disarms until the clock is set.
    public func arm(at epochSeconds: Int64?) {
        // 0 would disarm; any time in the past fires immediately. nil: far in the future, still
        // armed, so that a clock step is still reported.
        _ = writ_timerfd_arm_at(fd, Int64(max(1, epochSeconds ?? Int64(Int32.max))))
    }

    /// Runs `onFire` on a dedicated thread each time the timer fires or the clock is set, until
    /// `stop()`.
    public func run(_ onFire: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(ThreadBody(timer: self, onFire: onFire))
        var thread = pthread_t()
        let rc = pthread_create(
            &thread,
            nil,
            { raw in
                guard let raw else { return nil }
                let body = Unmanaged<ThreadBody>.fromOpaque(raw).takeRetainedValue()
                body.timer.loop(body.onFire)
                return nil
            },
            box.toOpaque()
        )
        if rc == 0 { pthread_detach(thread) } else { box.release() }
    }

    private final class ThreadBody {
        let timer: WallClockTimer
        let onFire: @Sendable () -> Void
        init(timer: WallClockTimer, onFire: @escaping @Sendable () -> Void) {
            self.timer = timer
            self.onFire = onFire
        }
    }

    private func loop(_ onFire: @Sendable () -> Void) {
        var expirations: UInt64 = 0
        while !stopped.load(ordering: .acquiring) {
            let n = read(fd, &expirations, 8)
            if stopped.load(ordering: .acquiring) { return }
            if n == 8 {
                onFire()
            } else if n < 0 && errno == ECANCELED {
                // The clock was set. Re-arming clears the cancelled state (else every read fails
                // at once); firing now makes the engine re-evaluate and arm the real deadline.
                arm(at: 1)
            } else if n < 0 && errno != EINTR {
                usleep(100_000)
            }
        }
    }

    public func stop() {
        stopped.store(true, ordering: .releasing)
        arm(at: 1)
    }
}
