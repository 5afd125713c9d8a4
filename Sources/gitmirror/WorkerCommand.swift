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

/// The internal commands, started by gitmirror itself (a worker for every job of a sync, git's credential
/// helper for every request), are read here before ArgumentParser sees them: its parse reflects on every
/// subcommand's options, and each first query of a type's conformance scans the binary's whole table of
/// them (~5 ms of CPU a start, measured with perf, a worker being ~25 ms). Anything unexpected goes on to
/// ArgumentParser, which says what is wrong as for any command.
enum InternalCommand {
    static func status(_ arguments: [String]) -> Int32? {
        switch arguments.first {
        case "__worker":
            var supervisor: Int32?
            var idleExit: Double?
            var rest = arguments.dropFirst()
            while let option = rest.popFirst() {
                guard let value = rest.popFirst() else { return nil }
                switch option {
                case "--supervisor": guard let pid = Int32(value) else { return nil }; supervisor = pid
                case "--idle-exit": guard let seconds = Double(value) else { return nil }; idleExit = seconds
                default: return nil
                }
            }
            return Worker.main(supervisor: supervisor, idleExit: idleExit)
        case "__credential":
            guard arguments.count == 3, let descriptor = Int32(arguments[1]) else { return nil }
            return CredentialRelay.helperMain(descriptor: descriptor, action: arguments[2])
        default:
            return nil
        }
    }
}
