import ArgumentParser
import Dataset
import Foundation

/// `etl pin` and `etl unpin`: one file, since they are one operation with a direction.
struct PinCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pin",
        abstract: "Keep a version from ever being removed by etl gc.",
        discussion: "Pins live in <root>/<dataset>/pins.json, changed atomically under the dataset lock (exits 6 while a run holds it).")

    @Argument(help: "<dataset>@<version>.")
    var target: String

    @OptionGroup var root: RootOption

    func run() throws { try setPin(target: target, root: root.root, pinned: true) }
}

struct UnpinCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unpin",
        abstract: "Let etl gc remove a version again.")

    @Argument(help: "<dataset>@<version>.")
    var target: String

    @OptionGroup var root: RootOption

    func run() throws { try setPin(target: target, root: root.root, pinned: false) }
}

private func setPin(target: String, root: String, pinned: Bool) throws {
    let parsed = try DatasetTarget(target)
    guard let version = parsed.version else { throw ValidationError("name the version: \(parsed.dataset)@<version>") }
    let verb = pinned ? "pin" : "unpin"
    do {
        let store = try DatasetTarget.maintainedStore(root: root, dataset: parsed.dataset)
        _ = try parsed.resolve(root: root)
        let lock = try store.lock(runId: verb)
        defer { withExtendedLifetime(lock) {} }
        var pins = try PinList.load(from: store)
        let changed = pins.set(version, pinned: pinned)
        if changed { try pins.save(to: store) }
        print("\(parsed.dataset)@\(version) \(changed ? "is now" : "was already") \(pinned ? "pinned" : "not pinned")")
    } catch { throw fail(error, context: "\(verb) \(target)") }
}
