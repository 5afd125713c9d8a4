import ArgumentParser
import MirrorCore

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Fetch the primaries and print what a sync would do to every ref, pushing nothing."
    )

    @OptionGroup var options: ConfigOptions

    @OptionGroup var selection: Selection

    @OptionGroup var parallel: ParallelOptions

    func run() throws {
        let (config, discovered) = Discovery.expand(try options.load(), record: false)
        let mirrors = try options.select(selection.repositories, from: config)
        var syncOptions = RepositorySync.Options()
        syncOptions.planOnly = true
        let (reports, interrupted) = try runSession(config, mirrors, syncOptions, parallel)
        if selection.json {
            try Terminal.printJSON(reports)
        } else {
            print(ReportTable.renderPlan(reports))
        }
        if interrupted { throw ExitStatus.interrupted }
        if !discovered || reports.contains(where: { $0.primary.failure != nil || $0.secondaries.contains { $0.failure != nil } }) {
            throw ExitStatus.outOfStep
        }
    }
}
