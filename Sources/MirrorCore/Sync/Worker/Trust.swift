import Foundation
import Synchronization
import Git

/// Whom a worker trusts: SSH host keys against known_hosts, TLS against the system's CAs and `ca_file`.
extension Worker {
    /// SSH host keys are decided here, against known_hosts, so that a refusal
    /// can name the host and the key's fingerprint. TLS is libgit2's to judge.
    static func verdict(_ certificate: HostCertificate, _ endpoint: Endpoint) -> CertificateVerdict {
        guard case let .sshHostKey(host, sha256, rawKey, keyType) = certificate else { return .passthrough }
        let name = endpoint.knownHostsName ?? host
        let fingerprint = KnownHosts.fingerprint(sha256: sha256)
        let file = endpoint.knownHostsFile ?? (NSHomeDirectory() as NSString).appendingPathComponent(".ssh/known_hosts")
        let type = keyType ?? "unknown type"
        guard let contents = try? String(contentsOfFile: file, encoding: .utf8) else {
            return .reject("unknown SSH host key for \(name) (\(type) \(fingerprint)): \(file) cannot be read; add the host's key with ssh-keyscan")
        }
        switch KnownHosts(contents: contents).check(host: name, key: rawKey) {
        case .trusted:
            return .accept
        case .unknownHost:
            return .reject("unknown SSH host key for \(name) (\(type) \(fingerprint)): it is not in \(file); verify the fingerprint, then add it with ssh-keyscan")
        case .mismatch:
            return .reject("the SSH host key of \(name) does not match \(file): the server presents \(type) \(fingerprint). It may have been replaced, or someone may be intercepting the connection; do not proceed until the new key is confirmed")
        case .revoked:
            return .reject("the SSH host key of \(name) (\(fingerprint)) is marked @revoked in \(file)")
        }
    }

    /// The trust stores of the jobs under way (a worker serves one `ca_file`, see WorkerPool).
    static let bundles = CertificateBundles()

    /// libgit2 (mbedTLS) replaces its CA store with the file it is given, so the
    /// extra CA is appended to the system bundle in a temporary file.
    static func certificateBundle(adding caFile: String) throws -> URL {
        var pem = (try? String(contentsOfFile: "/etc/ssl/certs/ca-certificates.crt", encoding: .utf8)) ?? ""
        guard let extra = try? String(contentsOfFile: caFile, encoding: .utf8) else {
            throw SyncFailure(.config, "ca_file \(caFile) cannot be read")
        }
        pem += "\n" + extra + "\n"
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("gitmirror-ca-\(getpid())-\(UUID().uuidString).pem")
        try pem.write(to: url, atomically: false, encoding: .utf8)
        return url
    }
}

/// The temporary trust stores (system CAs plus `ca_file`) of the jobs under way: made and given to
/// libgit2 by the first job that needs one, shared by the jobs that run beside it, removed by the last.
/// libgit2's store is process-wide, which is why a worker never serves two `ca_file`s.
final class CertificateBundles: Sendable {
    private let bundles = Mutex<[String: (url: URL, users: Int)]>([:])

    func acquire(_ caFile: String) throws -> URL {
        try bundles.withLock { bundles in
            if let held = bundles[caFile] {
                bundles[caFile] = (held.url, held.users + 1)
                return held.url
            }
            let url = try Worker.certificateBundle(adding: caFile)
            do {
                try Libgit2.setCertificateFile(url.path)
            } catch {
                try? FileManager.default.removeItem(at: url)
                throw error
            }
            bundles[caFile] = (url, 1)
            return url
        }
    }

    func release(_ caFile: String) {
        bundles.withLock { bundles in
            guard let held = bundles[caFile] else { return }
            if held.users > 1 {
                bundles[caFile] = (held.url, held.users - 1)
            } else {
                bundles[caFile] = nil
                try? FileManager.default.removeItem(at: held.url)
            }
        }
    }
}
