import Foundation
import Synchronization
import Git

/// A damaged cache: a failure that suspects the cache's own objects is confirmed by reading every one of
/// them in a worker, then the cache is moved aside and rebuilt from the primary, its backup refs carried over.
extension SyncContext {
    /// Whether a failure may come from the cache's own objects rather than from a server.
    static func suspectsCache(_ failure: SyncFailure) -> Bool { failure.cacheDamage != nil }

    /// Reads every object of the cache in a worker; returns what is damaged, or nil when all is readable.
    func damage(in mirror: Mirror) throws -> String? {
        let path = cachePath(mirror)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let last = Mutex<String?>(nil)
        let limits = Workers.Limits(timeout: mirror.primary.policy.timeout, stall: min(mirror.primary.policy.stallTimeout, Self.cacheStall / 2))
        progress(mirror.name, "primary", "verifying every object of the cache")
        let result = Result { () throws(SyncFailure) in
            try workers.run(VerifyJob(cache: path, announceFrom: 0), for: mirror.name, limits: limits) { note in
                if case .reading(let object) = note { last.withLock { $0 = object } }
            }
        }
        switch result {
        case .success(let verified):
            return verified.damage
        case .failure(let failure) where failure.errorClass == .timeout && !workers.isStopping:
            let object = last.withLock { $0 }
            return object.map { "object \($0) cannot be read: reading it never finishes (a truncated or corrupt object)" }
                ?? "reading its objects never finishes (\(failure.message))"
        case .failure(let failure) where workers.isStopping:
            throw failure
        case .failure(let failure):
            return failure.message
        }
    }

    /// Confirms a suspicion of damage; when the cache is damaged, moves it to `state_dir/quarantine/`,
    /// starts an empty one (the caller fetches the primary into it before any secondary is touched)
    /// and carries the backup refs over where their objects can still be read. Returns a note for the
    /// run's summary, or nil when the cache turned out to be intact.
    func repairCache(_ mirror: Mirror, runId: Int64?, suspicion: SyncFailure, held: HeldOutcomes? = nil) throws -> String? {
        // An object the cache lacks is damage too: everything in it came from the primary.
        let missing = suspicion.cacheDamage.flatMap { $0.objectMissing ? $0.detail : nil }
        guard let damage = try damage(in: mirror) ?? missing else { return nil }
        let cache = self.cache(mirror)
        let stamp = Self.backupStamp()
        let damaged = SyncFailure(.internal, "the cache \(cache.path) is damaged: \(damage)")
        progress(mirror.name, "primary", "\(damaged.description); moving it aside and rebuilding it from the primary")
        let quarantined: String
        do {
            quarantined = try cache.quarantine(stamp: stamp)
        } catch {
            throw SyncFailure(.internal, "\(damaged.message), and it cannot be moved aside (\(error)); move it away by hand")
        }
        _ = try gitCall { try Repository.openOrCreateBare(at: cache.path) }

        // Backup refs are the only copy of what a forced push overwrote: carry over what still reads.
        let backups = (try? Repository.openBare(at: quarantined).references(matching: "refs/gitmirror/*")) ?? [:]
        var lost: [(ref: String, id: ObjectID, reason: String)] = []
        if !backups.isEmpty {
            progress(mirror.name, "primary", "carrying \(backups.count) backup ref\(backups.count == 1 ? "" : "s") over from the damaged cache")
            var fetch = FetchJob(remote: .local(quarantined), cache: cache.path, refspecs: backups.keys.sorted().map { "+\($0):\($0)" })
            let limits = Workers.Limits(timeout: mirror.primary.policy.timeout, stall: min(mirror.primary.policy.stallTimeout, Self.cacheStall / 2))
            let carry = { (fetch: FetchJob) in Result { () throws(SyncFailure) in try workers.run(fetch, for: mirror.name, limits: limits) } }
            if case .failure = carry(fetch) {
                // One by one: a backup whose history reaches the damaged object is lost alone.
                for (ref, id) in backups.sorted(by: { $0.key < $1.key }) {
                    fetch.refspecs = ["+\(ref):\(ref)"]
                    if case .failure(let failure) = carry(fetch) {
                        lost.append((ref, id, failure.message))
                    }
                }
            }
        }
        if let runId, let store, !options.planOnly {
            let now = Date()
            var rows = [RefUpdate(id: nil, runId: runId, repository: mirror.name, remote: "cache", ref: "(cache)", oldOid: nil, newOid: nil,
                                  action: .quarantine, outcome: .rebuilt,
                                  message: redactor.redact("\(damaged.description); moved to \(quarantined) and rebuilt from the primary"),
                                  backupRef: nil, recordedAt: now)]
            rows += lost.map { entry in
                RefUpdate(id: nil, runId: runId, repository: mirror.name, remote: "cache", ref: entry.ref, oldOid: entry.id.hex, newOid: nil,
                          action: .carryOver, outcome: .lost,
                          message: redactor.redact("this backup ref's objects could not be read from the damaged cache (\(entry.reason)); it remains in \(quarantined)"),
                          backupRef: nil, recordedAt: now)
            }
            do {
                try store.recordJournal(rows)
            } catch {
                held?.journalFailed("the cache's repair (\(rows.count) journal row\(rows.count == 1 ? "" : "s")): \(error)")
            }
        }
        return "\(damaged.description); moved to \(quarantined) and rebuilt from the primary"
            + (backups.isEmpty ? "" : "; \(backups.count - lost.count) of \(backups.count) backup refs carried over")
            + (lost.isEmpty ? "" : " (lost: \(lost.map(\.ref).joined(separator: ", ")))")
    }
}
