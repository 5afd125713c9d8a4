import Foundation
import Logging
import Synchronization
import Testing
@testable import MirrorCore

/// The daemon's bookkeeping of what clients send: deliveries remembered for a window, and a text
/// log that no value can break into lines of its own.
@Suite struct DaemonInputTests {
    final class Clock: Sendable {
        let now = Mutex(Date(timeIntervalSince1970: 1_800_000_000))
        func advance(_ seconds: TimeInterval) { now.withLock { $0 = $0.addingTimeInterval(seconds) } }
    }

    @Test func aDeliveryIsRememberedForItsWindowByIdAndByBody() {
        let clock = Clock()
        let ledger = DeliveryLedger(now: { clock.now.withLock { $0 } })
        let keys = Webhooks.deliveryKeys(source: "github", id: "d-1", body: Array("{}".utf8))
        #expect(ledger.seen(keys) == nil)
        ledger.remember(keys)
        #expect(ledger.seen(keys) == "d-1")
        // The same body under another id (the id is in a header no signature covers) is the same delivery.
        #expect(ledger.seen(Webhooks.deliveryKeys(source: "github", id: "d-2", body: Array("{}".utf8))) != nil)
        #expect(ledger.seen(Webhooks.deliveryKeys(source: "github", id: "d-3", body: Array("{ }".utf8))) == nil)
        // Past the window it is a delivery again.
        clock.advance(DeliveryLedger.window + 1)
        #expect(ledger.seen(keys) == nil)
    }

    @Test func textLogEscapesValuesAndIndentsAMessagesOwnLines() {
        let lines = Mutex<[String]>([])
        let handler = TextLogHandler(label: "gitmirror") { text in lines.withLock { $0.append(text) } }
        var logger = Logger(label: "gitmirror") { _ in handler }
        logger.logLevel = .info
        logger.warning("hook refused\nsecond line", metadata: ["repository": "acme/x\n2026 info gitmirror: FORGED\u{1B}[2J"])
        let text = lines.withLock { $0.joined() }
        #expect(text.contains("repository=acme/x\\n2026 info gitmirror: FORGED\\e[2J"), "\(text)")
        #expect(text.contains("hook refused\n    second line"), "\(text)")
        #expect(text.split(separator: "\n").count == 2)
        #expect(!text.contains("\u{1B}"))
    }

    @Test func aRunWhoseJournalWasNotWrittenIsCountedInAMetric() {
        let metrics = DaemonMetrics(version: "test")
        let primary = RemoteReport(repository: "app", remote: "primary", role: .primary, url: "git://p/app", result: .ok)
        let backup = RemoteReport(repository: "app", remote: "backup", role: .secondary, url: "git://s/app", result: .ok)
        var report = RepositoryReport(repository: "app", runId: 1, primary: primary, secondaries: [backup], duration: 1)
        report.journalFailures = ["backup's outcome and 1 journal row: disk I/O error"]
        #expect(!report.inStep)
        metrics.record(report)
        let text = String(decoding: metrics.render(), as: UTF8.self)
        #expect(text.contains("gitmirror_journal_write_failures_total{repository=\"app\"} 1"), "\(text)")
    }
}
