import Foundation
import Git

/// What a sync asks of a server's own API (CodeCommit, GitHub, GitLab, Gitea) rather than of git:
/// creating a missing repository, and setting its default branch.
extension SyncContext {
    /// `create: true`: a missing repository is created through CodeCommit's or the forge's API, then listed again.
    func createRepository(_ secondary: RemoteSpec, repository: String) throws {
        do {
            if let api = try codeCommitAPI(for: secondary), let target = secondary.url.codeCommit {
                if try !api.repositoryExists(target.repository) {
                    progress(repository, secondary.name, "creating CodeCommit repository \(target.repository) in \(target.region)")
                    try api.createRepository(target.repository, description: secondary.description)
                }
            } else if let (client, path) = try forgeClient(for: secondary) {
                if try client.repository(at: path) == nil {
                    progress(repository, secondary.name, "creating \(secondary.visibility) repository \(path) through the \(secondary.forge!.kind.displayName) API")
                    try client.createRepository(at: path, visibility: secondary.visibility, description: secondary.description)
                }
            }
        } catch {
            throw redacted(SyncFailure(error.errorClass, "secondary '\(secondary.name)': \(error.message)"))
        }
    }

    /// Points a secondary's HEAD at `branch`; false when this server has no way gitmirror knows.
    func setDefaultBranch(of secondary: RemoteSpec, to branch: String, repository: String) throws -> Bool {
        if let api = try codeCommitAPI(for: secondary), let target = secondary.url.codeCommit {
            try api.updateDefaultBranch(target.repository, to: branch)
            return true
        }
        if let (client, path) = try forgeClient(for: secondary) {
            try client.setDefaultBranch(of: path, to: branch)
            return true
        }
        if secondary.url.scheme == .file {
            // A bare repository on a path this machine reaches: HEAD is a file of its own.
            let bare = FileManager.default.fileExists(atPath: secondary.url.path + "/objects")
            guard bare else { return false }
            try gitCall { try Repository.openBare(at: secondary.url.path).setHead(to: "refs/heads/\(branch)") }
            return true
        }
        return false
    }

    func codeCommitAPI(for remote: RemoteSpec) throws(SyncFailure) -> CodeCommitAPI? {
        guard let target = remote.url.codeCommit else { return nil }
        var spec = remote.credentialName.flatMap { config.credentials[$0]?.aws } ?? AWSCredentialSpec()
        if spec.profile == nil { spec.profile = target.profile }
        let keys = try credentials.awsCredentials(spec, name: remote.credentialName ?? "aws-default-chain", region: target.region)
        return CodeCommitAPI(region: target.region, credentials: keys, environment: credentials.environment)
    }

    /// The forge API of a remote and the repository's path there (`acme/widget`), with the remote's token.
    func forgeClient(for remote: RemoteSpec) throws(SyncFailure) -> (any ForgeClient, String)? {
        guard let forge = remote.forge else { return nil }
        let spec = remote.credentialName.flatMap { config.credentials[$0] }
        let token = try spec?.secret.map { (secret) throws(SyncFailure) in try credentials.read(secret, for: spec!.name, key: "token") }
        var path = remote.url.path
        while path.hasPrefix("/") { path.removeFirst() }
        while path.hasSuffix("/") { path.removeLast() }
        if path.hasSuffix(".git") { path.removeLast(4) }
        return (MirrorCore.forgeClient(forge, token: token, caBundle: spec?.caFile?.path), path)
    }
}
