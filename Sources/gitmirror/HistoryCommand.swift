import ArgumentParser
import Foundation
import MirrorCore

struct HistoryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "Show when each ref of a repository moved, from what to what, and why."
    )

    @OptionGroup var options: ConfigOptions

    @Argument(help: "The repository.")
    var repository: String

    @Option(help: "Only this remote (a secondary, primary, or cache for repairs of the cache).")
    var remote: String?

    @Option(help: "Only this ref: refs/heads/main, or a short name (main, v1.0) as git resolves it.")
    var ref: String?

    @Option(help: "At most this many entries, newest first.")
    var limit: Int = 100

    @Flag(help: "Print the journal as JSON.")
    var json = false

    func run() throws {
        let config = try options.load()
        let mirror = try options.select([repository], from: config).first
        if let remote, let mirror {
            let names = ["primary"] + mirror.secondaries.map(\.name) + ["cache"]
            guard names.contains(remote) else {
                Terminal.error("error: '\(repository)' has no remote '\(remote)'; its remotes are \(names.joined(separator: ", ")) (cache: repairs of the cache)")
                throw ExitStatus.invalidConfig
            }
        }
        guard let store = try StateStore.reading(config) else {
            print("No history yet: '\(repository)' has never been synced.")
            return
        }
        let entries = try Self.names(for: ref).flatMap { try store.refHistory(repository: repository, remote: remote, ref: $0, limit: limit) }
            .sorted { ($0.recordedAt, $0.id ?? 0) > ($1.recordedAt, $1.id ?? 0) }.prefix(limit).map { $0 }
        if json {
            try Terminal.printJSON(entries)
            return
        }
        if entries.isEmpty {
            print("No ref has moved in '\(repository)'\(remote.map { " on \($0)" } ?? "")\(ref.map { " for \($0)" } ?? "").")
            return
        }
        let rows = entries.map { entry in
            [Terminal.time(entry.recordedAt), entry.remote, entry.ref, entry.action.rawValue, "\(entry.oldOid.map { String($0.prefix(10)) } ?? "-") → \(entry.newOid.map { String($0.prefix(10)) } ?? "-")",
             entry.outcome.rawValue, [entry.backupRef.map { "backup: \($0)" }, entry.message].compactMap { $0 }.joined(separator: "; ")]
        }
        print(Terminal.table(["TIME", "REMOTE", "REF", "ACTION", "CHANGE", "OUTCOME", "NOTE"], rows, cutLastColumn: 160))
    }

    /// The full names a ref option stands for: itself when it starts with refs/, else what git's
    /// short names resolve to (refs/NAME, refs/tags/NAME, refs/heads/NAME), every one that was journaled.
    static func names(for ref: String?) -> [String?] {
        guard let ref else { return [nil] }
        if ref.hasPrefix("refs/") { return [ref] }
        return ["refs/\(ref)", "refs/tags/\(ref)", "refs/heads/\(ref)"]
    }
}
