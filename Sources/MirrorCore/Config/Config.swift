import Foundation

/// mirrors.yaml, validated: every path is absolute, every reference resolved.
public struct Config: Sendable {
    public var file: URL
    public var stateDirectory: URL
    public var maxParallelPushes: Int
    public var credentials: [String: CredentialSpec]
    /// The written repositories (after `expanded(with:)`, the discovered ones too).
    public var repositories: [Mirror]
    /// The `discover:` entries: sources that list repositories to mirror.
    public var discover: [DiscoverySource] = []
    public var daemon = DaemonSettings()
    public var retention = Retention()

    public var databaseURL: URL { stateDirectory.appendingPathComponent("gitmirror.sqlite") }
    public var cacheDirectory: URL { stateDirectory.appendingPathComponent("cache") }

    public func mirror(named name: String) -> Mirror? { repositories.first { $0.name == name } }
}

/// One repository: a primary and the secondaries it is mirrored to.
public struct Mirror: Sendable {
    public var name: String
    public var primary: RemoteSpec
    public var secondaries: [RemoteSpec]
    /// How often the daemon syncs it (nil: the daemon's default interval).
    public var interval: TimeInterval?
    /// Set when a `discover:` entry listed it.
    public var origin: MirrorOrigin? = nil
}

/// The `daemon:` section: how `gitmirror daemon` schedules, listens and alerts.
public struct DaemonSettings: Sendable {
    public var listen = "127.0.0.1:9150"
    public var interval: TimeInterval = 5 * 60
    /// Repositories fetching, pushing or reading their cache at once (`--jobs`); listings do not count.
    public var maxParallelRepositories = 4
    /// Connections (listings, fetches, pushes) to one host at once.
    public var maxConnectionsPerHost = 16
    /// Connections at once in all, and repositories being synced at once: at 100 ms a listing, 32 list
    /// 10,000 repositories × 4 remotes in about two minutes.
    public var maxConnections = 32
    /// How often the `discover:` sources are listed again.
    public var discoverInterval: TimeInterval = 60 * 60
    public var shutdownGrace: TimeInterval = 60
    /// First retry after a failure; doubles per failure up to `retryCap`.
    public var retryBase: TimeInterval = 15
    public var retryCap: TimeInterval = 60 * 60
    /// The first runs after a start (and a new repository's first run) are spread over this long,
    /// so that a fleet does not hit its servers all at once; nil: a tenth of the interval, at most 30 s.
    public var startSpread: TimeInterval?
    public var githubSecret: SecretSource?
    public var gitlabToken: SecretSource?
    public var giteaSecret: SecretSource?
    public var syncToken: SecretSource?
    public var notify: [NotifyTarget] = []
    /// A sharded fleet's base URLs, entry i being shard i's: a replica forwards a hook it does
    /// not own to the replica that does. Empty for a single daemon.
    public var peers: [URL] = []
    /// Deadlines and connection caps of the daemon's HTTP server (`daemon.http:`).
    public var http = HTTPLimits()
    /// Who may open the status page and its JSON (`daemon.ui:`).
    public var ui = UISettings()

    public init() {}
}

/// The status page (`/`, `/repositories/…`) and its JSON (`/api/v1/…`): they disclose repository names,
/// URLs and error messages, so they answer loopback clients only unless `access: any`, which needs a
/// way to sign in. With a users file or a token file, every request signs in, loopback ones too.
public struct UISettings: Sendable, Equatable {
    public enum Access: String, Sendable, CaseIterable {
        /// Clients on 127.0.0.0/8 and ::1 that came without a proxy's forwarding header.
        case loopback
        /// Any client that signs in.
        case any
        /// No page and no JSON.
        case off
    }

    public var access = Access.loopback
    /// `user:hash` lines as `htpasswd -B` writes them (bcrypt; yescrypt and SHA-512 crypt hashes work too).
    public var usersFile: URL?
    /// One line, the token an `Authorization: Bearer` header carries (for scripts reading /api/v1).
    public var tokenFile: URL?

    public var signsIn: Bool { usersFile != nil || tokenFile != nil }

    public init() {}
}

/// The `retention:` section: how long gitmirror.sqlite keeps old runs, so that a
/// daemon left running for a year keeps a database of bounded size.
public struct Retention: Sendable, Equatable {
    /// Runs that moved no ref (no-op and failed syncs) are forgotten after this.
    public var runs: TimeInterval = 90 * 86400
    /// Runs that moved refs, with their journal rows; nil keeps them forever.
    /// Runs that recorded a backup ref (a forced overwrite or a deletion) are always kept.
    public var journal: TimeInterval?
    /// Damaged caches moved to `quarantine/` (they may hold a backup ref that could not be carried
    /// over) are removed after this; nil (the default) keeps them until an operator does.
    public var quarantine: TimeInterval?
    /// LFS objects in `lfs/objects` not used for this long are removed (the primary's LFS server
    /// still has them; a later push downloads them again); nil keeps them.
    public var lfs: TimeInterval? = 30 * 86400

    public init() {}
}

