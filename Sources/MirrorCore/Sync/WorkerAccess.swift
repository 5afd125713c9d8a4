import Foundation

extension WorkerRequest {
    /// Puts what it takes to reach `remote` into the request, in the worker's wire format.
    mutating func grant(_ access: RemoteAccess, to remote: RemoteSpec) {
        url = remote.url.gitURL
        knownHostsName = remote.url.knownHostsName
        if let file = access.caFile { caFile = file }
        knownHostsFile = access.knownHostsFile
        switch access.secret {
        case .none:
            break
        case let .password(username, password):
            credential = WireCredential(kind: .password, username: username, password: password, privateKey: nil, passphrase: nil)
        case let .sshKey(username, privateKey, passphrase):
            credential = WireCredential(kind: .sshKey, username: username, password: nil, privateKey: privateKey, passphrase: passphrase)
        case let .aws(keys, region, host, path):
            credential = WireCredential(kind: .aws, username: nil, password: nil, privateKey: nil, passphrase: nil,
                                        aws: keys, region: region, signingHost: host, signingPath: path)
        }
    }
}

extension CredentialResolver {
    /// Fills the access fields of a worker request for `remote`.
    func prepare(_ request: inout WorkerRequest, for remote: RemoteSpec, config: Config) throws(SyncFailure) {
        request.grant(try access(for: remote, config: config), to: remote)
    }
}
