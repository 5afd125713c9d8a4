import Foundation

/// What the caller supplies to, and learns from, one network operation.
/// The C callbacks in Callbacks.swift borrow it for the length of one call.

public enum Credential: Sendable {
    case userPassword(username: String, password: String)
    /// An OpenSSH private key held in memory, never in a file.
    case sshKey(username: String?, privateKey: String, passphrase: String?)
}

public enum HostCertificate: Sendable {
    /// An SSH server's host key: its SHA-256 digest and, when libssh2 gives it, the raw key blob.
    case sshHostKey(host: String, sha256: [UInt8], rawKey: [UInt8]?, keyType: String?)
    /// A TLS certificate and libgit2's own verdict on it.
    case x509(host: String, valid: Bool)
}

public enum CertificateVerdict: Sendable {
    /// Let libgit2 decide (its CA store and known_hosts).
    case passthrough
    /// The key matches what the configuration pins.
    case accept
    /// Refuse the connection, saying why.
    case reject(String)
}

/// One ref update as libgit2 will send it: `remoteOld` is what the server advertised.
public struct PushUpdate: Sendable {
    public let sourceRef: String
    public let destinationRef: String
    public let remoteOld: ObjectID
    public let new: ObjectID
}

/// Why a callback stopped an operation; reported instead of libgit2's generic message.
public enum CallbackFailure: Sendable, Equatable {
    case credentialsRefused(String)
    case noCredentials(String)
    case hostKey(String)
    case certificate(String)
    case negotiation(String)
    /// The configured origin sends requests elsewhere (another scheme, host or port): no credential was given.
    case redirected(String)
    /// Whether the configured origin answers for itself could not be checked: no credential was given.
    case originUnconfirmed(String)
}

/// Why a credential must not be released now.
public enum CredentialRelease: Sendable, Equatable {
    case allow
    case redirected(String)
    case unconfirmed(String)
    /// The configured origin already refused this credential: asking again would only count
    /// against the account (CodeCommit locks out repeated failures).
    case refused(String)
}

public final class TransferHooks {
    public var credential: Credential?
    /// When set, asked for the credential at the moment the server wants it
    /// (for signatures that must be fresh, such as CodeCommit's SigV4).
    public var credentialProvider: (() -> Credential?)?
    /// Asked before a username and password leave this process. libgit2 1.5 follows a redirect to
    /// another port or scheme of the same host and then answers the new server with the credential it
    /// gets here, while the callback is only ever told the configured URL; so the check must find out
    /// for itself where the configured origin sends requests.
    public var credentialRelease: ((_ username: String, _ password: String) -> CredentialRelease)?
    public var certificateCheck: (HostCertificate) -> CertificateVerdict = { _ in .passthrough }
    /// Called with a short line whenever bytes or objects move; the supervisor's stall clock.
    public var progress: (String) -> Void = { _ in }
    /// Return a message to abort the push before anything is sent.
    public var pushNegotiation: ([PushUpdate]) -> String? = { _ in nil }

    public internal(set) var credentialRequests = 0
    public internal(set) var failure: CallbackFailure?
    /// The server's verdict per pushed ref: nil means accepted.
    public internal(set) var pushStatuses: [String: String?] = [:]
    /// What the server printed on the side band ("remote: …"), for error messages.
    public var serverMessages: [String] {
        let last = partialLine.trimmingCharacters(in: .whitespaces)
        return last.isEmpty || Self.isProgress(last) || completeMessages.last == last ? completeMessages : completeMessages + [last]
    }
    private var completeMessages: [String] = []
    /// The side band splits lines anywhere ("Counting objects: (16/" + "87)"): a line is judged once whole.
    private var partialLine = ""
    public internal(set) var receivedBytes: Int = 0
    public internal(set) var pushedBytes: Int = 0
    /// When the indexer's progress was last made a line (ns, monotonic): libgit2 reports every
    /// object, and a line for each of 60,000 was a fifth of a second of a fetch's CPU.
    var lastIndexerLine: UInt64 = 0

    public init() {}

    /// What git servers print while they work: a heartbeat, never a reason.
    public static func isProgress(_ line: String) -> Bool {
        let lower = line.lowercased()
        let phases = ["counting objects", "compressing objects", "writing objects", "receiving objects", "resolving deltas",
                      "enumerating objects", "unpacking objects", "delta compression", "total ", "checking connectivity",
                      "processing changes", "finding sources"]
        return phases.contains { lower.hasPrefix($0) } || (lower.contains("%") && lower.contains("done"))
    }

    func appendServerMessage(_ text: String) {
        partialLine += text
        guard let lastBreak = partialLine.lastIndex(where: { $0 == "\n" || $0 == "\r" }) else { return }
        let whole = partialLine[...lastBreak]
        partialLine = String(partialLine[partialLine.index(after: lastBreak)...])
        for line in whole.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if !trimmed.isEmpty && !Self.isProgress(trimmed) && completeMessages.count < 200 && completeMessages.last != trimmed {
                completeMessages.append(trimmed)
            }
        }
    }
}
