import Foundation

/// Turns a credential's references (env var, file) into the secret a worker
/// needs, registering every value with the redactor first.
public struct CredentialResolver: Sendable {
    public let environment: [String: String]
    public let redactor: Redactor
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

    /// Fills the access fields of a worker request for `remote`.
    public func prepare(_ request: inout WorkerRequest, for remote: RemoteSpec, config: Config) throws(SyncFailure) {
        request.url = remote.url.gitURL
        request.knownHostsName = remote.url.knownHostsName
        let isCodeCommitHTTPS = remote.url.codeCommit != nil && remote.url.scheme == .https
        if isCodeCommitHTTPS, let bundle = environment["AWS_CA_BUNDLE"], !bundle.isEmpty { request.caFile = bundle }
        let spec: CredentialSpec
        if let name = remote.credentialName {
            guard let named = config.credentials[name] else { throw SyncFailure(.config, "credential '\(name)' is not defined") }
            spec = named
        } else if isCodeCommitHTTPS {
            // A CodeCommit address with no credential signs with the default AWS chain, as git-remote-codecommit does.
            spec = CredentialSpec(name: "aws-default-chain", aws: AWSCredentialSpec())
        } else {
            return
        }
        let name = spec.name
        if let caFile = spec.caFile { request.caFile = caFile.path }
        request.knownHostsFile = spec.knownHosts?.path
        if let aws = spec.aws {
            guard let target = remote.url.codeCommit else {
                throw SyncFailure(.config, "credential '\(name)' signs for CodeCommit, but \(remote.url) is not a CodeCommit repository")
            }
            var profileSpec = aws
            if profileSpec.profile == nil { profileSpec.profile = target.profile }
            let keys = try awsCredentials(profileSpec, name: name, region: target.region)
            request.credential = WireCredential(kind: .aws, username: nil, password: nil, privateKey: nil, passphrase: nil,
                                                aws: keys, region: target.region, signingHost: remote.url.host, signingPath: target.path)
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
            request.credential = WireCredential(kind: .sshKey, username: spec.username ?? remote.url.user, password: nil,
                                                privateKey: privateKey, passphrase: passphrase)
        } else if let source = spec.secret {
            let secret = try read(source, for: name, key: "token/password")
            request.credential = WireCredential(kind: .password, username: spec.username ?? remote.url.user ?? Forge.of(remote.url).tokenUsername,
                                                password: secret, privateKey: nil, passphrase: nil)
        }
    }
}

private final class AWSCredentialCache: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [String: AWSCredentials] = [:]

    func get(_ key: String) -> AWSCredentials? {
        lock.lock()
        defer { lock.unlock() }
        return entries[key]
    }

    func set(_ key: String, _ value: AWSCredentials) {
        lock.lock()
        entries[key] = value
        lock.unlock()
    }
}
