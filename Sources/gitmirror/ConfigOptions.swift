import ArgumentParser
import Foundation
import MirrorCore

/// Options every command shares.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The configuration file.", discussion: "Defaults to $GITMIRROR_CONFIG, then ./mirrors.yaml.", valueName: "file"))
    var config: String?

    var configURL: URL {
        let path = config ?? ProcessInfo.processInfo.environment["GITMIRROR_CONFIG"] ?? "mirrors.yaml"
        return URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath)).standardizedFileURL
    }

    /// Loads the configuration or prints every problem and exits 2. `requireEnvironment`: an unset
    /// `*_env` variable is a problem too (validate and the daemon, which would die on it later).
    func load(requireEnvironment: Bool = false) throws -> Config {
        do {
            return try ConfigLoader.forThisMachine(requireEnvironment: requireEnvironment).load(file: configURL)
        } catch {
            Terminal.error(error.description)
            let count = error.problems.count
            Terminal.error("\(count) problem\(count == 1 ? "" : "s") in \(configURL.path); nothing was run")
            throw ExitStatus.invalidConfig
        }
    }

    /// The repositories named on the command line, or all of them.
    func select(_ names: [String], from config: Config) throws -> [Mirror] {
        guard !names.isEmpty else { return config.repositories }
        var selected: [Mirror] = []
        for name in names {
            guard let mirror = config.mirror(named: name) else {
                Terminal.error("error: no repository named '\(name)' in \(configURL.path) (known: \(config.repositories.map(\.name).joined(separator: ", ")))")
                throw ExitStatus.invalidConfig
            }
            selected.append(mirror)
        }
        return selected
    }
}

/// The repositories a command works on, and whether it prints JSON (`sync`, `plan`, `doctor`).
struct Selection: ParsableArguments {
    @Argument(help: "Repositories to work on, by name (default: all).")
    var repositories: [String] = []

    @Flag(help: "Print the result as JSON.")
    var json = false
}
