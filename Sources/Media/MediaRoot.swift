#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A directory that media paths taken from data (database rows) must stay inside.
///
/// Paths are canonicalised with `realpath`, so `..` components and symlinks are followed before the containment
/// check: a symlink inside the root that points outside is refused like `../`. The check happens when the path is
/// resolved; a file swapped for a symlink between `resolve` and the read is not caught.
public struct MediaRoot: Sendable {
    /// The canonical directory.
    public let directory: String

    public init(_ directory: String) throws(MediaError) {
        guard let canonical = canonicalPath(directory) else {
            throw MediaError(.fileNotFound, "media root \(directory) does not exist: \(errnoText())")
        }
        var info = stat()
        guard stat(canonical, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
            throw MediaError(.fileNotFound, "media root \(directory) is not a directory")
        }
        self.directory = canonical
    }

    public func resolve(_ relativeOrAbsolutePath: String) throws(MediaError) -> MediaInput {
        let path = relativeOrAbsolutePath
        guard !path.isEmpty, !path.utf8.contains(0) else {
            throw MediaError(.fileNotFound, "empty or invalid media path")
        }
        let joined = path.hasPrefix("/") ? path : directory + "/" + path
        guard let canonical = canonicalPath(joined) else {
            let reason = errnoText()
            // A missing path that would lie outside the root anyway is reported as outside: it tells the operator the
            // row is hostile or misconfigured, not that a file went away.
            if !contains(lexicallyNormalized(joined)) {
                throw MediaError(.pathOutsideRoot, "\(path) is outside the media root \(directory)")
            }
            throw MediaError(.fileNotFound, "\(path) not found under \(directory): \(reason)")
        }
        guard contains(canonical) else {
            throw MediaError(.pathOutsideRoot, "\(path) resolves to \(canonical), outside the media root \(directory)")
        }
        var info = stat()
        guard stat(canonical, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw MediaError(.fileNotFound, "\(path) is not a regular file")
        }
        return .file(canonical)
    }

    private func contains(_ canonical: String) -> Bool {
        if directory == "/" { return canonical.hasPrefix("/") }
        return canonical == directory || canonical.hasPrefix(directory + "/")
    }
}

private func canonicalPath(_ path: String) -> String? {
    guard let resolved = realpath(path, nil) else { return nil }
    defer { free(resolved) }
    return String(cString: resolved)
}

/// Collapses `.` and `..` without touching the filesystem (absolute paths only).
private func lexicallyNormalized(_ path: String) -> String {
    var parts: [Substring] = []
    for part in path.split(separator: "/", omittingEmptySubsequences: true) {
        if part == "." { continue }
        if part == ".." {
            if !parts.isEmpty { parts.removeLast() }
            continue
        }
        parts.append(part)
    }
    return "/" + parts.joined(separator: "/")
}

func errnoText() -> String {
    String(cString: strerror(errno))
}
