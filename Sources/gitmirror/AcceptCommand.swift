import ArgumentParser
import Foundation
import MirrorCore

struct AcceptCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "accept",
        abstract: "Accept a ref's divergence on a secondary: leave it as it is, no longer counted, until either side moves.",
        discussion: "The ref's last journal entry must be a divergence (see `gitmirror history`)."
    )

    @OptionGroup var options: ConfigOptions

    @Argument(help: "The repository.")
    var repository: String

    @Option(help: "The secondary whose ref diverged.")
    var remote: String

    @Option(help: "The ref: refs/heads/main, or a short name (main, v1.0).")
    var ref: String

    func run() throws {
        let config = try options.load()
        let mirror = try options.select([repository], from: config).first
        guard let mirror, mirror.secondaries.contains(where: { $0.name == remote }) else {
            Terminal.error("error: '\(repository)' has no secondary '\(remote)'; its secondaries are \(mirror?.secondaries.map(\.name).joined(separator: ", ") ?? "none")")
            throw ExitStatus.invalidConfig
        }
        guard let store = try StateStore.forOperator(config) else {
            Terminal.error("error: '\(repository)' has never been synced: there is no divergence to accept")
            throw ExitStatus.outOfStep
        }
        var refusal: (any Error)?
        for name in HistoryCommand.names(for: ref).compactMap({ $0 }) {
            do {
                let accepted = try store.acceptDivergence(repository: repository, remote: remote, ref: name)
                print("accepted: \(name) on \(remote) stays at \(accepted.secondaryOid.prefix(10)) (the primary's is \(accepted.primaryOid.prefix(10))) and no longer counts as diverged, until either side moves")
                return
            } catch {
                if refusal == nil || name.hasPrefix("refs/heads/") { refusal = error }
            }
        }
        Terminal.error("error: \(refusal.map { "\($0)" } ?? "nothing to accept")")
        throw ExitStatus.outOfStep
    }
}
