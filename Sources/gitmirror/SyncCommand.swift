import ArgumentParser
import Foundation
import MirrorCore

struct SyncCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Mirror the primaries to their secondaries once.",
        discussion: "Exits 0 only when every selected secondary holds exactly the planned refs."
    )

    @OptionGroup var options: ConfigOptions

    @OptionGroup var selection: Selection

    @Option(help: ArgumentHelp("How long to wait for another gitmirror's lock on a repository, as 30s, 15m or 1h.", valueName: "duration"))
    var lockWait = DurationArgument(argument: "15m")!

    @OptionGroup var parallel: ParallelOptions

    func run() throws {
        let (config, discovered) = Discovery.expand(try options.load(), record: true)
        let mirrors = try options.select(selection.repositories, from: config)
        var syncOptions = RepositorySync.Options()
        syncOptions.lockWait = lockWait.seconds
        let (reports, interrupted) = try runSession(config, mirrors, syncOptions, parallel)
        if selection.json {
            try Terminal.printJSON(reports)
        } else {
            print(ReportTable.render(reports))
        }
        if interrupted { throw ExitStatus.interrupted }
        if !reports.allSatisfy(\.inStep) || !discovered { throw ExitStatus.outOfStep }
    }
}

/// Runs a sync session with the terminal as its display; a session that cannot start is exit 1.
func runSession(_ config: Config, _ mirrors: [Mirror], _ options: RepositorySync.Options, _ parallel: ParallelOptions) throws
    -> (reports: [RepositoryReport], interrupted: Bool) {
    let session = SyncSession()
    Interruption.stopWorkers(of: session.registry)
    let display = SyncSession.Display(progress: { Terminal.draw($0) }, heartbeat: { Terminal.heartbeat($0) },
                                      finished: { Terminal.clearProgress() }, warning: { Terminal.error("warning: \($0)") })
    do {
        return try session.run(config: config, mirrors: mirrors, options: options, jobs: parallel.jobs(config),
                               heartbeat: parallel.heartbeat, display: display)
    } catch {
        Terminal.error("error: \(error)")
        throw ExitStatus.outOfStep
    }
}
