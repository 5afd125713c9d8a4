import Foundation

/// Lists the `discover:` sources, records what they hold, and expands the configuration with them.
/// A source that cannot be listed keeps its last good listing (an API outage unschedules nothing);
/// a repository gone from its source is unscheduled and reported, and nothing is deleted anywhere.
public struct Discoverer: Sendable {
    public let credentials: CredentialResolver
    public let store: StateStore?

    public init(credentials: CredentialResolver, store: StateStore?) {
        self.credentials = credentials
        self.store = store
    }

    public struct Outcome: Sendable {
        /// The written repositories and the discovered ones.
        public var config: Config
        public var entries: [DiscoveryEntry]
        /// Sources that could not be listed now (their last listing, if any, was used).
        public var failures: [(source: String, failure: SyncFailure)] = []
        /// Repositories no longer listed by their source: source, path, since when.
        public var gone: [(source: String, path: String, since: Date)] = []
        /// What changed in this run's listings.
        public var appeared: [(source: String, path: String)] = []

        /// Repositories that were listed but will not be mirrored because something is wrong (not a filter's choice).
        public var problems: [DiscoveryEntry] {
            entries.filter { if case .collision = $0.status { return true }; if case .invalid = $0.status { return true }; return false }
        }
    }

    /// `list`: ask the sources now (else only the listings the state database holds: the daemon's reload);
    /// `record`: keep what was listed (`gitmirror discover` changes nothing).
    public func run(_ config: Config, list: Bool = true, record: Bool = true, now: Date = Date()) -> Outcome {
        var listings = (try? store?.listings()) ?? [:]
        let known = (try? store?.discovered()) ?? []
        var outcome = Outcome(config: config, entries: [])
        if list {
            let results = concurrently(config.discover.count, limit: 4) { index in
                let source = config.discover[index]
                return Result { () throws(SyncFailure) in try self.listing(source, config: config) }
            }
            for (source, result) in zip(config.discover, results) {
                switch result {
                case .success(let repositories):
                    let present = Set(repositories.map(\.path))
                    let before = Set(known.filter { $0.source == source.id && $0.goneSince == nil }.map(\.path))
                    outcome.appeared += present.subtracting(before).sorted().map { (source.id, $0) }
                    listings[source.id] = repositories
                    if record, let store {
                        // Not swallowed: a listing that is not kept would be listed as new again, and its repositories' "gone" lost.
                        do {
                            try store.recordListing(source: source.id, repositories: repositories, at: now)
                        } catch {
                            outcome.failures.append((source.id, SyncFailure(.internal, "listed, but the state database did not record the listing: \(error)")))
                        }
                    }
                case .failure(let failure):
                    let redacted = SyncFailure(failure.errorClass, credentials.redactor.redact(failure.message))
                    outcome.failures.append((source.id, redacted))
                    if record, let store {
                        do {
                            try store.recordListingFailure(source: source.id, failure: redacted, at: now)
                        } catch {
                            outcome.failures.append((source.id, SyncFailure(.internal, "the state database did not record this failure either: \(error)")))
                        }
                    }
                }
            }
        }
        // Gone: listed before, not in the listing in force now.
        let sources = Set(config.discover.map(\.id))
        for row in known where sources.contains(row.source) {
            let present = listings[row.source]?.contains { $0.path == row.path } ?? false
            if !present { outcome.gone.append((row.source, row.path, row.goneSince ?? now)) }
        }
        let (expanded, entries) = config.expanded(with: listings)
        outcome.config = expanded
        outcome.entries = entries
        return outcome
    }

    /// One source's repositories, as its API lists them now.
    func listing(_ source: DiscoverySource, config: Config) throws(SyncFailure) -> [DiscoveredRepository] {
        let spec = source.credentialName.flatMap { config.credentials[$0] }
        switch source.kind {
        case .codeCommit(let region):
            let keys = try credentials.awsCredentials(spec?.aws ?? AWSCredentialSpec(), name: spec?.name ?? "aws-default-chain", region: region)
            return try CodeCommitAPI(region: region, credentials: keys, environment: credentials.environment).repositories()
        case .forge(let endpoint):
            let token = try spec?.secret.map { (secret) throws(SyncFailure) in try credentials.read(secret, for: spec!.name, key: "token") }
            return try forgeClient(endpoint, token: token, caBundle: spec?.caFile?.path, maxAnswerSize: source.maxAnswerSize).repositories(of: source.owner, subgroups: source.subgroups)
        }
    }
}
