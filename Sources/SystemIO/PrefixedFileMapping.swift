#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file's first `length` bytes, mapped read-only, with `prefixLength` writable bytes of memory right in front of them:
/// one contiguous range of addresses holding a header the caller writes and then the file. For a consumer that needs
/// its whole input at one address (zstd reading in place), without first copying the file into memory.
///
/// The file part is mapped where a page begins, and the prefix is the end of an anonymous mapping just before it, so
/// the two meet exactly. Pages of the file that the consumer is done with can be given back (`release(below:)`): they
/// leave this process's resident memory, and reading them again, should the consumer reach back, maps them in again
/// from the page cache, so releasing never changes what is read.
public struct PrefixedFileMapping: ~Copyable {
    private let base: UnsafeMutableRawPointer
    private let totalLength: Int
    /// Where the file's mapping begins (page-aligned), and where the prefix begins.
    private let fileStart: UnsafeMutableRawPointer
    public let prefixLength: Int
    public let length: Int
    public let path: String
    private let pageSize: Int
    private var released = 0

    /// Maps `length` bytes of the open file `descriptor` (named `path` in errors) behind `prefixLength` bytes of memory.
    public init(descriptor: Int32, path: String, length: Int, prefixLength: Int) throws(SystemError) {
        precondition(length >= 0 && prefixLength >= 0, "lengths cannot be negative")
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let prefixPages = (prefixLength + page - 1) / page * page
        let filePages = (length + page - 1) / page * page
        let total = max(prefixPages + filePages, page)
        // One reservation of the whole range first, so nothing else can take the addresses between the two mappings.
        guard let reserved = mmap(nil, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              reserved != MAP_FAILED else {
            throw SystemError("reserve memory to read", path: path, errno: errno)
        }
        if filePages > 0 {
            let fileAddress = reserved + prefixPages
            guard let mapped = mmap(fileAddress, filePages, PROT_READ, MAP_SHARED | MAP_FIXED, descriptor, 0),
                  mapped != MAP_FAILED else {
                let error = errno
                munmap(reserved, total)
                throw SystemError("map for reading", path: path, errno: error)
            }
        }
        base = reserved
        totalLength = total
        fileStart = reserved + prefixPages
        self.prefixLength = prefixLength
        self.length = length
        self.path = path
        pageSize = page
    }

    deinit {
        munmap(base, totalLength)
    }

    /// The prefix, for the caller to fill.
    public var prefix: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: fileStart - prefixLength, count: prefixLength)
    }

    /// The prefix and then the file's bytes, contiguous.
    public var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: fileStart - prefixLength, count: prefixLength + length)
    }

    /// Gives back the resident pages of the file part that lie wholly below `offset` (a position in `bytes`).
    public mutating func release(below offset: Int) {
        let end = (offset - prefixLength) / pageSize * pageSize
        guard end > released else { return }
        _ = madvise(fileStart + released, end - released, MADV_DONTNEED)
        released = end
    }
}
