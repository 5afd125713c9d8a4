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
        let (reports, discovered) = try runSelected(options, selection, parallel, record: true, table: ReportTable.render) {
            $0.lockWait = lockWait.seconds
        }
        if !reports.allSatisfy(\.inStep) || !discovered { throw ExitStatus.outOfStep }
    }
}

/// `sync` and `plan`: loads the configuration (recording what discovery listed, or not), runs the
/// selected repositories and prints their reports as JSON or as `table` renders them. Returns the
/// reports and whether every discovery source listed; an interrupted session is exit 130.
func runSelected(_ options: ConfigOptions, _ selection: Selection, _ parallel: ParallelOptions, record: Bool,
                 table: ([RepositoryReport]) -> String, adjust: (inout RepositorySync.Options) -> Void) throws
    -> (reports: [RepositoryReport], discovered: Bool) {
    let (config, discovered) = Discovery.expand(try options.load(), record: record)
    let mirrors = try options.select(selection.repositories, from: config)
    var syncOptions = RepositorySync.Options()
    adjust(&syncOptions)
    let (reports, interrupted) = try runSession(config, mirrors, syncOptions, parallel)
    if selection.json {
        try Terminal.printJSON(reports)
    } else {
        print(table(reports))
    }
    if interrupted { throw ExitStatus.interrupted }
    return (reports, discovered)
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
