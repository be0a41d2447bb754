#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Owner of one read-only descriptor of a media file, opened only after the checks every input gets: it exists, is a
/// regular file, is not empty, and is within `maxInputBytes`, all judged by `fstat` on the open descriptor, so
/// nothing is read from a file that is then refused, and the size checked is the size of the file actually read.
///
/// The one place in `Media` that makes file system calls (`ByteSource` and `Media.readAll` go through it), so EINTR
/// and errno are handled once.
struct MediaFile: ~Copyable {
    let descriptor: Int32
    /// The size `fstat` reported at open.
    let size: Int64

    private init(descriptor: Int32, size: Int64) {
        self.descriptor = descriptor
        self.size = size
    }

    deinit {
        close(descriptor)
    }

    static func open(_ path: String, limits: MediaLimits) throws(MediaError) -> MediaFile {
        // O_NONBLOCK so that a FIFO in place of a file cannot hang the worker in open(2); it is refused below.
        let fd = openReadOnly(path)
        if fd < 0 {
            throw MediaError(.fileNotFound, "cannot open \(path): \(errnoText())")
        }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw MediaError(.fileNotFound, "\(path) is not a regular file")
        }
        let file = MediaFile(descriptor: fd, size: Int64(info.st_size))
        if file.size == 0 { throw MediaError(.empty, "\(path) is empty (0 bytes)") }
        if file.size > Int64(limits.maxInputBytes) {
            throw MediaError(.tooLarge, "\(path) is \(file.size) bytes, over the limit of \(limits.maxInputBytes)")
        }
        return file
    }

    /// Hands the descriptor to a new owner (who must close it); this value no longer closes it.
    consuming func release() -> Int32 {
        let fd = descriptor
        discard self
        return fd
    }
}

/// open(2) read-only, non-blocking, close-on-exec, retried when a signal interrupts it.
private func openReadOnly(_ path: String) -> Int32 {
    while true {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        if fd >= 0 || errno != EINTR { return fd }
    }
}

/// `pread` that retries when a signal interrupts it; the count read (0 at the end of the file), or -1 with errno set.
func preadRetrying(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int, _ offset: Int64) -> Int {
    while true {
        let got = pread(fd, buffer, count, off_t(offset))
        if got >= 0 || errno != EINTR { return got }
    }
}

/// Fills `buffer` from `offset` until it is full or the file ends; the count read, or -1 with errno set when a read
/// failed before anything was read.
func preadFully(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer, _ offset: Int64) -> Int {
    var done = 0
    while done < buffer.count {
        let got = preadRetrying(fd, buffer.baseAddress! + done, buffer.count - done, offset + Int64(done))
        if got < 0 { return done > 0 ? done : -1 }
        if got == 0 { break }
        done += got
    }
    return done
}
