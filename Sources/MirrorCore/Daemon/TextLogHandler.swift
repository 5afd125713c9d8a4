import Foundation
import Logging
#if canImport(CDispatch)
import CDispatch
#endif

/// One line per event on stderr, for a person or journald: `TIME LEVEL LABEL: key=value … message`.
/// Values can come from outside (a hook's repository name, a server's message): every control
/// character in them is escaped, and a message's own further lines are indented, so nothing a
/// client sends can start a line of its own that looks like the daemon's.
public struct TextLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String
    let write: @Sendable (String) -> Void

    public init(label: String, write: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }) {
        self.label = label
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
        let fields = merged.sorted { $0.key < $1.key }.map { "\(Printable.escaped($0.key))=\(Printable.escaped("\($0.value)"))" }
        let message = event.message.description.split(separator: "\n", omittingEmptySubsequences: false)
            .map { Printable.escaped(String($0)) }.joined(separator: "\n    ")
        let stamp = UTCTime.iso8601(Date())
        write("\(stamp) \(event.level) \(label):\(fields.isEmpty ? "" : " " + fields.joined(separator: " ")) \(message)\n")
    }
}
