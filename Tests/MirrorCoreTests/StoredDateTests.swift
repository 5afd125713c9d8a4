import Foundation
import GRDB
import Testing
import TestSupport
@testable import MirrorCore

/// Dates reach the state database through `StoredDate`, not GRDB's DateFormatter: the text must be
/// the one GRDB writes, so databases written before read the same and compare the same in SQL.
@Suite(.onTestThreads) struct StoredDateTests {
    let samples: [Date] = [
        Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: 951_782_400.5),   // 2000-02-29 00:00:00.5
        Date(timeIntervalSince1970: 946_684_799.999), Date(timeIntervalSince1970: 1_796_349_093.25),
        Date(timeIntervalSince1970: 4_107_542_399.001), Date(timeIntervalSince1970: -86_400 * 365.25 * 30 + 0.75),
        Date(timeIntervalSince1970: 1_709_164_800), Date(timeIntervalSince1970: 4_102_444_800),   // 2024-02-29, 2100-01-01
        Date(timeIntervalSince1970: 946_684_799.9996), Date(timeIntervalSince1970: 1_796_349_093.1228015),   // rounded, not cut
        Date(timeIntervalSinceReferenceDate: 0), Date(),
    ]

    @Test func writesTheTextGRDBWrites() {
        for date in samples {
            #expect(StoredDate.text(date) == String.fromDatabaseValue(date.databaseValue), "\(date.timeIntervalSince1970)")
        }
    }

    @Test func readsWhatItWritesToTheMillisecond() throws {
        for date in samples {
            let read = try #require(StoredDate.date(StoredDate.text(date)))
            #expect(abs(read.timeIntervalSince1970 - date.timeIntervalSince1970) <= 0.0005)
        }
    }

    @Test func readsGRDBsOtherFormsAndRefusesNonsense() throws {
        let forms = ["2026-12-04", "2026-12-04 01:51", "2026-12-04T01:51", "2026-12-04 01:51:33", "2026-12-04T01:51:33.25",
                     "2026-12-04 01:51:33.250000"]
        for text in forms {
            let ours = try #require(StoredDate.date(text), "\(text)")
            let grdb = try #require(Date.fromDatabaseValue(text.databaseValue), "\(text)")
            #expect(abs(ours.timeIntervalSince1970 - grdb.timeIntervalSince1970) < 0.0005, "\(text)")
        }
        #expect(StoredDate.date(DatabaseValue(value: 1_796_349_093)!) == Date(timeIntervalSince1970: 1_796_349_093))
        for nonsense in ["", "2026", "2026-13-01", "2026-12-04 25:00", "2026-12-04 01:51:33.", "2026-12-04x", "yesterday"] {
            #expect(StoredDate.date(nonsense) == nil, "\(nonsense)")
        }
        #expect(StoredDate.date(.null) == nil)
    }

    /// A record's dates and a query's date arguments meet in SQL as text: written by StoredDate,
    /// read back by the record's strategy.
    @Test func recordsRoundTripThroughTheStore() throws {
        let sandbox = try Sandbox("stored-date")
        let store = try StateStore(path: sandbox.path("gitmirror.sqlite").path)
        let before = Date()
        let id = try store.recordRunStarted(repository: "app", trigger: "manual")
        try store.recordRunFinished(id: id, result: .ok, summary: "done")
        let run = try #require(try store.runs(repository: "app").first)
        #expect(run.startedAt.timeIntervalSince1970 >= before.timeIntervalSince1970 - 0.0005)
        #expect(try #require(run.finishedAt) >= run.startedAt)
        #expect(try store.firstRunStart(repository: "app").map { abs($0.timeIntervalSince(run.startedAt)) < 0.001 } == true)
    }
}

/// The sync's path formats numbers without `String(format:)`: the same text as printf's.
@Suite(.onTestThreads) struct NumberTextTests {
    @Test func decimalsAndHexReadAsPrintfWrites() {
        // Durations and sizes: never negative. Exact ties (1.25 to one place) are left out: printf rounds
        // them to even, decimal() away from zero, and either reads right.
        let values: [Double] = [0, 0.04, 0.05, 0.44, 1, 1.26, 9.94, 9.96, 12.345, 59.4, 1023.9, 123_456.789, 2.2501]
        for value in values {
            for places in 0...2 {
                let printf = String(format: "%.\(places)f", value)
                #expect(decimal(value, places: places) == printf, "\(value) \(places)")
            }
        }
        for value: UInt64 in [0, 1, 0xabc, 0xcbf2_9ce4_8422_2325, .max] {
            #expect(hex16(value) == String(format: "%016llx", value))
        }
        #expect(formatDuration(4.26) == "4.3s" && formatDuration(12.4) == "12s" && formatDuration(0.25) == "250ms")
    }
}

/// Log lines, alerts and messages stamp times by hand: the text ISO8601DateFormatter writes.
@Suite(.onTestThreads) struct UTCTimeTests {
    @Test func writesWhatISO8601DateFormatterWrites() {
        let formatter = ISO8601DateFormatter()
        for seconds: TimeInterval in [0, 951_782_400.5, 946_684_799.999, 1_796_349_093.25, 4_102_444_800, -1.5, 1_709_164_800,
                                      Date().timeIntervalSince1970] {
            let date = Date(timeIntervalSince1970: seconds)
            #expect(UTCTime.iso8601(date) == formatter.string(from: date), "\(seconds)")
        }
    }
}
