import ArgumentParser
import Foundation
import MirrorCore

struct DiscoverCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "discover",
        abstract: "List the discover: sources and print what would be mirrored, and from where; changes nothing.",
        discussion: "Exits 1 when a source cannot be listed, or when a listed repository cannot be mirrored (a name collision, an invalid address)."
    )

    @OptionGroup var options: ConfigOptions

    @Flag(help: "Print the result as JSON.")
    var json = false

    func run() throws {
        let config = try options.load()
        guard !config.discover.isEmpty else {
            Terminal.error("error: \(options.configURL.path) has no discover: entries; add one (see the README, \"Mirror an organisation\")")
            throw ExitStatus.invalidConfig
        }
        let outcome = Discovery.run(config, record: false)
        if json {
            try Terminal.printJSON(DiscoveryJSON(outcome, config: config))
        } else {
            print(Discovery.render(outcome, config: config))
        }
        if !outcome.failures.isEmpty || !outcome.problems.isEmpty { throw ExitStatus.outOfStep }
    }
}

/// The discovery step of `sync`, `plan` and `discover`, with the terminal as its display.
enum Discovery {
    /// Lists the sources (recording what they hold unless `record` is false) and expands the configuration.
    static func run(_ config: Config, record: Bool) -> Discoverer.Outcome { Discoverer.listing(config, record: record) }

    /// For sync and plan: the expanded configuration; what went wrong is printed to stderr.
    static func expand(_ config: Config, record: Bool) -> (config: Config, complete: Bool) {
        guard !config.discover.isEmpty else { return (config, true) }
        let outcome = run(config, record: record)
        for source in config.discover {
            let listed = outcome.entries.filter { $0.source == source.id }
            let mirrored = listed.filter { $0.status == .mirrored }.count
            let failure = outcome.failures.first { $0.source == source.id }?.failure
            let detail = failure.map { "could not be listed (\($0.description)); \(listed.isEmpty ? "nothing from it is synced" : "its last listing is used")" }
                ?? "\(listed.count) listed, \(mirrored) mirrored"
            Terminal.error("discover \(source.id): \(detail)")
        }
        for entry in outcome.problems {
            Terminal.error("discover \(entry.source) \(Printable.escaped(entry.repository.path)): \(entry.status.word), not mirrored: \(Printable.escaped(entry.status.reason ?? ""))")
        }
        for gone in outcome.gone {
            Terminal.error("discover \(gone.source) \(Printable.escaped(gone.path)): no longer listed (since \(Terminal.time(gone.since))); not synced any more, and nothing was deleted")
        }
        return (outcome.config, outcome.failures.isEmpty && outcome.problems.isEmpty)
    }

    static func render(_ outcome: Discoverer.Outcome, config: Config) -> String {
        var rows: [[String]] = []
        for entry in outcome.entries {
            let target = entry.mirror.map { "\($0.primary.url) → \($0.secondaries.map { "\($0.name): \($0.url)" }.joined(separator: ", "))" }
                ?? entry.status.reason ?? ""
            rows.append([entry.name, entry.source, entry.repository.path, entry.status.word, target])
        }
        for gone in outcome.gone {
            rows.append(["", gone.source, gone.path, "gone", "no longer listed since \(Terminal.time(gone.since)); unscheduled, nothing deleted"])
        }
        var text = Terminal.table(["NAME", "SOURCE", "PATH", "STATUS", "MIRRORED FROM → TO, OR WHY NOT"], rows)
        for failure in outcome.failures {
            text += "\n\n\(failure.source): \(Printable.escaped(failure.failure.description))"
        }
        let mirrored = outcome.entries.filter { $0.status == .mirrored }.count
        text += "\n\n\(mirrored) repositor\(mirrored == 1 ? "y" : "ies") discovered to mirror from \(config.discover.count) source\(config.discover.count == 1 ? "" : "s")"
        text += outcome.problems.isEmpty ? "." : "; \(outcome.problems.count) cannot be mirrored (see STATUS)."
        return text
    }
}

/// `gitmirror discover --json`
struct DiscoveryJSON: Encodable {
    struct Source: Encodable {
        var source: String
        var listed: Int
        var error: SyncFailure?
    }
    struct Remote: Encodable {
        var name: String
        var url: String
    }
    struct Entry: Encodable {
        var name: String
        var source: String
        var path: String
        var status: String
        var reason: String?
        var primary: String?
        var secondaries: [Remote]?
        var defaultBranch: String?
        var visibility: String
        var archived: Bool
        var fork: Bool
    }
    struct Gone: Encodable {
        var source: String
        var path: String
        var since: Date
    }
    var sources: [Source]
    var repositories: [Entry]
    var gone: [Gone]

    init(_ outcome: Discoverer.Outcome, config: Config) {
        sources = config.discover.map { source in
            Source(source: source.id, listed: outcome.entries.filter { $0.source == source.id }.count,
                   error: outcome.failures.first { $0.source == source.id }?.failure)
        }
        repositories = outcome.entries.map { entry in
            Entry(name: entry.name, source: entry.source, path: entry.repository.path, status: entry.status.word, reason: entry.status.reason,
                  primary: entry.mirror?.primary.url.display, secondaries: entry.mirror?.secondaries.map { Remote(name: $0.name, url: $0.url.display) },
                  defaultBranch: entry.repository.defaultBranch, visibility: entry.repository.visibility, archived: entry.repository.archived,
                  fork: entry.repository.fork)
        }
        gone = outcome.gone.map { Gone(source: $0.source, path: $0.path, since: $0.since) }
    }
}
