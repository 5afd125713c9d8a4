import Git

/// A job for a worker process, sent as one JSON document on its stdin, secrets included
/// (never in argv, the environment or a file).
public struct WorkerRequest: Codable, Sendable {
    public enum Operation: String, Codable, Sendable {
        /// List the remote's refs.
        case list
        /// Fetch `refspecs` into the cache.
        case fetch
        /// Push `updates` from the cache, then list the remote again.
        case push
    }

    public var operation: Operation
    public var url: String
    public var credential: WireCredential?
    /// The known_hosts file and the name the host goes by in it (`host` or `[host]:port`).
    public var knownHostsFile: String?
    public var knownHostsName: String?
    public var caFile: String?
    public var cachePath: String?
    public var refspecs: [String]?
    public var updates: [WireUpdate]?
}

public struct WireCredential: Codable, Sendable {
    public enum Kind: String, Codable, Sendable {
        case password
        case sshKey = "ssh_key"
        /// AWS keys: the worker signs a CodeCommit password when the server asks.
        case aws
    }
    public var kind: Kind
    public var username: String?
    public var password: String?
    public var privateKey: String?
    public var passphrase: String?
    public var aws: AWSCredentials?
    public var region: String?
    /// The host and path CodeCommit checks the signature against.
    public var signingHost: String?
    public var signingPath: String?
}

/// One ref to push: `expectedOld` is what the plan saw (the lease); nil `new` deletes.
public struct WireUpdate: Codable, Sendable, Equatable {
    public var ref: String
    public var expectedOld: ObjectID?
    public var new: ObjectID?
    public var force: Bool
}

/// The server's verdict on one pushed ref.
public struct PushOutcome: Codable, Sendable, Equatable {
    public var ref: String
    public var accepted: Bool
    public var message: String?
}

public struct WorkerResult: Codable, Sendable {
    public var heads: [RemoteHead] = []
    /// What the server's HEAD points at (listings only).
    public var defaultBranch: String?
    public var outcomes: [PushOutcome] = []
    public var bytes: Int = 0
    public var serverMessages: [String] = []
}

/// One line a worker writes on stdout.
public struct WorkerEvent: Codable, Sendable {
    public var progress: String?
    public var result: WorkerResult?
    public var failure: SyncFailure?
}
