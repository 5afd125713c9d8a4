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

    @Argument(help: "Repositories to sync (default: all).")
    var repositories: [String] = []

    @Flag(help: "Print the result as JSON.")
    var json = false

    @Option(help: ArgumentHelp("How long to wait for another gitmirror's lock on a repository.", valueName: "duration"))
    var lockWait: String = "15m"

    func validate() throws {
        guard parseDuration(lockWait) != nil else { throw ValidationError("--lock-wait must be a duration such as 30s or 15m") }
    }

    func run() throws {
        let config = try options.load()
        let mirrors = try options.select(repositories, from: config)
        var syncOptions = RepositorySync.Options()
        syncOptions.lockWait = parseDuration(lockWait) ?? 900
        let reports = try Engine.run(config: config, mirrors: mirrors, options: syncOptions)
        if json {
            try Terminal.printJSON(reports)
        } else {
            print(ReportTable.render(reports))
        }
        if !reports.allSatisfy(\.inStep) { throw ExitStatus.outOfStep }
    }
}

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Fetch the primaries and print what a sync would do to every ref, pushing nothing."
    )

    @OptionGroup var options: ConfigOptions

    @Argument(help: "Repositories to plan (default: all).")
    var repositories: [String] = []

    @Flag(help: "Print the plan as JSON.")
    var json = false

    func run() throws {
        let config = try options.load()
        let mirrors = try options.select(repositories, from: config)
        var syncOptions = RepositorySync.Options()
        syncOptions.planOnly = true
        let reports = try Engine.run(config: config, mirrors: mirrors, options: syncOptions)
        if json {
            try Terminal.printJSON(reports)
        } else {
            print(ReportTable.renderPlan(reports))
        }
        if reports.contains(where: { $0.primary.failure != nil || $0.secondaries.contains { $0.failure != nil } }) {
            throw ExitStatus.outOfStep
        }
    }
}

/// Builds the supervisor's parts from a configuration and runs repositories one by one.
enum Engine {
    static func run(config: Config, mirrors: [Mirror], options: RepositorySync.Options) throws -> [RepositoryReport] {
        let store: StateStore
        do {
            store = try StateStore(path: config.databaseURL.path)
        } catch {
            Terminal.error("error: cannot open the state database \(config.databaseURL.path): \(error)")
            throw ExitStatus.outOfStep
        }
        try? FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: config.stateDirectory.path)
        let redactor = Redactor()
        let sync = RepositorySync(
            config: config, store: store, supervisor: WorkerSupervisor(executable: selfExecutable()),
            credentials: CredentialResolver(redactor: redactor), options: options,
            progress: { repository, remote, message in
                Terminal.progress("\(repository)/\(remote): \(redactor.redact(message))")
            })
        var reports: [RepositoryReport] = []
        for mirror in mirrors {
            reports.append(sync.run(mirror))
        }
        Terminal.clearProgress()
        do {
            try store.prune(config.retention)
        } catch {
            Terminal.error("warning: could not prune old runs from the state database (retention): \(error)")
        }
        return reports
    }

    static func selfExecutable() -> URL {
        let link = URL(fileURLWithPath: "/proc/self/exe")
        if let resolved = try? FileManager.default.destinationOfSymbolicLink(atPath: link.path) {
            return URL(fileURLWithPath: resolved)
        }
        return Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
    }
}
