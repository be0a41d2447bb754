import Foundation
import Synchronization

/// SIGTERM (systemd stop, Kubernetes pod deletion) and SIGINT (Ctrl-C) as a flag the runner polls at batch
/// boundaries: the handler only stores to an atomic (the one thing a signal handler may safely do), and the run stops
/// at its next item, through the ordinary failure path — staging discarded, lock released, ledger and metrics written,
/// exit 10. A second signal means "now": the process exits at once (the kernel drops the lock; the next run removes
/// the staging debris, as after a SIGKILL).
///
/// The runner sees the flag only when a row arrives. A query still working towards its first row (a large sort, a
/// slow join) sends none, so a watchdog gives the clean stop `graceSeconds`; after that the process dies of the
/// signal itself (default action: 143 to a shell, "killed by SIGTERM" to systemd and Kubernetes) — publishing
/// nothing, as after any kill, and leaving staging debris that the next run removes.
public enum Interruption {
    /// Seconds between the signal and the forced exit; well under systemd's TimeoutStopSec and Kubernetes'
    /// terminationGracePeriodSeconds in deploy/.
    public static let graceSeconds = 5.0

    private static let flag = Atomic<Int32>(0)

    /// True once SIGTERM or SIGINT arrived.
    public static var requested: Bool { flag.load(ordering: .relaxed) != 0 }

    /// The signal that arrived, 0 if none.
    public static var signal: Int32 { flag.load(ordering: .relaxed) }

    /// Installs the handlers for SIGTERM and SIGINT. Call once, before the run.
    public static func installHandlers() {
        _ = flag.load(ordering: .relaxed)  // initialize the static here, never for the first time inside the handler
        // A parent may hand down SIGTERM/SIGINT blocked (the mask survives exec; some launchers block signals in the
        // thread that spawns): then the signal would stay pending and the run would ignore `systemctl stop`.
        var unblock = sigset_t()
        sigemptyset(&unblock)
        sigaddset(&unblock, SIGTERM)
        sigaddset(&unblock, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
        for signalNumber in [SIGTERM, SIGINT] {
            var action = sigaction()
            #if os(Linux)
            action.__sigaction_handler.sa_handler = { received in
                if Interruption.flag.exchange(received, ordering: .relaxed) != 0 { _exit(128 + received) }
            }
            #else
            action.__sigaction_u.__sa_handler = { received in
                if Interruption.flag.exchange(received, ordering: .relaxed) != 0 { _exit(128 + received) }
            }
            #endif
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(signalNumber, &action, nil)
        }
        let watchdog = Thread {
            while !requested { usleep(100_000) }
            usleep(useconds_t(graceSeconds * 1_000_000))
            let received = signal
            FileHandle.standardError.write(Data("etl: still running \(Int(graceSeconds)) s after the signal (waiting on the source query); exiting now: nothing was published, the next run removes this run's staging\n".utf8))
            var action = sigaction()
            sigemptyset(&action.sa_mask)
            #if os(Linux)
            action.__sigaction_handler.sa_handler = SIG_DFL
            #else
            action.__sigaction_u.__sa_handler = SIG_DFL
            #endif
            sigaction(received, &action, nil)
            kill(getpid(), received)
        }
        watchdog.name = "etl-interrupt-watchdog"
        watchdog.start()
    }

    /// For tests that run several runs in one process.
    public static func reset() { flag.store(0, ordering: .relaxed) }
}

/// The run stopped because of SIGTERM/SIGINT; nothing was published.
public struct RunInterrupted: Error, CategorizedFailure, CustomStringConvertible {
    public var signal: Int32
    public init(signal: Int32) { self.signal = signal }
    public var category: FailureCategory { .interrupted }
    /// The rows are still there; the next scheduled run picks them up.
    public var isRetryable: Bool { true }
    public var failureMessage: String {
        let name = signal == SIGINT ? "SIGINT" : signal == SIGTERM ? "SIGTERM" : "signal \(signal)"
        return "interrupted by \(name); stopped at a batch boundary, nothing was published and the cursor did not move"
    }
    public var description: String { failureMessage }
}
