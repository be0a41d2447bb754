import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An exclusive advisory lock on a file (`flock`), taken without waiting: a second cron run must fail fast, not
/// queue behind the first. The kernel drops it when the process dies, so a killed run never wedges the next one.
/// Releasing is closing the descriptor (deinit).
public final class FileLock: @unchecked Sendable {
    private let descriptor: Int32
    public let path: String

    public enum Failure: Error, Sendable {
        /// Another process holds it; `holder` is what that process wrote into the file.
        case held(holder: String)
        case system(SystemError)
    }

    /// `note` is written into the file while the lock is held, so the next run can say who holds it.
    public init(path: String, note: String) throws(Failure) {
        self.path = path
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw .system(SystemError("open lock file", path: path, errno: errno)) }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            let holder = (try? FileSystem.readAll(path, role: "lock file")).flatMap { $0 }.map { String(decoding: $0, as: UTF8.self) }?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            close(descriptor)
            if code == EWOULDBLOCK { throw .held(holder: holder) }
            throw .system(SystemError("lock", path: path, errno: code))
        }
        _ = ftruncate(descriptor, 0)
        let line = note + "\n"
        _ = line.withCString { pwrite(descriptor, $0, strlen($0), 0) }
    }

    deinit {
        _ = ftruncate(descriptor, 0)
        close(descriptor)
    }
}
