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
        if !discovered || reports.contains(where: { $0.primary.failure != nil || $0.secondaries.contains { $0.failure != nil } }) {
            throw ExitStatus.outOfStep
        }
    }
}
