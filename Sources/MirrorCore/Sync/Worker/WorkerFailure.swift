import Foundation
import Git

/// What a worker's failure was, in words a person can act on (the class from Classification).
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
        let text = error.message
        let remoteSaid = hooks.serverMessages.suffix(3).joined(separator: " | ")
        let detail = remoteSaid.isEmpty ? text : "\(text) (server said: \(remoteSaid))"
        var evidence = Classification.Evidence(message: text, serverSaid: remoteSaid)
        evidence.credentialRefused = error.isAuth
        evidence.ssh = error.isSSH
        evidence.certificate = error.isCertificate
        evidence.network = error.isNetwork
        evidence.nonFastForward = error.isNonFastForward
        evidence.objectDatabase = error.isObjectDatabase
        evidence.cachePath = cachePath
        switch Classification.transfer(evidence) {
        case .redirected?:
            return SyncFailure(.config, "the server redirected elsewhere (\(text)); gitmirror sends credentials and pushes only to the configured scheme, host and port. Put the final URL in mirrors.yaml")
        case .sshKeyLocked?:
            return SyncFailure(.auth, "the SSH key could not be unlocked (\(text)): check ssh_key_passphrase_env or ssh_key_passphrase_file, or that ssh_key is an unencrypted ed25519 key")
        case .credentialRefused?:
            return SyncFailure(.auth, "authentication failed: \(detail)")
        case .hostKeyUntrusted?:
            return SyncFailure(.hostKey, "the SSH host key is not trusted by known_hosts: \(detail)")
        case let local? where [.diskFull, .cacheUnwritable, .cacheDamaged].contains(local):
            return Self.localFailure(local, text, cachePath: cachePath)
        case .tooLarge?:
            return SyncFailure(.tooLarge, "the server refused the size of the push: \(detail); push the history in smaller steps, or raise the server's limit (receive.maxInputSize, the host's push size limit)")
        case .readOnly?:
            return SyncFailure(.readOnly, "the server serves this repository read-only: \(detail)")
        case .notFound?:
            return SyncFailure(.notFound, "the repository does not exist or is not visible to these credentials: \(detail)")
        case .tls?:
            return SyncFailure(.tls, "TLS verification failed: \(detail)")
        case .nonFastForward?:
            return SyncFailure(.rejected, "not a fast-forward: \(detail)")
        case .network?:
            return SyncFailure(.network, "\(detail)")
        default:
            return SyncFailure(.internal, "\(error.function) failed: \(detail)")
        }
    }

    /// Faults of this machine rather than of the server: the cache's permissions, a full disk, damaged objects.
    static func localFault(_ text: String, cachePath: String?, objectDatabase: Bool = false) -> SyncFailure? {
        var evidence = Classification.Evidence(message: text)
        evidence.cachePath = cachePath
        evidence.objectDatabase = objectDatabase
        return Classification.localFault(evidence).map { localFailure($0, text, cachePath: cachePath) }
    }

    /// The words for a local fault: where, and what to do.
    static func localFailure(_ cause: Classification.Cause, _ text: String, cachePath: String?) -> SyncFailure {
        let place = cachePath ?? "the cache"
        switch cause {
        case .diskFull:
            return SyncFailure(.internal, "no space left on the device holding \(place) (state_dir): free space there, then sync again")
        case .cacheUnwritable:
            return SyncFailure(.config, "\(CacheAccess.describe(place)); run gitmirror as the user who owns state_dir, or give that user access to it")
        default:
            // A suspicion only: the supervisor verifies the cache before it calls it damaged.
            return SyncFailure(.internal, "reading the cache \(place) failed: \(text)", cacheDamage: text)
        }
    }

}
