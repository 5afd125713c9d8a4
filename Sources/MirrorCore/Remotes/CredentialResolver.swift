import Foundation

/// Turns a credential's references (env var, file) into the secret a worker
/// needs, registering every value with the redactor first.
public struct CredentialResolver: Sendable {
    public let environment: [String: String]
    public let redactor: Redactor

    public init(environment: [String: String] = ProcessInfo.processInfo.environment, redactor: Redactor) {
        self.environment = environment
        self.redactor = redactor
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
        guard let name = remote.credentialName else { return }
        guard let spec = config.credentials[name] else {
            throw SyncFailure(.config, "credential '\(name)' is not defined")
        }
        request.caFile = spec.caFile?.path
        request.knownHostsFile = spec.knownHosts?.path
        if let key = spec.sshKey {
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
            request.credential = WireCredential(kind: .password, username: spec.username ?? remote.url.user ?? "git",
                                                password: secret, privateKey: nil, passphrase: nil)
        }
    }
}
