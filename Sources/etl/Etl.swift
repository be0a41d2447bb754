import ArgumentParser

@main
struct Etl: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "etl", abstract: "Turns user feedback in PostgreSQL into versioned MDS training datasets.")
}