/// Where state-transition alerts are POSTed, HMAC-signed with the secret.
public struct NotifyTarget: Sendable {
    /// The URL, or where to read it (a Slack incoming-webhook URL is itself a secret).
    public var url: URL?
    public var urlSecret: SecretSource?
    public var secret: SecretSource?
    public var format: NotifyFormat = .json
}

/// The body a notify target is sent.
public enum NotifyFormat: String, Sendable, CaseIterable {
    /// gitmirror's own event object (`event`, `repository`, `remote`, `state`, …), signed.
    case json
    /// A Slack incoming-webhook message: `text` plus Block Kit `blocks` (also what Mattermost and
    /// Rocket.Chat incoming webhooks take).
    case slack
}

public enum Role: String, Sendable, Codable {
    case primary, secondary
}

public struct RemoteSpec: Sendable {
    public var name: String
    public var role: Role
    public var url: RemoteURL
    public var credentialName: String?
    public var policy: Policy
    /// Create the repository when it is missing (CodeCommit, or a forge's API).
    public var create = false
    /// The forge API that creates the repository and sets its default branch (nil: none known).
    public var forge: ForgeEndpoint? = nil
    /// The visibility a created repository gets: `private` (the default), `internal` or `public`.
    public var visibility = "private"
    /// The description a created repository gets (a discovered repository's own).
    public var description: String? = nil
}

/// What a sync may do to one secondary.
public struct Policy: Sendable, Equatable {
    public var refs: [String] = ["refs/heads/*", "refs/tags/*"]
    public var force = false
    /// The secondary keeps every history it was given (a server that refuses rewinds): where the
    /// primary rewrote a branch gitmirror mirrored, the secondary's branch stays and the primary's
    /// new history is mirrored beside it, under `refs/rewritten/…` (RefPlan.besideName).
    public var appendOnly = false
    public var prune = false
    public var maxDeletes = 20
    public var timeout: TimeInterval = 30 * 60
    public var stallTimeout: TimeInterval = 2 * 60
    /// Mirror the Git LFS objects the pushed refs point to, before the refs (HTTPS secondaries).
    public var lfs = false
    /// The primary's: ask its forge's API whether anything changed before listing (`change_check: api`).
    public var changeCheck = ChangeCheckMode.none
    /// The primary's: with `change_check: api`, every remote is still listed at least this often.
    public var verifyInterval: TimeInterval = 60 * 60

    public init() {}
}

/// How a scheduled run learns that the primary may have changed.
public enum ChangeCheckMode: String, Sendable, Equatable, CaseIterable {
    /// Every run lists every remote.
    case none
    /// A run first asks the primary's forge API (GitHub, GitLab, Gitea) with a conditional request;
    /// when it says nothing changed since the last run that left every remote in step, and that run
    /// was less than `verify_interval` ago, nothing is listed.
    case api
}

public enum SecretSource: Sendable, Equatable, CustomStringConvertible {
    case environment(String)
    case file(URL)

    public var description: String {
        switch self {
        case .environment(let name): return "environment variable \(name)"
        case .file(let url): return "file \(url.path)"
        }
    }
}

/// A named credential: only references to secrets, never a secret.
public struct CredentialSpec: Sendable {
    public var name: String
    public var username: String?
    public var sshKey: URL?
    public var sshKeyPassphrase: SecretSource?
    public var knownHosts: URL?
    /// A token or password (HTTPS basic auth).
    public var secret: SecretSource?
    public var caFile: URL?
    /// AWS credentials from the SDKs' chain, a profile or a role: CodeCommit's SigV4 signing.
    public var aws: AWSCredentialSpec?
}

/// How a credential of kind `aws:` finds its keys: the default chain, a profile, or a role to assume.
public struct AWSCredentialSpec: Sendable, Equatable {
    public var profile: String?
    public var roleArn: String?
    public var externalId: String?
    public var roleSessionName: String?

    public init(profile: String? = nil, roleArn: String? = nil, externalId: String? = nil, roleSessionName: String? = nil) {
        self.profile = profile
        self.roleArn = roleArn
        self.externalId = externalId
        self.roleSessionName = roleSessionName
    }
}

/// How long the daemon's HTTP clients may take and how many connections they may hold (`daemon.http:`).
/// Whoever reaches the port (the container and the Kubernetes manifest listen on 0.0.0.0 for webhooks)
/// can open connections: these bounds keep descriptors free and `/healthz` answering.
public struct HTTPLimits: Sendable, Equatable {
    /// From a connection's start (or the end of its last response) to the end of a request's headers.
    public var headerTimeout: TimeInterval = 10
    /// From a request's headers to the end of its body (a 25 MB hook at 1 MB/s fits).
    public var bodyTimeout: TimeInterval = 30
    /// A kept-alive connection waiting for its next request.
    public var idleTimeout: TimeInterval = 60
    /// Connections from all peers at once; nil: a quarter of the descriptors the process may open, at most 4096.
    public var maxConnections: Int?
    /// Connections from one address at once; more are closed as they arrive.
    public var maxConnectionsPerPeer = 64

    public init() {}

    /// The total cap for a process that may open `descriptors` files.
    public func totalConnections(descriptors: Int) -> Int {
        maxConnections ?? max(32, min(4096, descriptors / 4))
    }
}
