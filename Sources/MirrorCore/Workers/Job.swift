import Foundation

/// One operation a worker process runs for the supervisor: exactly its inputs, its result, and what
/// kind of work it is, declared once. Adding an operation is adding a `Job` (Sync/Worker/Jobs.swift)
/// and its handler on the worker side (Sync/Worker/Worker.swift); the plumbing here runs any of them.
public protocol Job: Codable, Sendable {
    associatedtype Result: Codable & Sendable
    /// The job's name on the wire.
    static var name: String { get }
    static var kind: JobKind { get }
    /// Where it connects; nil for a job on the cache alone.
    var endpoint: Endpoint? { get }
    /// Connections the job opens beside its own (a first seed's pushes): each host is admitted by the
    /// host limits only if there is room now, and a job must do without those that are not.
    mutating func admitConnections(_ admit: (_ host: String) -> Bool)
}

extension Job {
    public mutating func admitConnections(_ admit: (_ host: String) -> Bool) {}
}

/// What a job does with a worker, a host and the cache; the supervisor's pools and limits follow it.
public enum JobKind: Sendable {
    /// Opens one connection and only reads from it, touching no file: cheap to run side by side, so
    /// several share a worker, and safe to run again on another worker when the one they shared is
    /// killed for somebody else's limit. Takes no transfer slot.
    case listing
    /// Moves objects over a connection (fetch, push): a worker of its own and a transfer slot.
    case transfer
    /// Reads the cache, or writes refs in it, and connects nowhere: a worker of its own and a transfer
    /// slot. Silence means a read that never ends (a damaged object).
    case cache

    public var sharesWorker: Bool { self == .listing }
    public var takesTransferSlot: Bool { self != .listing }
}

/// What a worker says about a job while it runs: each note also restarts the job's stall clock.
public enum JobNote: Codable, Sendable, Equatable {
    /// How far the job is, in words for people.
    case progress(String)
    /// How far another remote the job serves is (a secondary seeded from the primary's fetch).
    case about(remote: String, String)
    /// The object the job is about to read (a verification that may hang on it).
    case reading(object: String)
}

/// What it takes to reach a remote: its URL, whom to trust there, and the secret (which travels on the
/// worker's stdin with the job, never in argv, the environment or a file).
public struct Endpoint: Codable, Sendable {
    public var url: String
    /// The host that counts against `max_connections_per_host` ("local" for a path).
    public var host: String
    public var credential: WireCredential?
    /// The known_hosts file (nil: ~/.ssh/known_hosts) and the name the host goes by in it (`host` or `[host]:port`).
    public var knownHostsFile: String?
    public var knownHostsName: String?
    /// A CA to trust besides the system's; a worker never serves two (libgit2's store is process-wide).
    public var caFile: String?

    public init(url: String, host: String, credential: WireCredential? = nil, knownHostsFile: String? = nil,
                knownHostsName: String? = nil, caFile: String? = nil) {
        self.url = url
        self.host = host
        self.credential = credential
        self.knownHostsFile = knownHostsFile
        self.knownHostsName = knownHostsName
        self.caFile = caFile
    }

    /// A repository on a path of this machine.
    public static func local(_ path: String) -> Endpoint { Endpoint(url: path, host: "local") }
}

/// A credential as the worker receives it.
public enum WireCredential: Codable, Sendable {
    case password(username: String?, password: String)
    case sshKey(username: String?, privateKey: String, passphrase: String?)
    /// AWS keys: the worker signs a CodeCommit password when the server asks, against this host and path.
    case aws(AWSCredentials, region: String, signingHost: String, signingPath: String)

    /// The SSH key, when the credential is one.
    public var sshKey: (username: String?, privateKey: String, passphrase: String?)? {
        if case let .sshKey(username, privateKey, passphrase) = self { return (username, privateKey, passphrase) }
        return nil
    }

    /// An SSH key locked with a passphrase (OpenSSH in batch mode cannot be given one; libgit2 can).
    public var isLockedKey: Bool { sshKey?.passphrase?.isEmpty == false }
}

/// The lines on a worker's stdin and stdout. A job: `{"job": NAME, "id": N, "input": {…}}` (an id for
/// jobs that share a worker). An event: `{"id": N, "note": …}`, then one `{"id": N, "done": true,
/// "result": {…}}` or `{"id": N, "failure": {…}}`.
enum Wire {
    struct JobLine<J: Job>: Codable {
        var job: String
        var id: Int?
        var input: J
    }

    struct JobHeader: Decodable {
        var job: String
        var id: Int?
    }

    struct EventLine<R: Encodable>: Encodable {
        var id: Int?
        var note: JobNote?
        var done: Bool?
        var result: R?
        var failure: SyncFailure?
    }

    /// An event as the supervisor's reader sees it: the result stays in the line, for the job's caller to decode.
    struct EventHeader: Decodable {
        var id: Int?
        var note: JobNote?
        var done: Bool?
        var failure: SyncFailure?
    }

    struct ResultLine<R: Decodable>: Decodable {
        var result: R
    }

    /// A job's end as the reader hands it to the job's caller.
    enum Answer: Sendable {
        case result(line: Data)
        case failure(SyncFailure)
    }

    static func encode<J: Job>(_ job: J, id: Int?) -> Result<Data, SyncFailure> {
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = .withoutEscapingSlashes   // ref names and paths: no `\/` to write and read back
            var data = try encoder.encode(JobLine(job: J.name, id: id, input: job))
            data.append(0x0A)
            return .success(data)
        } catch {
            return .failure(SyncFailure(.internal, "cannot encode the worker's job \(J.name): \(error)"))
        }
    }

    static func decode<R: Decodable>(_ answer: Answer, as type: R.Type) -> Result<R, SyncFailure> {
        switch answer {
        case .failure(let failure):
            return .failure(failure)
        case .result(let line):
            do {
                return .success(try JSONDecoder().decode(ResultLine<R>.self, from: line).result)
            } catch {
                return .failure(SyncFailure(.internal, "the worker's answer could not be read: \(error)"))
            }
        }
    }
}
