import Foundation
import Synchronization

/// The hook deliveries the daemon ran, remembered for `window` (at most `capacity` of them), so that a
/// captured signed delivery replayed — or redelivered — is answered without another run. GitHub,
/// GitLab and Gitea sign no timestamp, so a delivery's age cannot be checked; its identity can.
final class DeliveryLedger: Sendable {
    static let window: TimeInterval = 24 * 3600
    static let capacity = 100_000

    private struct Entries {
        var seen: [String: Date] = [:]
        /// In the order they were remembered, for expiry.
        var order: [(key: String, at: Date)] = []
        var head = 0
    }

    private let entries = Mutex(Entries())
    private let now: @Sendable () -> Date

    init(now: @escaping @Sendable () -> Date = Date.init) { self.now = now }

    /// The first of `keys` already remembered within the window, or nil.
    func seen(_ keys: [String]) -> String? {
        let now = now()
        return entries.withLock { entries in
            keys.first { key in entries.seen[key].map { now.timeIntervalSince($0) < Self.window } ?? false }
        }.map { $0.split(separator: " ", maxSplits: 1).last.map(String.init) ?? $0 }
    }

    func remember(_ keys: [String]) {
        let now = now()
        entries.withLock { entries in
            for key in keys {
                entries.seen[key] = now
                entries.order.append((key, now))
            }
            // Expire the oldest: past the window, or past the capacity.
            while entries.head < entries.order.count {
                let oldest = entries.order[entries.head]
                guard now.timeIntervalSince(oldest.at) >= Self.window || entries.order.count - entries.head > Self.capacity else { break }
                if entries.seen[oldest.key] == oldest.at { entries.seen[oldest.key] = nil }
                entries.head += 1
            }
            if entries.head > 1024 && entries.head * 2 > entries.order.count {
                entries.order.removeFirst(entries.head)
                entries.head = 0
            }
        }
    }
}
