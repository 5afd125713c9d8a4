import Foundation

// The composition of the command line's entry points other than sync and plan (SyncSession) and the
// daemon (makeDaemon): each builds the store, the credential resolver and the workers it needs from the
// configuration, so that the executable only parses arguments, prints and maps exit codes.

extension Discoverer {
    /// Lists the `discover:` sources now (recording what they hold unless `record` is false) and expands
    /// the configuration: `discover`, and the discovery step of `sync` and `plan`.
    public static func listing(_ config: Config, record: Bool) -> Outcome {
        let store = try? StateStore(path: config.databaseURL.path, readOnly: !record)
        let discoverer = Discoverer(credentials: CredentialResolver(redactor: Redactor()), store: store)
        return discoverer.run(config, list: true, record: record && store?.newerSchema == nil)
    }

    /// The configuration expanded with the sources' last recorded listings, asking no API (`status`);
    /// nil when the configuration discovers nothing.
    public static func lastListings(_ config: Config) -> Outcome? {
        guard !config.discover.isEmpty else { return nil }
        let store = try? StateStore(path: config.databaseURL.path, readOnly: true)
        return Discoverer(credentials: CredentialResolver(redactor: Redactor()), store: store).run(config, list: false, record: false)
    }
}

extension Preflight {
    /// `doctor`: every remote of `mirrors` checked by workers of this process, changing nothing.
    public static func check(_ mirrors: [Mirror], of config: Config) -> [Finding] {
        Preflight(config: config, workers: Workers(executable: ChildProcess.ownExecutable), credentials: CredentialResolver(redactor: Redactor()))
            .check(mirrors)
    }
}

extension StateStore {
    /// The state database for an operator's decision (`accept`); nil when none was written yet.
    public static func forOperator(_ config: Config) throws -> StateStore? {
        guard FileManager.default.fileExists(atPath: config.databaseURL.path) else { return nil }
        return try StateStore(path: config.databaseURL.path)
    }

    /// The state database for reading only (`status`, `history`); nil when none was written yet.
    public static func reading(_ config: Config) throws -> StateStore? {
        guard FileManager.default.fileExists(atPath: config.databaseURL.path) else { return nil }
        return try StateStore(path: config.databaseURL.path, readOnly: true)
    }
}
