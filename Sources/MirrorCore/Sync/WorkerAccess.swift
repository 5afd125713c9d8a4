import Foundation

extension CredentialResolver {
    /// What a worker needs to reach `remote`: its URL, whom to trust there and the secret, in the worker's wire format.
    func endpoint(for remote: RemoteSpec, config: Config) throws(SyncFailure) -> Endpoint {
        let access = try access(for: remote, config: config)
        var endpoint = Endpoint(url: remote.url.gitURL, host: remote.url.host ?? "local", knownHostsFile: access.knownHostsFile,
                                knownHostsName: remote.url.knownHostsName, caFile: access.caFile)
        switch access.secret {
        case .none:
            break
        case let .password(username, password):
            endpoint.credential = .password(username: username, password: password)
        case let .sshKey(username, privateKey, passphrase):
            endpoint.credential = .sshKey(username: username, privateKey: privateKey, passphrase: passphrase)
        case let .aws(keys, region, host, path):
            endpoint.credential = .aws(keys, region: region, signingHost: host ?? "", signingPath: path)
        }
        return endpoint
    }
}
