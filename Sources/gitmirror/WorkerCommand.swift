import ArgumentParser
import Foundation
import MirrorCore

/// The worker side of the supervisor/worker split; not for people.
struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "__worker",
        abstract: "Run one network operation read from stdin (internal).",
        shouldDisplay: false
    )

    @Option(help: "The pid of the process that started this worker; the worker exits when it is gone.")
    var supervisor: Int32?

    @Option(help: "Exit after this many seconds without a job.")
    var idleExit: Double?

    func run() throws {
        let status = Worker.main(supervisor: supervisor, idleExit: idleExit)
        if status != 0 { throw ExitCode(status) }
    }
}
