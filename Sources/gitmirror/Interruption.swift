import Foundation
import MirrorCore

/// Ctrl-C or SIGTERM during `sync` or `plan`: the running workers are stopped, every
/// repository still to start is skipped, the runs are recorded as interrupted and the
/// locks released; the command prints what it has and exits 130. A second signal quits at once.
enum Interruption {
    /// Kept for the life of the process: a released source stops handling its signal.
    nonisolated(unsafe) static var sources: [any DispatchSourceSignal] = []

    static func stopWorkers(of registry: WorkerRegistry) {
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                if registry.isStopping { _exit(130) }
                Terminal.clearProgress()
                Terminal.error("interrupted: stopping the running network operations and recording the runs as interrupted (again to quit at once)")
                registry.stopAll()
            }
            source.resume()
            sources.append(source)
        }
    }
}
