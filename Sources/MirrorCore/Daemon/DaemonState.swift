import Foundation

/// What the daemon's services share: the current configuration and the secrets it references.
public actor DaemonState {
    /// The repositories this replica owns, with the file's other settings.
    public private(set) var config: Config
    /// Every repository in the file, owned here or not: a hook for any of them is accepted and routed.
    private(set) var fleet: [Mirror]
    /// The file as written (its discover: sources not expanded).
    public private(set) var written: Config
    /// Counts the loads of the file: a discovery of an older load is not applied over a newer one.
    private(set) var loads = 0
    public private(set) var hookSecrets: HookSecrets
    let configFile: URL
    let shard: Shard
    let environment: [String: String]

    public struct HookSecrets: Sendable {
        var github: String?
        var gitlab: String?
        var gitea: String?
        var sync: String?
    }

    init(config: Config, configFile: URL, shard: Shard, environment: [String: String], redactor: Redactor) throws {
        try Self.checkPeers(config, shard: shard)
        self.config = Self.owned(config, shard: shard)
        self.fleet = config.repositories
        self.written = config
        self.configFile = configFile
        self.shard = shard
        self.environment = environment
        self.hookSecrets = try Self.secrets(config, environment: environment, redactor: redactor)
    }

    static func owned(_ config: Config, shard: Shard) -> Config {
        var owned = config
        owned.repositories = config.repositories.filter { shard.owns($0.name) }
        return owned
    }

    /// daemon.peers lists one URL per shard, or none.
    static func checkPeers(_ config: Config, shard: Shard) throws {
        let peers = config.daemon.peers
        guard !peers.isEmpty, peers.count != shard.count else { return }
        throw SyncFailure(.config, "daemon.peers lists \(peers.count) URL\(peers.count == 1 ? "" : "s") but --shard \(shard) says there are \(shard.count) shard\(shard.count == 1 ? "" : "s"); entry i must be shard i's URL, one per replica")
    }

    static func secrets(_ config: Config, environment: [String: String], redactor: Redactor) throws -> HookSecrets {
        let resolver = CredentialResolver(environment: environment, redactor: redactor)
        func read(_ source: SecretSource?, _ key: String) throws -> String? {
            guard let source else { return nil }
            return try resolver.read(source, for: "daemon.hooks", key: key)
        }
        return HookSecrets(github: try read(config.daemon.githubSecret, "github_secret"), gitlab: try read(config.daemon.gitlabToken, "gitlab_token"),
                           gitea: try read(config.daemon.giteaSecret, "gitea_secret"), sync: try read(config.daemon.syncToken, "sync_token"))
    }

    /// Loads the file again; an invalid one is refused and the running configuration stays.
    /// `expand` adds the discovered repositories (as last listed).
    func reload(redactor: Redactor, expand: (Config) -> Config) throws -> Config {
        let loaded = try ConfigLoader.forThisMachine(environment: environment).load(file: configFile, environment: environment)
        try Self.checkPeers(loaded, shard: shard)
        let secrets = try Self.secrets(loaded, environment: environment, redactor: redactor)
        written = loaded
        loads += 1
        hookSecrets = secrets
        return apply(expand(loaded))
    }

    /// Takes a configuration with its discovered repositories; returns the part this replica owns.
    @discardableResult
    func apply(_ expanded: Config) -> Config {
        config = Self.owned(expanded, shard: shard)
        fleet = expanded.repositories
        return config
    }


    /// The shard that owns a repository of the file; nil for a name the file does not have.
    func owner(of name: String) -> Int? {
        fleet.contains { $0.name == name } ? shard.owner(of: name) : nil
    }

    /// The repositories of the whole file whose primary is one of `urls`.
    func repositories(matching urls: [String]) -> [String] { Scheduler.repositories(fleet, matching: urls) }

    var peers: [URL] { config.daemon.peers }
}
