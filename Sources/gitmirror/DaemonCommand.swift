import ArgumentParser
import Foundation
import Logging
import MirrorCore

struct DaemonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon",
        abstract: "Keep the repositories mirrored on a schedule and on webhooks, serving health and metrics.",
        discussion: """
            Serves GET /healthz, /readyz and /metrics, and POST /hooks/github, /hooks/gitlab, /hooks/gitea, \
            /hooks/sync/{repository} and /reload. SIGHUP reloads mirrors.yaml (an invalid file is refused and \
            the running configuration stays); SIGTERM lets running pushes finish within daemon.shutdown_grace.
            """
    )

    @OptionGroup var options: ConfigOptions

    @Option(help: ArgumentHelp("Serve HTTP here (default: daemon.listen, then 127.0.0.1:9150).", valueName: "address:port"))
    var listen: String?

    @Option(help: ArgumentHelp("Own only the repositories whose name hashes to shard I of N (default: 0/1, all of them).",
                               discussion: "auto/N takes I from the host name's trailing number, as a StatefulSet's pod-2 gives 2.",
                               valueName: "I/N"),
            transform: Shard.argument)
    var shard = Shard(index: 0, count: 1)

    @Option(help: ArgumentHelp("Log format.", valueName: "format"))
    var logFormat: LogFormat = .text

    func validate() throws {
        if let listen, let problem = listenAddressProblem(listen) { throw ValidationError("--\(problem)") }
    }

    func run() async throws {
        let json = logFormat == .json
        LoggingSystem.bootstrap { label in
            if json { return JSONLogHandler(label: label) }
            return TextLogHandler(label: label)
        }
        let logger = Logger(label: "gitmirror")
        let config = try options.load(requireEnvironment: true)   // every problem, with line and column, and exit 2
        let group: ServiceGroupRunner
        do {
            group = ServiceGroupRunner(try await makeDaemon(configFile: options.configURL, listen: listen, shard: shard,
                                                      executable: ChildProcess.ownExecutable, version: Gitmirror.version,
                                                      logger: logger))
        } catch {
            Terminal.error("error: \(error)")
            throw ExitStatus.invalidConfig
        }
        do {
            try await group.run()
        } catch {
            // NIO's bind error names neither the address nor what to do.
            let address = listen ?? config.daemon.listen
            let text = "\(error)"
            if text.contains("Address already in use") {
                logger.critical("cannot listen on \(address): the address is already in use (another gitmirror daemon, or another program, holds it); stop it, or choose another address with --listen or daemon.listen")
            } else if text.contains("Permission denied") || text.contains("Cannot assign requested address") || text.contains("errno: 99") {
                logger.critical("cannot listen on \(address): \(text.contains("Permission denied") ? "permission denied (ports below 1024 need privileges)" : "this machine has no such address"); choose another with --listen or daemon.listen")
            } else {
                throw error
            }
            throw ExitCode(1)
        }
    }
}
