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

/// git's credential helper while a worker's git pushes: relays git's question to that worker
/// over the descriptor it inherited, and the worker's answer back to git; not for people.
struct CredentialHelperCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "__credential",
        abstract: "Relay a git credential request to the worker that started git (internal).",
        shouldDisplay: false
    )

    @Argument(help: "The descriptor the worker's socket is inherited at.")
    var descriptor: Int32

    @Argument(help: "git's action: get, store or erase.")
    var action: String

    func run() throws {
        let status = CredentialRelay.helperMain(descriptor: descriptor, action: action)
        if status != 0 { throw ExitCode(status) }
    }
}
