import Foundation

/// An OpenSSH known_hosts file, read to decide whether an SSH server's host key is the one we trust.
public struct KnownHosts: Sendable {
    struct Entry: Sendable {
        var patterns: [String]
        var hashed: (salt: [UInt8], hash: [UInt8])?
        var keyType: String
        var key: [UInt8]
        var revoked: Bool
    }

    var entries: [Entry] = []

    public init(contents: String) {
        for rawLine in contents.split(whereSeparator: \.isNewline) {
            var fields = rawLine.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard let first = fields.first, !first.hasPrefix("#") else { continue }
            var revoked = false
            if first.hasPrefix("@") {
                guard first == "@revoked" else { continue }   // @cert-authority: certificates are not supported
                revoked = true
                fields.removeFirst()
            }
            guard fields.count >= 3, let key = Data(base64Encoded: fields[2]) else { continue }
            var entry = Entry(patterns: [], hashed: nil, keyType: fields[1], key: Array(key), revoked: revoked)
            if fields[0].hasPrefix("|1|") {
                let parts = fields[0].split(separator: "|")
                if parts.count == 3, let salt = Data(base64Encoded: String(parts[1])), let hash = Data(base64Encoded: String(parts[2])) {
                    entry.hashed = (Array(salt), Array(hash))
                }
            } else {
                entry.patterns = fields[0].split(separator: ",").map(String.init)
            }
            entries.append(entry)
        }
    }

    public enum Verdict: Equatable, Sendable {
        case trusted
        case unknownHost
        case mismatch
        case revoked
    }

    /// Compares the key a server presented with the entries for `host` (`host` or `[host]:port`).
    public func check(host: String, key: [UInt8]?) -> Verdict {
        let matching = entries.filter { matches($0, host) }
        // libssh2 hands over the raw key; without it nothing can be compared, and nothing is trusted.
        func same(_ entry: Entry) -> Bool { key != nil && entry.key == key }
        if matching.contains(where: { $0.revoked && same($0) }) { return .revoked }
        if matching.contains(where: { !$0.revoked && same($0) }) { return .trusted }
        return matching.contains(where: { !$0.revoked }) ? .mismatch : .unknownHost
    }

    func matches(_ entry: Entry, _ host: String) -> Bool {
        if let hashed = entry.hashed {
            return SHA1.hmac(key: hashed.salt, message: Array(host.utf8)) == hashed.hash
        }
        var positive = false
        for pattern in entry.patterns {
            if pattern.hasPrefix("!") {
                if wildcard(String(pattern.dropFirst()), host) { return false }
            } else if wildcard(pattern, host) {
                positive = true
            }
        }
        return positive
    }

    func wildcard(_ pattern: String, _ text: String) -> Bool {
        let p = Array(pattern.lowercased()), t = Array(text.lowercased())
        func match(_ i: Int, _ j: Int) -> Bool {
            if i == p.count { return j == t.count }
            if p[i] == "*" { return (j...t.count).contains { match(i + 1, $0) } }
            guard j < t.count else { return false }
            return (p[i] == "?" || p[i] == t[j]) && match(i + 1, j + 1)
        }
        return match(0, 0)
    }

    /// OpenSSH's form: `SHA256:` and unpadded base64.
    public static func fingerprint(sha256: [UInt8]) -> String {
        "SHA256:" + Data(sha256).base64EncodedString().replacingOccurrences(of: "=", with: "")
    }
}
