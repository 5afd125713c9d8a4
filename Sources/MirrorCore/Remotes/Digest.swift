import CCrypto
import Foundation

/// Message digests and HMAC, from OpenSSL's libcrypto: a security check stands on code the world
/// audits, not on a hand-written compression function.

/// SHA-1 and HMAC-SHA-1, only to match OpenSSH's hashed known_hosts entries
/// (`|1|salt|hash`), where the hash is HMAC-SHA-1 of the host name.
enum SHA1 {
    static func hash(_ message: [UInt8]) -> [UInt8] { Digests.hash(message, EVP_sha1()) }
    static func hmac(key: [UInt8], message: [UInt8]) -> [UInt8] { Digests.hmac(key: key, message: message, EVP_sha1()) }
}

/// SHA-256 and HMAC-SHA-256: SigV4, webhook signatures, LFS object ids.
enum SHA256 {
    static func hash(_ message: [UInt8]) -> [UInt8] { Digests.hash(message, EVP_sha256()) }
    static func hmac(key: [UInt8], message: [UInt8]) -> [UInt8] { Digests.hmac(key: key, message: message, EVP_sha256()) }

    /// A digest fed in pieces (an LFS object read from disk a megabyte at a time).
    struct Incremental {
        private let context = Context()

        init() {}

        mutating func update(_ bytes: UnsafeRawBufferPointer) {
            guard bytes.count > 0 else { return }
            precondition(EVP_DigestUpdate(context.pointer, bytes.baseAddress, bytes.count) == 1, "EVP_DigestUpdate failed")
        }

        mutating func finish() -> [UInt8] {
            var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
            var length: UInt32 = 0
            precondition(EVP_DigestFinal_ex(context.pointer, &output, &length) == 1, "EVP_DigestFinal_ex failed")
            return Array(output.prefix(Int(length)))
        }

        /// Owns the EVP context and frees it with the digest.
        private final class Context {
            let pointer: OpaquePointer

            init() {
                guard let pointer = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new: out of memory") }
                precondition(EVP_DigestInit_ex(pointer, EVP_sha256(), nil) == 1, "EVP_DigestInit_ex failed")
                self.pointer = pointer
            }

            deinit { EVP_MD_CTX_free(pointer) }
        }
    }
}

private enum Digests {
    static func hash(_ message: [UInt8], _ type: OpaquePointer?) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let done = message.withUnsafeBytes { EVP_Digest($0.baseAddress, $0.count, &output, &length, type, nil) }
        precondition(done == 1, "EVP_Digest failed")
        return Array(output.prefix(Int(length)))
    }

    static func hmac(key: [UInt8], message: [UInt8], _ type: OpaquePointer?) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        // HMAC() takes a NULL key as "no key"; an empty key is a valid (if useless) key of length 0.
        let done = key.withUnsafeBytes { keyBytes in
            message.withUnsafeBytes { messageBytes in
                HMAC(type, keyBytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(keyBytes.count),
                     messageBytes.baseAddress?.assumingMemoryBound(to: UInt8.self), messageBytes.count, &output, &length)
            }
        }
        precondition(done != nil, "HMAC failed")
        return Array(output.prefix(Int(length)))
    }
}

/// Compares two byte strings in time that depends on their length only (OpenSSL's CRYPTO_memcmp):
/// a signature check must not tell an attacker how many leading bytes were right.
func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    guard !a.isEmpty else { return true }
    return a.withUnsafeBytes { left in b.withUnsafeBytes { right in CRYPTO_memcmp(left.baseAddress, right.baseAddress, a.count) == 0 } }
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
