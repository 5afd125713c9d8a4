import Foundation
import Synchronization

/// At most N network operations at once against one host, so that a fleet of
/// mirrors never floods one server.
public final class HostLimiter: Sendable {
    private let slots = Mutex<[String: DispatchSemaphore]>([:])
    public let limit: Int

    public init(limit: Int) { self.limit = limit }

    public func withSlot<T>(_ host: String, _ body: () throws -> T) rethrows -> T {
        let semaphore = slots.withLock { slots in
            if let existing = slots[host] { return existing }
            let created = DispatchSemaphore(value: limit)
            slots[host] = created
            return created
        }
        semaphore.wait()
        defer { semaphore.signal() }
        return try body()
    }
}
