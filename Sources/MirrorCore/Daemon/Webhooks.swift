import Foundation

/// Checks that a webhook came from who it says: GitHub's and Gitea's HMAC-SHA256
/// signatures, GitLab's shared token, and a bearer token for the sync API.
public enum Webhooks {
    /// `X-Hub-Signature-256: sha256=<hex>` (GitHub) or `X-Gitea-Signature: <hex>` (Gitea).
    public static func verifyHMAC(body: [UInt8], signature: String?, secret: String) -> Bool {
        guard var given = signature?.trimmingCharacters(in: .whitespaces).lowercased(), !secret.isEmpty else { return false }
        if given.hasPrefix("sha256=") { given.removeFirst("sha256=".count) }
        let expected = SHA256.hmac(key: Array(secret.utf8), message: body).hex
        return constantTimeEqual(Array(given.utf8), Array(expected.utf8))
    }

    /// A shared token (GitLab's `X-Gitlab-Token`, or `Authorization: Bearer …`).
    public static func verifyToken(_ given: String?, secret: String) -> Bool {
        guard var given, !secret.isEmpty else { return false }
        if given.lowercased().hasPrefix("bearer ") { given.removeFirst("bearer ".count) }
        // Compared as digests, so that the time taken says nothing of the secret's length either.
        return constantTimeEqual(SHA256.hash(Array(given.utf8)), SHA256.hash(Array(secret.utf8)))
    }

    /// The largest hook body read (GitHub caps its payloads at 25 MB).
    public static let maxBodySize = 25 << 20

    /// What identifies a delivery: the forge's delivery id, and the signed body itself (the id travels
    /// in a header no signature covers, so a replay with a new id is still the same body).
    static func deliveryKeys(source: String, id: String?, body: [UInt8]) -> [String] {
        var keys = ["\(source) body \(SHA256.hash(body).hex)"]
        if let id, !id.isEmpty { keys.insert("\(source) \(String(id.prefix(100)))", at: 0) }
        return keys
    }

    /// The signature the daemon puts on its own notifications (`X-Gitmirror-Signature-256`).
    public static func sign(_ body: [UInt8], secret: String) -> String {
        "sha256=" + SHA256.hmac(key: Array(secret.utf8), message: body).hex
    }

    /// The repository URLs a push event names (GitHub, GitLab and Gitea payloads).
    public static func repositoryURLs(in body: [UInt8]) -> [String] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else { return [] }
        var urls: [String] = []
        for key in ["repository", "project"] {
            guard let repository = object[key] as? [String: Any] else { continue }
            for field in ["clone_url", "ssh_url", "git_url", "html_url", "url", "git_http_url", "git_ssh_url", "http_url", "web_url"] {
                if let url = repository[field] as? String { urls.append(url) }
            }
        }
        return urls
    }

    /// How a payload names its repository, for the log: `full_name` (GitHub, Gitea),
    /// `path_with_namespace` (GitLab), else its first URL without any user or password.
    public static func repositoryLabel(in body: [UInt8]) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else { return nil }
        for key in ["repository", "project"] {
            guard let repository = object[key] as? [String: Any] else { continue }
            for field in ["full_name", "path_with_namespace"] {
                if let name = repository[field] as? String { return String(name.prefix(200)) }
            }
        }
        guard let first = repositoryURLs(in: body).first else { return nil }
        guard var parts = URLComponents(string: first) else { return nil }
        parts.user = nil
        parts.password = nil
        return parts.string.map { String($0.prefix(200)) }
    }
}
