import Foundation
import Synchronization

/// Turns a credential's references (env var, file) into the secret a worker
/// needs, registering every value with the redactor first.
public struct CredentialResolver: Sendable {
    public let environment: [String: String]
    public let redactor: Redactor
    /// Reused between repositories and runs: a credential_process or STS call per sync would be slow and rate-limited.
    private let awsCache = AWSCredentialCache()

    public init(environment: [String: String] = ProcessInfo.processInfo.environment, redactor: Redactor) {
        self.environment = environment
        self.redactor = redactor
    }

    /// AWS credentials for a credential and region, from the chain; reused until
    /// five minutes before they expire.
    public func awsCredentials(_ spec: AWSCredentialSpec, name: String, region: String) throws(SyncFailure) -> AWSCredentials {
        let key = "\(name)|\(region)"
        if let cached = awsCache.get(key), !cached.expires(within: 300) { return cached }
        let credentials = try AWSCredentialChain(environment: environment).resolve(spec, region: region)
        redactor.register(credentials.secretAccessKey)
        if let token = credentials.sessionToken { redactor.register(token) }
        awsCache.set(key, credentials)
        return credentials
    }

    func read(_ source: SecretSource, for credential: String, key: String) throws(SyncFailure) -> String {
        switch source {
        case .environment(let name):
            guard let value = environment[name], !value.isEmpty else {
                throw SyncFailure(.config, "credential '\(credential)': \(key) names the environment variable \(name), which is not set")
            }
            redactor.register(value)
            return value
        case .file(let url):
            guard let data = FileManager.default.contents(atPath: url.path) else {
                throw SyncFailure(.config, "credential '\(credential)': \(key) \(url.path) cannot be read")
            }
            let value = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard !value.isEmpty else { throw SyncFailure(.config, "credential '\(credential)': \(key) \(url.path) is empty") }
            redactor.register(value)
            return value
        }
    }

    /// The CA bundle a worker reaching `remote` trusts ("" for the system's): what `access(for:)` sets,
    /// without reading any secret.
    public func trustStore(for remote: RemoteSpec, config: Config) -> String {
        if let name = remote.credentialName, let caFile = config.credentials[name]?.caFile { return caFile.path }
        if remote.url.codeCommit != nil, remote.url.scheme == .https, let bundle = environment["AWS_CA_BUNDLE"], !bundle.isEmpty { return bundle }
        return ""
    }

    /// What it takes to reach `remote`: its secret, read and registered with the redactor, and the
    /// files that say whom to trust. Sync turns it into a worker's request (`WorkerRequest.grant`).
    public func access(for remote: RemoteSpec, config: Config) throws(SyncFailure) -> RemoteAccess {
        var access = RemoteAccess()
        let isCodeCommitHTTPS = remote.url.codeCommit != nil && remote.url.scheme == .https
        if isCodeCommitHTTPS, let bundle = environment["AWS_CA_BUNDLE"], !bundle.isEmpty { access.caFile = bundle }
        let spec: CredentialSpec
        if let name = remote.credentialName {
            guard let named = config.credentials[name] else { throw SyncFailure(.config, "credential '\(name)' is not defined") }
            spec = named
        } else if isCodeCommitHTTPS {
            // A CodeCommit address with no credential signs with the default AWS chain, as git-remote-codecommit does.
            spec = CredentialSpec(name: "aws-default-chain", aws: AWSCredentialSpec())
        } else {
            return access
        }
        let name = spec.name
        if let caFile = spec.caFile { access.caFile = caFile.path }
        access.knownHostsFile = spec.knownHosts?.path
        if let aws = spec.aws {
            guard let target = remote.url.codeCommit else {
                throw SyncFailure(.config, "credential '\(name)' signs for CodeCommit, but \(remote.url) is not a CodeCommit repository")
            }
            var profileSpec = aws
            if profileSpec.profile == nil { profileSpec.profile = target.profile }
            let keys = try awsCredentials(profileSpec, name: name, region: target.region)
            access.secret = .aws(keys, region: target.region, signingHost: remote.url.host, signingPath: target.path)
        } else if let key = spec.sshKey {
            guard let data = FileManager.default.contents(atPath: key.path) else {
                throw SyncFailure(.config, "credential '\(name)': ssh_key \(key.path) cannot be read")
            }
            let privateKey = String(decoding: data, as: UTF8.self)
            redactor.register(privateKey)
            for line in privateKey.split(separator: "\n") where line.count > 20 && !line.hasPrefix("-----") {
                redactor.register(String(line))
            }
            let passphrase = try spec.sshKeyPassphrase.map { (source) throws(SyncFailure) in try read(source, for: name, key: "ssh_key_passphrase") }
            access.secret = .sshKey(username: spec.username ?? remote.url.user, privateKey: privateKey, passphrase: passphrase)
        } else if let source = spec.secret {
            let secret = try read(source, for: name, key: "token/password")
            access.secret = .password(username: spec.username ?? remote.url.user ?? Forge.of(remote).tokenUsername, password: secret)
        }
        return access
    }
}

private final class AWSCredentialCache: Sendable {
    private let entries = Mutex<[String: AWSCredentials]>([:])

    func get(_ key: String) -> AWSCredentials? { entries.withLock { $0[key] } }

    func set(_ key: String, _ value: AWSCredentials) { entries.withLock { $0[key] = value } }
}

/// What a remote needs to be reached: the secret (already registered with the redactor) and the
/// files that say whom to trust.
public struct RemoteAccess: Sendable {
    public enum Secret: Sendable {
        case none
        case password(username: String?, password: String)
        case sshKey(username: String?, privateKey: String, passphrase: String?)
        /// AWS keys: CodeCommit's password is signed from them at every request.
        case aws(AWSCredentials, region: String, signingHost: String?, signingPath: String)
    }

    public var secret: Secret = .none
    public var caFile: String?
    public var knownHostsFile: String?
}
