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

    func run() throws {
        let status = Worker.main()
        if status != 0 { throw ExitCode(status) }
    }
}
