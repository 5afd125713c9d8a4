import ArgumentParser
import Foundation
import MirrorCore

/// A duration on the command line, written as in mirrors.yaml: `90s`, `15m`, `1h`.
/// Parsed once, by ArgumentParser; its default shows in `--help` as written.
struct DurationArgument: ExpressibleByArgument, Sendable {
    let seconds: TimeInterval
    let text: String

    init?(argument: String) {
        guard let seconds = parseDuration(argument), seconds >= 0, argument.rangeOfCharacter(from: .letters) != nil else { return nil }
        self.seconds = seconds
        self.text = argument
    }

    var defaultValueDescription: String { text }
}

/// `--log-format`: text for people, one JSON object per line for log collectors.
enum LogFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
    case text, json
}

extension Shard {
    /// `--shard I/N` or `auto/N`, parsed once (auto/N reads the host name then); a bad value is a usage error naming why.
    @Sendable static func argument(_ text: String) throws -> Shard {
        do {
            return try Shard.parse(text, hostName: ProcessInfo.processInfo.environment["HOSTNAME"] ?? ProcessInfo.processInfo.hostName)
        } catch {
            throw ValidationError(error.description)
        }
    }
}
