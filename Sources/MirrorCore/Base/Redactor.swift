import Foundation
import Synchronization

/// Scrubs secrets from any text before it reaches a log, SQLite, an error or the terminal.
public final class Redactor: Sendable {
    static let secretQueryKeys: Set<String> = [
        "token", "access_token", "private_token", "password", "passwd", "secret", "api_key", "apikey",
        "x-amz-security-token", "x-amz-signature", "sig", "signature", "auth",
    ]
    private let secrets = Mutex<Set<String>>([])

    public init() {}

    /// Remembers a secret value so that it is replaced wherever it appears.
    public func register(_ secret: String) {
        let trimmed = secret.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.count >= 4 else { return }
        secrets.withLock { _ = $0.insert(trimmed) }
    }

    public func redact(_ text: String) -> String {
        let known = secrets.withLock { $0.sorted { $0.count > $1.count } }
        var result = text
        for secret in known where result.contains(secret) {
            result = result.replacingOccurrences(of: secret, with: "***")
        }
        result = Self.scrubUserinfo(result)
        result = Self.scrubQuery(result)
        return result
    }

    /// `scheme://user:password@host` → `scheme://user:***@host`.
    static func scrubUserinfo(_ text: String) -> String {
        // Only text with a password in a URL has `:` then `@` after `://`.
        guard let scheme = text.range(of: "://"), text[scheme.upperBound...].contains("@"), let regex = userinfoRegex else { return text }
        let range = NSRange(text.startIndex..., in: text)
        return regex.stringByReplacingMatches(in: text, range: range, withTemplate: "$1:***@")
    }

    static func scrubQuery(_ text: String) -> String {
        guard text.contains("="), let regex = queryRegex else { return text }
        let range = NSRange(text.startIndex..., in: text)
        return regex.stringByReplacingMatches(in: text, range: range, withTemplate: "$1***")
    }

    // Compiled once (every outcome recorded is redacted): NSRegularExpression is immutable once made,
    // Sendable, and safe to match from any thread.
    private static let userinfoRegex = try? NSRegularExpression(pattern: #"([A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*):[^/\s@]*@"#)
    private static let queryRegex: NSRegularExpression? = {
        let keys = secretQueryKeys.map(NSRegularExpression.escapedPattern(for:)).joined(separator: "|")
        return try? NSRegularExpression(pattern: "([?&](?:\(keys))=)[^&\\s]*", options: [.caseInsensitive])
    }()
}
