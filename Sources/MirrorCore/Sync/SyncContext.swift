import Foundation
// On Linux `struct stat` and `tm` reach Swift through Dispatch's C module, which MemberImportVisibility wants named.
#if canImport(CDispatch)
import CDispatch
#endif
import Git

/// What every part of one repository's sync works with: the configuration, the state database, the
/// workers, the credentials, the run's options and where progress goes. The parts (SecondarySync,
/// Prelisting, LFSTransfer, the cache's repair, the run's recorder) are handed this, and need nothing
/// else of the sync that runs them.
struct SyncContext: Sendable {
    let config: Config
    let store: StateStore?
    /// Runs the jobs, within the host limits they carry (the daemon's are shared by every sync of the process).
    let workers: Workers
    let credentials: CredentialResolver
    let options: RepositorySync.Options
    /// Where what each remote is doing goes (the caller's display, and the state database for `status`).
    let report: @Sendable (ProgressNote) -> Void

    /// What a remote is doing now.
    func progress(_ repository: String, _ remote: String, _ message: String) {
        report(ProgressNote(repository: repository, remote: remote, message: message))
    }

    /// A remote's work in this run is over.
    func finished(_ repository: String, _ remote: String, _ verdict: String) {
        report(ProgressNote(repository: repository, remote: remote, message: verdict, finished: true))
    }

    var redactor: Redactor { credentials.redactor }

    func cache(_ mirror: Mirror) -> Cache { Cache(name: mirror.name, stateDirectory: config.stateDirectory) }

    func cachePath(_ mirror: Mirror) -> String { cache(mirror).path }

    /// Jobs that only read the cache: no server to wait for, so silence this long means a read that never ends.
    static let cacheStall: TimeInterval = 20

    func cacheLimits(_ remote: RemoteSpec) -> Workers.Limits {
        Workers.Limits(timeout: remote.policy.timeout, stall: min(remote.policy.stallTimeout, Self.cacheStall))
    }

    /// Runs a job for `remote` (or on the cache, for a job of that kind); its notes are the remote's progress
    /// (a seeded secondary's, its own), and its failure says where.
    /// `observe`: sees each note too.
    func run<J: Job>(_ job: J, on remote: RemoteSpec, repository: String, limits: Workers.Limits,
                     observe: (@Sendable (JobNote) -> Void)? = nil) throws(SyncFailure) -> J.Result {
        do {
            return try workers.run(job, for: repository, limits: limits) { note in
                observe?(note)
                switch note {
                case .progress(let line): progress(repository, remote.name, line)
                case .about(let other, let line): progress(repository, other, line)
                case .reading: break
                }
            }
        } catch var failure {
            let onCache = J.kind == .cache
            // A job that only reads the cache and never finishes is reading a damaged object.
            if onCache, failure.errorClass == .timeout, !workers.isStopping {
                failure.cacheDamage = CacheDamage("reading the cache did not finish (\(failure.message))")
            }
            let place = onCache ? "the cache of '\(repository)'" : "\(remote.role == .primary ? "primary" : "secondary '\(remote.name)'") \(remote.url)"
            throw redacted(SyncFailure(failure.errorClass, "\(place): \(failure.message)", cacheDamage: failure.cacheDamage))
        }
    }

    /// Cache calls that read no object (refs, opening): a failure is a local fault, named as one.
    func gitCall<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as GitError {
            let lower = error.message.lowercased()
            if lower.contains("permission denied") || lower.contains("read-only file system") || lower.contains("no space left") {
                throw Classification.localFault(error.message, cachePath: config.cacheDirectory.path) ?? SyncFailure(.internal, "the cache: \(error.description)")
            }
            throw SyncFailure(.internal, "the cache: \(error.description)")
        }
    }

    func redacted(_ failure: SyncFailure) -> SyncFailure {
        SyncFailure(failure.errorClass, redactor.redact(failure.message), cacheDamage: failure.cacheDamage.map { CacheDamage(redactor.redact($0.detail), objectMissing: $0.objectMissing) })
    }

    /// `20261123T081512Z`: the time a backup ref was written, in UTC (gmtime_r, not a DateFormatter,
    /// whose ICU set-up cost more than a whole no-op listing).
    static func backupStamp(_ date: Date = Date()) -> String { UTCTime.compact(date) }

    /// A short digest of what the remote advertises, to tell at a glance whether it changed.
    func fingerprint(_ heads: [RemoteHead]) -> String {
        // FNV-1a over "<name> <id>\n" of each head in git's order of names (bytes).
        var hash: UInt64 = 0xcbf29ce484222325
        func add(_ byte: UInt8) { hash = (hash ^ UInt64(byte)) &* 0x100000001b3 }
        for head in heads.sorted(by: { RefName.precedes($0.name, $1.name) }) {
            for byte in head.name.utf8 { add(byte) }
            add(32)
            for byte in head.id.hex.utf8 { add(byte) }
            add(10)
        }
        return hex16(hash)
    }
}
