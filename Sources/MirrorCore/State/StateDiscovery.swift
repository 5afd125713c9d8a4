import Foundation
import GRDB

/// What discovery found, source by source.
extension StateStore {
    /// What changed in a source's listing.
    public struct ListingChange: Sendable, Equatable {
        public var appeared: [String] = []
        public var disappeared: [String] = []
        public var returned: [String] = []
    }

    /// Records a successful listing of a source: every repository in it is present, every one that was
    /// present and is not in it is gone from now on (its row stays, as do its cache and history).
    @discardableResult
    public func recordListing(source: String, repositories: [DiscoveredRepository], at now: Date = Date()) throws -> ListingChange {
        try write { db in
            var change = ListingChange()
            let known = try DiscoveredRecord.filter(DiscoveredRecord.Columns.source == source).fetchAll(db)
            let byPath = Dictionary(known.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            var listed: Set<String> = []
            for repository in repositories {
                listed.insert(repository.path)
                let json = String(decoding: (try? encoder.encode(repository)) ?? Data(), as: UTF8.self)
                if var row = byPath[repository.path] {
                    if row.goneSince != nil { change.returned.append(repository.path) }
                    row.listing = json
                    row.lastSeen = now
                    row.goneSince = nil
                    try row.save(db)
                } else {
                    change.appeared.append(repository.path)
                    try DiscoveredRecord(source: source, path: repository.path, listing: json, firstSeen: now, lastSeen: now, goneSince: nil).insert(db)
                }
            }
            for var row in known where !listed.contains(row.path) && row.goneSince == nil {
                row.goneSince = now
                try row.save(db)
                change.disappeared.append(row.path)
            }
            try DiscoverySourceState(source: source, lastAttempt: now, lastSuccess: now, lastErrorClass: nil, lastError: nil, count: repositories.count).save(db)
            return change
        }
    }

    /// Records a listing that failed: the last good one stays in force.
    public func recordListingFailure(source: String, failure: SyncFailure, at now: Date = Date()) throws {
        try write { db in
            var row = try DiscoverySourceState.fetchOne(db, key: source)
                ?? DiscoverySourceState(source: source, lastAttempt: now, lastSuccess: nil, lastErrorClass: nil, lastError: nil, count: 0)
            row.lastAttempt = now
            row.lastErrorClass = failure.errorClass
            row.lastError = failure.message
            try row.save(db)
        }
    }

    /// Every repository any source listed, present or gone.
    public func discovered() throws -> [DiscoveredRecord] {
        try pool.read { db in try DiscoveredRecord.order(DiscoveredRecord.Columns.source, DiscoveredRecord.Columns.path).fetchAll(db) }
    }

    /// The present repositories of each source, as last listed.
    public func listings() throws -> [String: [DiscoveredRepository]] {
        var result: [String: [DiscoveredRepository]] = [:]
        for row in try discovered() where row.goneSince == nil {
            if let repository = row.repository { result[row.source, default: []].append(repository) }
        }
        return result
    }

    public func discoverySources() throws -> [DiscoverySourceState] {
        try pool.read { db in try DiscoverySourceState.fetchAll(db) }
    }

}
