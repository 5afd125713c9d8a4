import Foundation
import Git

/// What a worker's libgit2 failure was: what the callbacks saw first (they know exactly), then libgit2's
/// error class and code and its message as evidence for Classification, which decides and words it.
extension Worker {
    static func classify(_ error: GitError, hooks: TransferHooks, cachePath: String?) -> SyncFailure {
        switch hooks.failure {
        case .credentialsRefused(let message)?: return SyncFailure(.auth, "\(message) (check the token, password or key and its permissions)")
        case .noCredentials(let message)?: return SyncFailure(.auth, message)
        case .hostKey(let message)?: return SyncFailure(.hostKey, message)
        case .certificate(let message)?: return SyncFailure(.tls, message)
        case .negotiation(let message)?: return SyncFailure(.rejected, message)
        case .redirected(let message)?: return SyncFailure(.config, message)
        case .originUnconfirmed(let message)?: return SyncFailure(.network, message)
        case nil: break
        }
        let remoteSaid = hooks.serverMessages.suffix(3).joined(separator: " | ")
        let detail = remoteSaid.isEmpty ? error.message : "\(error.message) (server said: \(remoteSaid))"
        var evidence = Classification.Evidence(message: error.message, serverSaid: remoteSaid)
        evidence.credentialRefused = error.isAuth
        evidence.ssh = error.isSSH
        evidence.certificate = error.isCertificate
        evidence.network = error.isNetwork
        evidence.nonFastForward = error.isNonFastForward
        evidence.objectDatabase = error.isObjectDatabase
        evidence.objectMissing = error.isObjectDatabase && error.isNotFound
        evidence.cachePath = cachePath
        let cause = Classification.transfer(evidence)
        // A local fault is named with libgit2's own words: the server's are not about this machine.
        let local: Set<Classification.Cause> = [.diskFull, .cacheUnwritable, .cacheDamaged, .redirected, .sshKeyLocked]
        return Classification.failure(cause, detail: cause.map(local.contains) == true ? error.message : detail, cachePath: cachePath,
                                      objectMissing: evidence.objectMissing, unexplained: "\(error.function) failed: \(detail)")
    }
}
