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
        let (reports, discovered) = try runSelected(options, selection, parallel, record: false, table: ReportTable.renderPlan) {
            $0.planOnly = true
        }
        // Exit 0 only when a sync now would leave every secondary in step: a failure, a ref that would
        // be kept diverged or deletions over max_deletes are exit 1, as they would be for sync.
        if !discovered || !reports.allSatisfy(\.inStep) { throw ExitStatus.outOfStep }
    }
}
