/// How a run outlasts transient source faults (the backend terminated, the server restarting, a dropped connection,
/// serialization failures): the whole attempt — which published nothing — runs again after an exponentially growing,
/// jittered delay, up to `attempts` retries; then the failure stands with its documented exit code.
public struct RetryPolicy: Sendable, Equatable {
    public var attempts: Int
    public var initialDelaySeconds: Double
    public var maxDelaySeconds: Double

    public static let `default` = RetryPolicy(attempts: 4, initialDelaySeconds: 1, maxDelaySeconds: 60)

    public init(attempts: Int, initialDelaySeconds: Double, maxDelaySeconds: Double) {
        self.attempts = attempts
        self.initialDelaySeconds = initialDelaySeconds
        self.maxDelaySeconds = maxDelaySeconds
    }

    /// The wait before retry `n` (1-based): initial × 2^(n−1), capped, scaled by a random factor in [0.5, 1] so that
    /// many jobs failing together do not come back together ("equal jitter").
    public func delay(beforeRetry n: Int, unit: Double) -> Double {
        let exponential = initialDelaySeconds * Double(1 << min(max(n - 1, 0), 30))
        return min(maxDelaySeconds, exponential) * (0.5 + 0.5 * min(max(unit, 0), 1))
    }

    /// Whether a failure is worth another attempt: only the source's transient faults. A lock held by another run, a
    /// full disk or a bad file are for a person or the next scheduled run, not for a loop.
    static func shouldRetry(_ report: RunFailureReport) -> Bool {
        report.isRetryable && (report.category == .unreachable || report.category == .query)
    }
}
