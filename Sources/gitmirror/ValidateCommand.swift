import Foundation
import ArgumentParser
import MirrorCore

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check mirrors.yaml and print every problem with its line and column."
    )

    @OptionGroup var options: ConfigOptions

    func run() throws {
        let config = try options.load(requireEnvironment: true)
        let remotes = config.repositories.reduce(0) { $0 + 1 + $1.secondaries.count }
        let sources = config.discover.isEmpty ? "" : ", \(config.discover.count) discover source\(config.discover.count == 1 ? "" : "s") (templates checked; run gitmirror discover to list them)"
        print("\(options.configURL.path): ok (\(config.repositories.count) repositor\(config.repositories.count == 1 ? "y" : "ies"), \(remotes) remotes\(sources), state in \(config.stateDirectory.path))")
    }
}
