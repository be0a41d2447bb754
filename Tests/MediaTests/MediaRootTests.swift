import Foundation
import Media
import Testing

@Suite struct MediaRootTests {
    /// root/clip.mp4, root/sub/, root/escape → outside/secret.mp4, root/inner → root/clip.mp4, outside/secret.mp4
    static func layout() throws -> (root: String, outside: String) {
        let base = fixtures.path("roots-\(UUID().uuidString)")
        let root = base + "/root", outside = base + "/outside"
        let files = FileManager.default
        try files.createDirectory(atPath: root + "/sub", withIntermediateDirectories: true)
        try files.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try files.copyItem(atPath: fixtures.clip, toPath: root + "/clip.mp4")
        try files.copyItem(atPath: fixtures.clip, toPath: outside + "/secret.mp4")
        try files.createSymbolicLink(atPath: root + "/escape.mp4", withDestinationPath: outside + "/secret.mp4")
        try files.createSymbolicLink(atPath: root + "/outdir", withDestinationPath: outside)
        try files.createSymbolicLink(atPath: root + "/inner.mp4", withDestinationPath: root + "/clip.mp4")
        return (root, outside)
    }

    @Test func filesInsideTheRootAreDecodedFromTheirPath() throws {
        let (rootPath, _) = try Self.layout()
        let root = try MediaRoot(rootPath)
        for path in ["clip.mp4", "sub/../clip.mp4", "./inner.mp4", rootPath + "/clip.mp4"] {
            let resolved = try root.resolve(path)
            guard case .file(let canonical) = resolved else {
                Issue.record("expected a file input for \(path)")
                continue
            }
            #expect(canonical.hasSuffix("/root/clip.mp4"))
            let tensor = try Media.videoFrames(resolved, options: .init(fps: 5, width: 16, height: 16, maxFrames: 16), limits: .default)
            #expect(tensor.frames == 10)
        }
        let pcm = try Media.audioPCM(try root.resolve("clip.mp4"), options: .init(sampleRate: 16000, channels: 1), limits: .default)
        #expect(abs(pcm.frameCount - 32000) <= 1)
    }

    @Test func escapesAreRefused() throws {
        let (rootPath, outside) = try Self.layout()
        let root = try MediaRoot(rootPath)
        for path in ["../outside/secret.mp4", "sub/../../outside/secret.mp4", outside + "/secret.mp4", "escape.mp4",
                     "outdir/secret.mp4", "/etc/passwd", "../../../../../../etc/passwd", "../missing.mp4"] {
            #expect(reason { try root.resolve(path) } == .pathOutsideRoot, "\(path)")
        }
    }

    @Test func missingFilesAndRoots() throws {
        let (rootPath, _) = try Self.layout()
        let root = try MediaRoot(rootPath)
        #expect(reason { try root.resolve("nope.mp4") } == .fileNotFound)
        #expect(reason { try root.resolve("sub") } == .fileNotFound)
        #expect(reason { try root.resolve("") } == .fileNotFound)
        #expect(reason { try MediaRoot(rootPath + "/does-not-exist") } == .fileNotFound)
        #expect(reason { try Media.probe(.file(rootPath + "/nope.mp4"), limits: .default) } == .fileNotFound)
    }
}
