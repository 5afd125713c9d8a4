import CCrypto
import Foundation

/// Message digests and HMAC, from OpenSSL's libcrypto: a security check stands on code the world
/// audits, not on a hand-written compression function.

/// SHA-1 and HMAC-SHA-1, only to match OpenSSH's hashed known_hosts entries
/// (`|1|salt|hash`), where the hash is HMAC-SHA-1 of the host name.
enum SHA1 {
    static func hash(_ message: [UInt8]) -> [UInt8] { Digests.hash(message, GITMIRROR_SHA1) }
    static func hmac(key: [UInt8], message: [UInt8]) -> [UInt8] { Digests.hmac(key: key, message: message, GITMIRROR_SHA1) }
}

/// SHA-256 and HMAC-SHA-256: SigV4, webhook signatures, LFS object ids.
enum SHA256 {
    static func hash(_ message: [UInt8]) -> [UInt8] { Digests.hash(message, GITMIRROR_SHA256) }
    static func hmac(key: [UInt8], message: [UInt8]) -> [UInt8] { Digests.hmac(key: key, message: message, GITMIRROR_SHA256) }

    /// A digest fed in pieces (an LFS object read from disk a megabyte at a time).
    struct Incremental {
        private let context = Context()

        init() {}

        mutating func update(_ bytes: UnsafeRawBufferPointer) {
            guard bytes.count > 0 else { return }
            precondition(gitmirror_digest_update(context.pointer, bytes.baseAddress, bytes.count) == 1, "EVP_DigestUpdate failed")
        }

        mutating func finish() -> [UInt8] {
            Digests.written { gitmirror_digest_finish(context.pointer, $0) }
        }

        /// Owns the EVP context and frees it with the digest.
        private final class Context {
            let pointer: UnsafeMutableRawPointer

            init() {
                guard let pointer = gitmirror_digest_begin(GITMIRROR_SHA256) else { fatalError("EVP_DigestInit_ex failed") }
                self.pointer = pointer
            }

            deinit { gitmirror_digest_free(pointer) }
        }
    }
}

private enum Digests {
    static func hash(_ message: [UInt8], _ kind: gitmirror_digest_kind) -> [UInt8] {
        written { output in message.withUnsafeBytes { gitmirror_digest(kind, $0.baseAddress, $0.count, output) } }
    }

    static func hmac(key: [UInt8], message: [UInt8], _ kind: gitmirror_digest_kind) -> [UInt8] {
        written { output in
            key.withUnsafeBytes { keyBytes in
                message.withUnsafeBytes { messageBytes in
                    gitmirror_hmac(kind, keyBytes.baseAddress, Int32(keyBytes.count), messageBytes.baseAddress, messageBytes.count, output)
                }
            }
        }
    }

    /// The bytes `compute` writes into a buffer of GITMIRROR_DIGEST_MAX, returning their count (0: OpenSSL failed).
    static func written(_ compute: (UnsafeMutablePointer<UInt8>) -> UInt32) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: Int(GITMIRROR_DIGEST_MAX))
        let length = output.withUnsafeMutableBufferPointer { compute($0.baseAddress!) }
        precondition(length > 0, "libcrypto failed to compute a digest")
        return Array(output.prefix(Int(length)))
    }
}

/// Compares two byte strings in time that depends on their length only (OpenSSL's CRYPTO_memcmp):
/// a signature check must not tell an attacker how many leading bytes were right.
func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    guard !a.isEmpty else { return true }
    return a.withUnsafeBytes { left in
        b.withUnsafeBytes { right in gitmirror_constant_time_compare(left.baseAddress, right.baseAddress, a.count) == 0 }
    }
}

extension Array where Element == UInt8 {
    var hex: String {
        let digits = Array("0123456789abcdef".utf8)
        var text = [UInt8](repeating: 0, count: count * 2)
        for (index, byte) in enumerated() {
            text[2 * index] = digits[Int(byte >> 4)]
            text[2 * index + 1] = digits[Int(byte & 0x0f)]
        }
        return String(decoding: text, as: UTF8.self)
    }
}
