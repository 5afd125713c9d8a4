import ArgumentParser
import Foundation
import MirrorCore

/// How many repositories one `sync` or `plan` fetches or pushes at once.
struct ParallelOptions: ParsableArguments {
    @Option(name: [.short, .long], help: ArgumentHelp(
        "How many repositories may fetch or push at once.",
        discussion: "Defaults to daemon.max_parallel_repositories (4). Repositories where nothing moved only list their remotes: up to daemon.max_connections (32) listings run at once, at most daemon.max_connections_per_host (16) to one host.",
        valueName: "n"))
    var jobs: Int?

    @Option(help: ArgumentHelp(
        "When output is not a terminal (cron, CI, journald), print a line per remote still working this often (10s, 1m, …).",
        valueName: "duration"))
    var progressEvery = DurationArgument(argument: "10s")!

    var heartbeat: TimeInterval { progressEvery.seconds }

    func validate() throws {
        if let jobs, jobs < 1 { throw ValidationError("--jobs must be at least 1") }
        guard progressEvery.seconds >= 1 else {
            throw ValidationError("--progress-every must be a duration of at least 1s, such as 10s or 1m")
        }
    }

    func jobs(_ config: Config) -> Int { jobs ?? config.daemon.maxParallelRepositories }
}
