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

    /// `scheme://user:password@host` → `scheme://user:***@host`: what
    /// `([A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*):[^/\s@]*@` → `$1:***@` does, scanned by hand. Every
    /// process redacts what it records, and NSRegularExpression is ICU's regex engine: its code,
    /// Unicode property tables and locale data were ~3 MiB of every process's memory.
    static func scrubUserinfo(_ text: String) -> String {
        // Only text with a password in a URL has `:` then `@` after `://`.
        guard let scheme = text.range(of: "://"), text[scheme.upperBound...].contains("@") else { return text }
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var copied = 0, index = 0
        while index + 3 <= bytes.count {
            guard bytes[index] == UInt8(ascii: ":"), bytes[index + 1] == UInt8(ascii: "/"), bytes[index + 2] == UInt8(ascii: "/"),
                  schemeHasLetter(bytes, before: index) else { index += 1; continue }
            // user: up to the first `/`, space, `:` or `@`, which must be `:`.
            var colon = index + 3
            while colon < bytes.count, !isSpace(bytes[colon]), !"/:@".utf8.contains(bytes[colon]) { colon += 1 }
            guard colon < bytes.count, bytes[colon] == UInt8(ascii: ":") else { index += 3; continue }
            // password: up to the first `/`, space or `@`, which must be `@`.
            var at = colon + 1
            while at < bytes.count, !isSpace(bytes[at]), !"/@".utf8.contains(bytes[at]) { at += 1 }
            guard at < bytes.count, bytes[at] == UInt8(ascii: "@") else { index += 3; continue }
            out += bytes[copied...colon]
            out += Array("***".utf8)
            copied = at
            index = at + 1
        }
        out += bytes[copied...]
        return String(decoding: out, as: UTF8.self)
    }

    /// `?token=abc&x=1` → `?token=***&x=1` for every key in `secretQueryKeys`, in any case: what
    /// `([?&](?:keys)=)[^&\s]*` → `$1***` (case-insensitive) does, scanned by hand.
    static func scrubQuery(_ text: String) -> String {
        guard text.contains("=") else { return text }
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var copied = 0, index = 0
        while index < bytes.count {
            guard bytes[index] == UInt8(ascii: "?") || bytes[index] == UInt8(ascii: "&") else { index += 1; continue }
            var equals = index + 1
            while equals < bytes.count, equals - index <= 3 * longestQueryKey, bytes[equals] != UInt8(ascii: "=") { equals += 1 }
            guard equals < bytes.count, bytes[equals] == UInt8(ascii: "="),
                  secretQueryKeyBytes.contains(folded(bytes[(index + 1)..<equals])) else { index += 1; continue }
            var end = equals + 1
            while end < bytes.count, bytes[end] != UInt8(ascii: "&"), !isSpace(bytes[end]) { end += 1 }
            out += bytes[copied...equals]
            out += Array("***".utf8)
            copied = end
            index = end
        }
        guard copied > 0 else { return text }
        out += bytes[copied...]
        return String(decoding: out, as: UTF8.self)
    }

    private static let secretQueryKeyBytes = Set(secretQueryKeys.map { Array($0.utf8) })
    private static let longestQueryKey = secretQueryKeys.map(\.utf8.count).max() ?? 0

    /// The run of scheme characters (`A-Za-z0-9+.-`) that ends at `end` holds a letter: a scheme
    /// starts with one.
    private static func schemeHasLetter(_ bytes: [UInt8], before end: Int) -> Bool {
        var index = end - 1
        while index >= 0 {
            let byte = bytes[index]
            if isLetter(byte) { return true }
            guard isDigit(byte) || byte == UInt8(ascii: "+") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-") else { return false }
            index -= 1
        }
        return false
    }

    private static func isLetter(_ byte: UInt8) -> Bool { (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z") }
    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
    private static func lowercased(_ byte: UInt8) -> UInt8 { byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte }
    /// A key as a case-insensitive match sees it: ASCII lowercased, and the two characters Unicode
    /// folds into an ASCII letter, `ſ` (U+017F) to `s` and the Kelvin sign (U+212A) to `k`.
    private static func folded(_ name: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        var index = name.startIndex
        while index < name.endIndex {
            if name[index] == 0xC5, index + 1 < name.endIndex, name[index + 1] == 0xBF {
                out.append(UInt8(ascii: "s")); index += 2
            } else if name[index] == 0xE2, index + 2 < name.endIndex, name[index + 1] == 0x84, name[index + 2] == 0xAA {
                out.append(UInt8(ascii: "k")); index += 3
            } else {
                out.append(lowercased(name[index])); index += 1
            }
        }
        return out
    }
    /// `\s` for the bytes a URL is made of: ASCII white space. The bytes of other characters count
    /// as part of a user, password or value, which only redacts more than ICU's `\s` would.
    private static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || (byte >= 0x09 && byte <= 0x0D) }
}
