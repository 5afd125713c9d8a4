import ArgumentParser
import Foundation
import MirrorCore

@main
struct Gitmirror: ParsableCommand {
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
    /// command is parsed by it. Only the daemon runs on Swift concurrency's main loop: an `async` main
    /// starts it in every process, and it ends the main thread with `pthread_exit`, whose unwinding
    /// read ~0.9 MiB of the binary's unwind tables in each supervisor and worker of a sync.
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if let status = InternalCommand.status(arguments) { Foundation.exit(status) }
        var command: any ParsableCommand
        do {
            command = try parseAsRoot(arguments)
        } catch {
            exit(withError: error)
        }
        if let asynchronous = command as? any AsyncParsableCommand {
            nonisolated(unsafe) let daemon = asynchronous
            Task.detached {
                var running = daemon
                do { try await running.run() } catch { exit(withError: error) }
                Foundation.exit(0)
            }
            dispatchMain()
        }
        do {
            try command.run()
        } catch {
            exit(withError: error)
        }
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
