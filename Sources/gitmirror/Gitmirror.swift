import ArgumentParser
import Foundation
import MirrorCore

@main
struct Gitmirror: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gitmirror",
        abstract: "Mirror git repositories from one primary to many secondaries, safely.",
        discussion: """
            Reads mirrors.yaml (--config, $GITMIRROR_CONFIG, or ./mirrors.yaml). Diverged refs on a \
            secondary are kept and reported unless the secondary says force: true; deletions need \
            prune: true and never exceed max_deletes. State is kept in SQLite under state_dir.

            Exit codes: 0 every secondary in step; 1 a remote failed or a ref was left out of step; \
            2 the configuration is invalid; 64 a usage error; 130 interrupted.
            """,
        version: "gitmirror \(Gitmirror.version)",
        subcommands: [ValidateCommand.self, DoctorCommand.self, DiscoverCommand.self, DaemonCommand.self, PlanCommand.self, SyncCommand.self, StatusCommand.self, HistoryCommand.self, AcceptCommand.self, WorkerCommand.self, CredentialHelperCommand.self]
    )
}

extension Gitmirror {
    /// A worker or git's credential helper starts without ArgumentParser (InternalCommand); every other
    /// command is parsed by it.
    static func main() async {
        if let status = InternalCommand.status(Array(CommandLine.arguments.dropFirst())) { Foundation.exit(status) }
        await main(nil)
    }

    /// The release, alone (`gitmirror_build_info{version=…}`).
    static let version = "0.1.0"
}

/// Exit codes, as the README promises them.
enum ExitStatus {
    static let outOfStep = ExitCode(1)
    static let invalidConfig = ExitCode(2)
    /// Stopped by SIGINT or SIGTERM (128 + SIGINT, as shells report Ctrl-C).
    static let interrupted = ExitCode(130)
}
