import Foundation

/// What kind of private key an `ssh_key` file holds, read from its unencrypted header,
/// so that `validate` refuses a key the SSH transport cannot sign with.
enum SSHKeyFile {
    /// The key's algorithm name (`ssh-ed25519`, `ssh-rsa`, …), or nil when the file is not a key we can read.
    /// The armour line of a PEM block holding a private key of this kind ("RSA", "OPENSSH", …).
    static func armour(_ edge: String, _ kind: String) -> String { "-----\(edge) \(kind) PRIVATE KEY-----" }

    static func algorithm(of contents: String) -> String? {
        for (kind, algorithm) in [("RSA", "ssh-rsa"), ("DSA", "ssh-dss"), ("EC", "ecdsa")] where contents.contains(armour("BEGIN", kind)) {
            return algorithm
        }
        guard let begin = contents.range(of: armour("BEGIN", "OPENSSH")),
              let end = contents.range(of: armour("END", "OPENSSH"), range: begin.upperBound..<contents.endIndex) else { return nil }
        let body = contents[begin.upperBound..<end.lowerBound].filter { !$0.isWhitespace }
        guard let data = Data(base64Encoded: String(body)) else { return nil }
        // openssh-key-v1\0, then strings: cipher, kdf, kdf options; a count; the first public key,
        // whose first string is its algorithm. None of that is encrypted, even with a passphrase.
        var reader = Reader(bytes: [UInt8](data))
        guard reader.take(15) == Array("openssh-key-v1\0".utf8) else { return nil }
        for _ in 0..<3 { guard reader.string() != nil else { return nil } }
        guard let count = reader.uint32(), count >= 1, let publicKey = reader.string() else { return nil }
        var inner = Reader(bytes: publicKey)
        return inner.string().map { String(decoding: $0, as: UTF8.self) }
    }

    /// Why this key file cannot be used by the SSH transport (libssh2 1.10), or nil when it can.
    static func refusal(at url: URL) -> String? {
        guard let contents = try? String(contentsOf: url, encoding: .utf8), let algorithm = algorithm(of: contents) else { return nil }
        let fix = "make an ed25519 key (ssh-keygen -t ed25519 -f \(url.lastPathComponent)), add its .pub to the server, and name it here"
        switch algorithm {
        case "ssh-rsa":
            return "ssh_key '\(url.path)' is an RSA key: libssh2 1.10, which gitmirror's SSH transport uses, can only sign with ssh-rsa (SHA-1), which OpenSSH 8.8 and later servers refuse; \(fix)"
        case "ssh-dss":
            return "ssh_key '\(url.path)' is a DSA key, which current SSH servers refuse; \(fix)"
        default:
            return nil
        }
    }

    private struct Reader {
        let bytes: [UInt8]
        var offset = 0

        mutating func take(_ count: Int) -> [UInt8]? {
            guard count >= 0, offset + count <= bytes.count else { return nil }
            defer { offset += count }
            return Array(bytes[offset..<offset + count])
        }

        mutating func uint32() -> UInt32? {
            take(4).map { $0.reduce(0) { $0 << 8 | UInt32($1) } }
        }

        mutating func string() -> [UInt8]? {
            uint32().flatMap { take(Int($0)) }
        }
    }
}
