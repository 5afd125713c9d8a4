import Foundation
import Testing
@testable import MirrorCore

@Suite struct RemoteURLTests {
    let base = URL(fileURLWithPath: "/etc/gitmirror")

    @Test func parsesEveryForm() throws {
        let https = try RemoteURL.parse("https://git.example.com:8443/acme/app.git", relativeTo: base)
        #expect(https.scheme == .https && https.host == "git.example.com" && https.port == 8443 && https.path == "/acme/app.git")
        let ssh = try RemoteURL.parse("ssh://git@backup.internal:2222/srv/app.git", relativeTo: base)
        #expect(ssh.user == "git" && ssh.knownHostsName == "[backup.internal]:2222")
        let scp = try RemoteURL.parse("git@github.com:acme/app.git", relativeTo: base)
        #expect(scp.scheme == .ssh && scp.host == "github.com" && scp.path == "acme/app.git" && scp.knownHostsName == "github.com")
        let local = try RemoteURL.parse("../repos/app.git", relativeTo: base)
        #expect(local.scheme == .file && local.gitURL == "/etc/repos/app.git")
        #expect(try RemoteURL.parse("git://127.0.0.1:9418/app.git", relativeTo: base).scheme == .git)
    }

    @Test func rejectsSecretsInURLs() {
        #expect(throws: RemoteURL.ParseError.passwordInURL) { try RemoteURL.parse("https://bot:s3cret@example.com/a.git", relativeTo: base) }
        #expect(throws: RemoteURL.ParseError.tokenInQuery("private_token")) { try RemoteURL.parse("https://example.com/a.git?private_token=x", relativeTo: base) }
    }

    @Test func identityIgnoresSchemeUserAndGitSuffix() throws {
        let a = try RemoteURL.parse("https://git.example.com/acme/app.git", relativeTo: base)
        let b = try RemoteURL.parse("git@git.example.com:/acme/app", relativeTo: base)
        #expect(a.identity == b.identity)
    }
}

@Suite struct RedactorTests {
    @Test func scrubsRegisteredSecretsUserinfoAndQueryTokens() {
        let redactor = Redactor()
        redactor.register("canary-secret-123")
        let text = redactor.redact("failed with canary-secret-123 at https://bot:pw@example.com/x.git?access_token=abc&x=1")
        #expect(!text.contains("canary-secret-123") && !text.contains(":pw@") && !text.contains("abc"))
        #expect(text.contains("https://bot:***@example.com") && text.contains("access_token=***&x=1"))
    }
}

@Suite struct KnownHostsTests {
    // An ed25519 key blob (type string + 32 bytes), base64-encoded.
    let key = "AAAAC3NzaC1lZDI1NTE5AAAAIHMyb2hJmX8P9PWc8GMv2qiUXNnjGNcsoHcSbzuN2nLD"
    var blob: [UInt8] { Array(Data(base64Encoded: key)!) }

    @Test func trustsAPlainEntryAndRefusesAnotherKey() {
        let hosts = KnownHosts(contents: "[git.example.com]:2222,other ssh-ed25519 \(key)\n")
        #expect(hosts.check(host: "[git.example.com]:2222", key: blob) == .trusted)
        #expect(hosts.check(host: "[git.example.com]:2222", key: blob.reversed()) == .mismatch)
        #expect(hosts.check(host: "git.example.com", key: blob) == .unknownHost)
    }

    @Test func matchesHashedHostNames() {
        // |1|salt|HMAC-SHA1(salt, "github.com") as OpenSSH writes it with HashKnownHosts
        let salt = Data((0..<20).map { UInt8($0) })
        let hash = Data(SHA1.hmac(key: Array(salt), message: Array("github.com".utf8)))
        let hosts = KnownHosts(contents: "|1|\(salt.base64EncodedString())|\(hash.base64EncodedString()) ssh-ed25519 \(key)\n")
        #expect(hosts.check(host: "github.com", key: blob) == .trusted)
        #expect(hosts.check(host: "gitlab.com", key: blob) == .unknownHost)
    }

    @Test func sha1MatchesTheStandardVector() {
        let digest = SHA1.hash(Array("abc".utf8)).map { String(format: "%02x", $0) }.joined()
        #expect(digest == "a9993e364706816aba3e25717850c26c9cd0d89d")
    }
}
