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

    @Option(help: "Only this remote.")
    var remote: String?

    @Option(help: "Only this ref (for example refs/heads/main).")
    var ref: String?

    @Option(help: "At most this many entries, newest first.")
    var limit: Int = 100

    @Flag(help: "Print the journal as JSON.")
    var json = false

    func run() throws {
        let config = try options.load()
        _ = try options.select([repository], from: config)
        guard FileManager.default.fileExists(atPath: config.databaseURL.path) else {
            print("No history yet: '\(repository)' has never been synced.")
            return
        }
        let store = try StateStore(path: config.databaseURL.path, readOnly: true)
        let entries = try store.refHistory(repository: repository, remote: remote, ref: ref, limit: limit)
        if json {
            try Terminal.printJSON(entries)
            return
        }
        if entries.isEmpty {
            print("No ref has moved in '\(repository)'\(remote.map { " on \($0)" } ?? "")\(ref.map { " for \($0)" } ?? "").")
            return
        }
        let rows = entries.map { entry in
            [Terminal.time(entry.recordedAt), entry.remote, entry.ref, entry.action, "\(entry.oldOid.map { String($0.prefix(10)) } ?? "-") → \(entry.newOid.map { String($0.prefix(10)) } ?? "-")",
             entry.outcome, [entry.backupRef.map { "backup: \($0)" }, entry.message].compactMap { $0 }.joined(separator: "; ")]
        }
        print(Terminal.table(["TIME", "REMOTE", "REF", "ACTION", "CHANGE", "OUTCOME", "NOTE"], rows))
    }
}
