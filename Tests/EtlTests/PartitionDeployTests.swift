import Foundation
import Testing
import Yams

/// What can be checked of the deployment here, where no container engine or cluster runs: the Kubernetes manifests
/// of partitioned runs parse and use the image and flags etl has, and the Containerfile's runtime stage installs
/// every library the binary links, from packages that exist (installed on this machine).
@Suite struct PartitionDeployTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let manifests = root.appendingPathComponent("deploy/kubernetes/partitioned")

    static func documents() throws -> [(file: String, object: [String: Any])] {
        var all: [(String, [String: Any])] = []
        for file in try FileManager.default.contentsOfDirectory(atPath: manifests.path).sorted() where file.hasSuffix(".yaml") {
            let text = try String(contentsOf: manifests.appendingPathComponent(file), encoding: .utf8)
            for document in try Yams.load_all(yaml: text) {
                all.append((file, try #require(document as? [String: Any], "\(file): a document that is not a mapping")))
            }
        }
        return all
    }

    static func value(_ object: Any?, _ path: String...) -> Any? {
        path.reduce(object) { ($0 as? [String: Any])?[$1] }
    }

    /// Every container of a Job or CronJob, init containers included, with the file it is in.
    static func containers(_ documents: [(file: String, object: [String: Any])]) -> [(file: String, container: [String: Any])] {
        documents.flatMap { document -> [(String, [String: Any])] in
            let pod = value(document.object, "spec", "template", "spec") ?? value(document.object, "spec", "jobTemplate", "spec", "template", "spec")
            let list = ((value(pod, "initContainers") as? [Any]) ?? []) + ((value(pod, "containers") as? [Any]) ?? [])
            return list.compactMap { $0 as? [String: Any] }.map { (document.file, $0) }
        }
    }

    static func partitionCount(in arguments: [String], after flag: String) -> Int? {
        guard let at = arguments.firstIndex(of: flag), at + 1 < arguments.count else { return nil }
        return Int(arguments[at + 1].split(separator: "/").last.map(String.init) ?? "")
    }

    @Test func theManifestsChainAPlanAnIndexedJobAndACommit() throws {
        let documents = try Self.documents()
        let kinds = documents.map { $0.object["kind"] as? String ?? "?" }
        #expect(kinds.filter { $0 == "Job" }.count == 3 && kinds.contains("CronJob"), "\(kinds)")
        #expect(Set(kinds).isSuperset(of: ["ServiceAccount", "Role", "RoleBinding", "PersistentVolumeClaim"]), "\(kinds)")

        let indexed = try #require(documents.first { Self.value($0.object, "spec", "completionMode") as? String == "Indexed" })
        #expect(indexed.file == "partitions-job.yaml")
        let spec = try #require(indexed.object["spec"] as? [String: Any])
        #expect((spec["backoffLimitPerIndex"] as? Int ?? 0) > 0, "per-index retries")
        #expect((spec["parallelism"] as? Int ?? 0) > 0)
        #expect(Self.value(spec, "template", "spec", "restartPolicy") as? String == "Never", "backoffLimitPerIndex needs restartPolicy Never")
        let completions = try #require(spec["completions"] as? Int)

        // Every place that names the partition count names the same one.
        var counts: [String: Int] = [:]
        for (file, container) in Self.containers(documents) {
            let arguments = (container["args"] as? [Any])?.compactMap { $0 as? String } ?? []
            if let n = Self.partitionCount(in: arguments, after: "--partitions") { counts["\(file) plan"] = n }
            if let n = Self.partitionCount(in: arguments, after: "--partition") { counts["\(file) run"] = n }
        }
        #expect(counts.count == 3 && counts.values.allSatisfy { $0 == completions }, "\(counts) vs completions \(completions)")
        #expect(kinds.contains("CronJob") && documents.contains { Self.value($0.object, "spec", "jobTemplate", "spec", "template", "spec", "initContainers") != nil },
                "the CronJob plans in an init step")
    }

    @Test func everyEtlContainerRunsTheImageAndFlagsEtlHas() throws {
        let version = try runProcess(etlBinary, ["--version"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let containerfile = try String(contentsOf: Self.root.appendingPathComponent("Containerfile"), encoding: .utf8)
        let secrets = try String(contentsOf: Self.root.appendingPathComponent("deploy/kubernetes/secret.yaml"), encoding: .utf8)
        var helps: [String: String] = [:]
        var seen = Set<String>()
        for (file, container) in Self.containers(try Self.documents()) {
            guard let image = container["image"] as? String, image.hasPrefix("registry.example.com/etl:") else { continue }
            #expect(image == "registry.example.com/etl:\(version)", "\(file): \(image) is not etl \(version)")
            #expect(containerfile.contains(image), "the Containerfile says how to build \(image)")
            let arguments = try #require((container["args"] as? [Any])?.compactMap { $0 as? String }, "\(file): args")
            let subcommand = try #require(arguments.first)
            seen.insert(subcommand)
            if helps[subcommand] == nil {
                let help = try runProcess(etlBinary, [subcommand, "--help"])
                #expect(help.status == 0, "\(file): etl has no subcommand \(subcommand)")
                helps[subcommand] = help.stdout
            }
            for flag in arguments where flag.hasPrefix("--") {
                #expect(helps[subcommand]!.contains(flag), "\(file): etl \(subcommand) has no \(flag)")
            }
            #expect(FileManager.default.fileExists(atPath: Self.root.appendingPathComponent("pipelines/\(arguments[1]).yaml").path),
                    "\(file): no pipeline \(arguments[1])")
            // $(VAR) in args is expanded by Kubernetes only from variables the container declares.
            let declared = Set(((container["env"] as? [Any]) ?? []).compactMap { ($0 as? [String: Any])?["name"] as? String })
            for argument in arguments {
                var rest = Substring(argument)
                while let open = rest.range(of: "$(") {
                    let close = try #require(rest[open.upperBound...].firstIndex(of: ")"))
                    let name = String(rest[open.upperBound..<close])
                    #expect(declared.contains(name), "\(file): \(argument) uses $(\(name)), which the container does not declare")
                    rest = rest[close...]
                }
            }
            for reference in ((container["env"] as? [Any]) ?? []).compactMap({ Self.value($0, "valueFrom", "secretKeyRef", "name") as? String }) {
                #expect(secrets.contains("name: \(reference)"), "\(file): Secret \(reference) is not in deploy/kubernetes/secret.yaml")
            }
            let objectStore = ((container["envFrom"] as? [Any]) ?? []).compactMap { Self.value($0, "secretRef", "name") as? String }
            #expect(objectStore == ["etl-object-store"], "\(file): the object store credentials")
        }
        #expect(seen == ["plan", "run", "commit"], "\(seen)")
    }

    /// The packages of the Containerfile's runtime stage: one per line after the `# RUNTIME PACKAGES` marker.
    static func runtimePackages() throws -> [String] {
        let text = try String(contentsOf: root.appendingPathComponent("Containerfile"), encoding: .utf8)
        let lines = text.components(separatedBy: "\n").drop { !$0.contains("# RUNTIME PACKAGES") }
        return lines.compactMap { line in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasSuffix(" \\") else { return nil }
            let word = String(trimmed.dropLast(2))
            return word.range(of: "^[a-z0-9][a-z0-9.+-]+$", options: .regularExpression) != nil ? word : nil
        }
    }

    static func owningPackage(_ path: String) throws -> String? {
        let real = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        for candidate in Set([path, real, real.replacingOccurrences(of: "^/lib/", with: "/usr/lib/", options: .regularExpression)]) {
            let search = try runProcess("/usr/bin/dpkg", ["-S", candidate])
            if search.status == 0, let owner = search.stdout.split(separator: ":").first { return String(owner) }
        }
        return nil
    }

    @Test func theRuntimeImagesPackagesAreEnoughForTheBinary() throws {
        let packages = try Self.runtimePackages()
        #expect(packages.contains("libpq5") && packages.contains("libzstd1") && packages.contains { $0.hasPrefix("libavcodec") }, "\(packages)")
        for package in packages {
            let status = try runProcess("/usr/bin/dpkg-query", ["-W", "-f=${Status}", package])
            #expect(status.stdout == "install ok installed", "\(package) is not an installed Debian package here: \(status.output)")
        }
        let containerfile = try String(contentsOf: Self.root.appendingPathComponent("Containerfile"), encoding: .utf8)
        #expect(containerfile.contains("--static-swift-stdlib"), "Swift's runtime is linked into the binary")
        let user = containerfile.components(separatedBy: "\n").last { $0.hasPrefix("USER ") }
        #expect(user != nil && !(user!.contains("root") || user!.hasPrefix("USER 0")), "a non-root user: \(user ?? "none")")

        let ldd = try runProcess("/usr/bin/ldd", [etlBinary])
        #expect(ldd.status == 0 && !ldd.stdout.contains("not found"), "\(ldd.output)")
        var resolved: [String: String] = [:]
        for line in ldd.stdout.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count >= 3, parts[1] == "=>" { resolved[String(parts[0]).trimmingCharacters(in: .whitespaces)] = String(parts[2]) }
        }
        let needed = try runProcess("/usr/bin/readelf", ["-d", etlBinary]).stdout.split(separator: "\n").compactMap { line -> String? in
            guard line.contains("(NEEDED)"), let open = line.firstIndex(of: "["), let close = line.lastIndex(of: "]") else { return nil }
            return String(line[line.index(after: open)..<close])
        }
        #expect(!needed.isEmpty)
        // The base image has libc6 and libgcc-s1 (required packages of Debian); --static-swift-stdlib links Swift's own.
        let base: Set<String> = ["libc6", "libgcc-s1"]
        let swiftRuntime = ["libswift", "libFoundation", "libdispatch", "libBlocksRuntime", "lib_Foundation"]
        for library in needed {
            let path = try #require(resolved[library], "ldd does not resolve \(library)")
            guard let owner = try Self.owningPackage(path) else {
                #expect(swiftRuntime.contains { library.hasPrefix($0) }, "\(library) (\(path)) belongs to no Debian package and is not Swift's runtime")
                continue
            }
            #expect(packages.contains(owner) || base.contains(owner), "\(library) comes from \(owner), which the runtime stage does not install")
        }
    }
}
