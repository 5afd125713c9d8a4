import Foundation
import Synchronization
import Logging

/// Alerts on state transitions only: a remote going from ok to failing or diverged,
/// and back. One failure streak gives one alert, however many retries it takes.
public final class Notifier: Sendable {
    /// One place alerts go, with its secrets read.
    public struct Target: Sendable {
        public var url: URL
        public var secret: String?
        public var format: NotifyFormat
    }

    /// Each remote's last known condition, and where alerts go.
    private let known: Mutex<(states: [String: RemoteCondition], targets: [Target])>
    private let http = HTTPClient(timeout: 10)
    private let logger: Logger

    /// `known`: the states SQLite remembers, so a restart does not re-announce them.
    public init(known: [RemoteState], logger: Logger) {
        self.known = Mutex((Dictionary(known.map { ("\($0.repository)/\($0.remote)", $0.state) }, uniquingKeysWith: { a, _ in a }), []))
        self.logger = logger
    }

    public func setTargets(_ targets: [Target]) {
        known.withLock { $0.targets = targets }
    }

    /// The events this report causes (already sent when targets exist).
    @discardableResult
    public func observe(_ report: RepositoryReport) -> [[String: String]] {
        let (events, targets) = known.withLock { known -> ([[String: String]], [Target]) in
            var events: [[String: String]] = []
            for remote in [report.primary] + report.secondaries {
                let key = "\(report.repository)/\(remote.remote)"
                // Interrupted: gitmirror was stopped, and nothing is known about the remote.
                guard let state = remote.result.condition else { continue }
                let previous = known.states[key]
                known.states[key] = state
                // A remote seen for the first time is news only when it is not ok.
                guard previous != state, previous != nil || state != .ok else { continue }
                var event = ["event": state == .ok ? "recovered" : state.rawValue, "repository": report.repository, "remote": remote.remote,
                             "previous_state": previous?.rawValue ?? "never_synced", "state": state.rawValue,
                             "at": UTCTime.iso8601(Date())]
                if let failure = remote.failure {
                    event["error_class"] = failure.errorClass.rawValue
                    event["error"] = failure.message
                }
                events.append(event)
            }
            return (events, known.targets)
        }
        for event in events {
            for target in targets {
                let payload: Any = target.format == .slack ? Self.slackMessage(event) : event
                guard let body = try? JSONSerialization.data(withJSONObject: payload, options: [.sortedKeys]) else { continue }
                var headers = ["Content-Type": "application/json", "User-Agent": "gitmirror"]
                if let secret = target.secret { headers["X-Gitmirror-Signature-256"] = Webhooks.sign(Array(body), secret: secret) }
                let http = self.http, logger = self.logger, signed = headers
                Thread.detachNewThread {
                    do {
                        let response = try http.send("POST", target.url, headers: signed, body: body)
                        if !(200..<300).contains(response.status) {
                            logger.warning("notification refused", metadata: ["url": "\(target.url.host ?? "")", "status": "\(response.status)"])
                        }
                    } catch {
                        logger.warning("notification failed", metadata: ["url": "\(target.url.host ?? "")", "error": "\(error)"])
                    }
                }
            }
        }
        return events
    }

    /// A Slack incoming-webhook message for one event: a one-line `text` (what notifications and
    /// clients without blocks show) and blocks with the error and its class.
    static func slackMessage(_ event: [String: String]) -> [String: Any] {
        let place = "\(event["repository"] ?? "?")/\(event["remote"] ?? "?")"
        let state = event["state"] ?? "?"
        let previous = (event["previous_state"] ?? "?").replacingOccurrences(of: "_", with: " ")
        let icon = state == "ok" ? ":large_green_circle:" : state == "diverged" ? ":large_orange_circle:" : ":red_circle:"
        let headline: String
        switch event["event"] {
        case "recovered": headline = "\(place) recovered: in step again (was \(previous))"
        default: headline = "\(place) is \(state)" + (event["error_class"].map { " (\($0))" } ?? "") + " (was \(previous))"
        }
        // Slack's mrkdwn: &, < and > are escaped; the error is quoted as it is.
        func escaped(_ text: String) -> String {
            text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
        }
        var blocks: [[String: Any]] = [["type": "section", "text": ["type": "mrkdwn", "text": "\(icon) *gitmirror*: \(escaped(headline))"]]]
        if let error = event["error"] {
            blocks.append(["type": "section", "text": ["type": "mrkdwn", "text": "```\(escaped(String(error.prefix(2800))))```"]])
        }
        blocks.append(["type": "context", "elements": [["type": "mrkdwn", "text": "\(escaped(event["at"] ?? "")) · `gitmirror status` · `gitmirror history \(escaped(event["repository"] ?? ""))`"]]])
        return ["text": "gitmirror: \(headline)", "blocks": blocks]
    }
}
