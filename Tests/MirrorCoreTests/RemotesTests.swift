import Foundation
import Testing
import TestSupport
@testable import MirrorCore

@Suite(.onTestThreads) struct RemoteURLTests {
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

    @Test func refusesEveryQueryStringDecodedFirst() {
        for url in ["https://example.com/a.git?key=abc", "https://example.com/a.git?oauth_token=abc", "https://example.com/a.git?api-key=abc",
                    "https://example.com/a.git?private-token=abc", "https://example.com/a.git?access%5Ftoken=abc"] {
            #expect(throws: RemoteURL.ParseError.self, "\(url)") { try RemoteURL.parse(url, relativeTo: base) }
        }
        #expect(throws: RemoteURL.ParseError.tokenInQuery("access_token")) { try RemoteURL.parse("https://example.com/a.git?access%5Ftoken=abc", relativeTo: base) }
        #expect(throws: RemoteURL.ParseError.queryString) { try RemoteURL.parse("https://example.com/a.git?ref=main", relativeTo: base) }
    }

    @Test func refusesATokenAsTheUserName() {
        for user in ["ghp_Example0123456789abcdefABCDEF0123", "github_pat_11ABCDEFG0123456789", "glpat-Abcdefghij0123456789", "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3",
                     "Zx81Qw93Lm47Tn62Rb05Kd"] {
            #expect(throws: RemoteURL.ParseError.tokenAsUser, "\(user)") { try RemoteURL.parse("https://\(user)@example.com/a.git", relativeTo: base) }
        }
        // People's and bots' names are not tokens.
        #expect(throws: Never.self) { try RemoteURL.parse("https://mirror-bot-payments-team@example.com/a.git", relativeTo: base) }
        #expect(throws: Never.self) { try RemoteURL.parse("ssh://git@example.com/a.git", relativeTo: base) }
    }

    @Test func printedFormDropsUserinfoButAPlainSSHUser() throws {
        #expect(try RemoteURL.parse("https://mirror-bot@example.com/a.git", relativeTo: base).display == "https://example.com/a.git")
        #expect(try RemoteURL.parse("https://mirror-bot@example.com/a.git", relativeTo: base).description == "https://example.com/a.git")
        #expect(try RemoteURL.parse("ssh://git@example.com/a.git", relativeTo: base).display == "ssh://git@example.com/a.git")
        #expect(try RemoteURL.parse("git@example.com:a.git", relativeTo: base).display == "git@example.com:a.git")
    }

    @Test func refusesHelperTransports() {
        for url in ["ext::sh -c touch% /tmp/pwned", "fd::17", "fd::3,4/x"] {
            #expect(throws: RemoteURL.ParseError.self, "\(url)") { try RemoteURL.parse(url, relativeTo: base) }
        }
        #expect(throws: RemoteURL.ParseError.helperTransport("ext")) { try RemoteURL.parse("ext::ssh -i key host %S repo", relativeTo: base) }
    }

    @Test func identityFoldsDefaultPortsHostCaseAndSlashesButKeepsOtherPorts() throws {
        let a = try RemoteURL.parse("https://Git.Example.com:443/acme/app.git/", relativeTo: base)
        let b = try RemoteURL.parse("https://git.example.com/acme/app", relativeTo: base)
        let c = try RemoteURL.parse("https://git.example.com:8443/acme/app", relativeTo: base)
        #expect(a.identity == b.identity)
        #expect(b.identity != c.identity)
    }

    @Test func identityIgnoresSchemeUserAndGitSuffix() throws {
        let a = try RemoteURL.parse("https://git.example.com/acme/app.git", relativeTo: base)
        let b = try RemoteURL.parse("git@git.example.com:/acme/app", relativeTo: base)
        #expect(a.identity == b.identity)
    }
}

@Suite(.onTestThreads) struct RedactorTests {
    @Test func scrubsRegisteredSecretsUserinfoAndQueryTokens() {
        let redactor = Redactor()
        redactor.register("canary-secret-123")
        let text = redactor.redact("failed with canary-secret-123 at https://bot:pw@example.com/x.git?access_token=abc&x=1")
        #expect(!text.contains("canary-secret-123") && !text.contains(":pw@") && !text.contains("abc"))
        #expect(text.contains("https://bot:***@example.com") && text.contains("access_token=***&x=1"))
    }

    /// The scrubbers scan by hand what two regular expressions said: they must agree with them.
    @Test func scrubbersAgreeWithTheExpressionsTheyReplace() throws {
        let userinfo = try NSRegularExpression(pattern: #"([A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*):[^/\s@]*@"#)
        let keys = Redactor.secretQueryKeys.map(NSRegularExpression.escapedPattern(for:)).joined(separator: "|")
        let query = try NSRegularExpression(pattern: "([?&](?:\(keys))=)[^&\\s]*", options: [.caseInsensitive])
        func expected(_ regex: NSRegularExpression, _ text: String, _ template: String) -> String {
            regex.stringByReplacingMatches(in: text, range: NSRange(text.startIndex..., in: text), withTemplate: template)
        }
        let samples = [
            "https://bot:pw@example.com/x.git", "ssh://git@host:22/x", "git+ssh://a:b@h/x and http://c:d@e/f",
            "1https://a:b@h", "123://a:b@h", "x://u:pa+b://c:d@h", "a://u:p@://x:y@", "https://a:b c@h",
            "https://a:b/c@h", "https://user:p:a:ss@h/", "https://:secret@h", "https://u:@h", "no url here @ all",
            "https://u:p@h https://v:q@i", "clone https://t\tx:y@h", "schéme://u:p@h", "https://ü:p@h", "://u:p@h",
            "https://x.com/a?token=abc&x=1", "?TOKEN=abc", "&Access_Token=abc def", "?tokens=abc", "?sig=1&signature=2",
            "&&token=x", "?tok&token=x", "?x-amz-signature=abc&x-amz-security-token=def", "?password=", "?auth=a b",
            "https://h/?api_key=k&apikey=l&passwd=m&secret=n&private_token=o", "?token=a?token=b", "token=abc",
            "?тoken=abc", "?token=ab\ncd", "?auth=", "=", "?==", "?ſecret=abc", "?api_\u{212A}ey=abc&x=1", "?ſig=1",
        ]
        for sample in samples {
            #expect(Redactor.scrubUserinfo(sample) == expected(userinfo, sample, "$1:***@"), "\(sample)")
            #expect(Redactor.scrubQuery(sample) == expected(query, sample, "$1***"), "\(sample)")
        }
    }
}

@Suite(.onTestThreads) struct KnownHostsTests {
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

    @Test func negatedAndWildcardPatternsFollowOpenSSH() {
        // A wildcard entry for a domain that excludes one host of it, and a ? pattern
        let hosts = KnownHosts(contents: "*.example.com,!build.example.com ssh-ed25519 \(key)\ngit?.example.org ssh-ed25519 \(key)\n")
        #expect(hosts.check(host: "git.example.com", key: blob) == .trusted)
        #expect(hosts.check(host: "a.b.example.com", key: blob) == .trusted)
        // A negated match wins over the positive one on the same line: that host is unknown, not trusted
        #expect(hosts.check(host: "build.example.com", key: blob) == .unknownHost)
        #expect(hosts.check(host: "example.com", key: blob) == .unknownHost)
        #expect(hosts.check(host: "git1.example.org", key: blob) == .trusted)
        #expect(hosts.check(host: "git12.example.org", key: blob) == .unknownHost)
        // Matching ignores case, as OpenSSH does
        #expect(hosts.check(host: "GIT.Example.COM", key: blob) == .trusted)
        // A negation alone matches nothing
        #expect(KnownHosts(contents: "!evil.example.com ssh-ed25519 \(key)\n").check(host: "git.example.com", key: blob) == .unknownHost)
    }

    @Test func sha1MatchesTheStandardVector() {
        let digest = SHA1.hash(Array("abc".utf8)).map { String(format: "%02x", $0) }.joined()
        #expect(digest == "a9993e364706816aba3e25717850c26c9cd0d89d")
    }
}

@Suite(.onTestThreads) struct ForgeUnitTests {
    let base = URL(fileURLWithPath: "/")

    @Test func tokenUsernamesFollowEachHostsConvention() throws {
        #expect(Forge.of(try RemoteURL.parse("https://github.com/acme/app.git", relativeTo: base)).tokenUsername == "x-access-token")
        #expect(Forge.of(try RemoteURL.parse("https://gitlab.com/acme/app.git", relativeTo: base)).tokenUsername == "oauth2")
        #expect(Forge.of(try RemoteURL.parse("https://codeberg.org/acme/app.git", relativeTo: base)) == .gitea)
        #expect(Forge.of(try RemoteURL.parse("https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/app", relativeTo: base)) == .codeCommit)
    }

    @Test func knownRejectionsBecomeClasses() {
        #expect(Classification.rejection("GH006: Protected branch update failed").0 == .protected)
        #expect(Classification.rejection("GH013: Repository rule violations found").0 == .protected)
        #expect(Classification.rejection("refusing to allow an OAuth App to create or update workflow `.github/workflows/ci.yml` without `workflow` scope").0 == .auth)
        #expect(Classification.rejection("GH001: Large files detected. this exceeds GitHub's file size limit of 100.00 MB").0 == .tooLarge)
        #expect(Classification.rejection("pack exceeds maximum allowed size").0 == .tooLarge)
        #expect(Classification.rejection("You are not allowed to push code to protected branches on this project.").0 == .protected)
        #expect(Classification.rejection("pre-receive hook declined").0 == .rejected)
    }

    @Test func codeCommitURLFormsAllNameTheSameRepository() throws {
        let console = try RemoteURL.parse("https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/payments", relativeTo: base)
        let grc = try RemoteURL.parse("codecommit::eu-west-1://mirror@payments", relativeTo: base)
        let implicit = try RemoteURL.parse("codecommit://payments", relativeTo: base, defaultRegion: "eu-west-1")
        let ssh = try RemoteURL.parse("ssh://APKAEIBAERJR2EXAMPLE@git-codecommit.eu-west-1.amazonaws.com/v1/repos/payments", relativeTo: base)
        for url in [console, grc, implicit, ssh] {
            #expect(url.codeCommit?.region == "eu-west-1" && url.codeCommit?.repository == "payments", "\(url)")
        }
        #expect(grc.codeCommit?.profile == "mirror" && grc.gitURL == console.gitURL)
        #expect(ssh.user == "APKAEIBAERJR2EXAMPLE")
        #expect(try RemoteURL.parse("https://git-codecommit-fips.us-gov-west-1.amazonaws.com/v1/repos/x", relativeTo: base).codeCommit?.fips == true)
        #expect(try RemoteURL.parse("https://git-codecommit.cn-north-1.amazonaws.com.cn/v1/repos/x", relativeTo: base).codeCommit?.region == "cn-north-1")
        #expect(try RemoteURL.parse("https://vpce-0123-abcd.git-codecommit.eu-west-1.vpce.amazonaws.com/v1/repos/x", relativeTo: base).codeCommit?.region == "eu-west-1")
        #expect(try RemoteURL.parse("codecommit::cn-north-1://x", relativeTo: base).gitURL == "https://git-codecommit.cn-north-1.amazonaws.com.cn/v1/repos/x")
        #expect(throws: RemoteURL.ParseError.self) { try RemoteURL.parse("codecommit://payments", relativeTo: base) }
        #expect(CodeCommitTarget.isValidName("my.repo_1-x") && !CodeCommitTarget.isValidName("repo.git") && !CodeCommitTarget.isValidName("has space"))
    }
}

/// HMAC-SHA256 as webhooks and notifications use it, against RFC 4231's test vectors: keys shorter
/// than, equal to and longer than the 64-byte block (a longer key is hashed first).
@Suite(.onTestThreads) struct HMACTests {
    static func bytes(_ hex: String) -> [UInt8] {
        var result: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            result.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        return result
    }

    @Test(arguments: [
        // RFC 4231 test cases 1, 2, 3, 6 and 7 (key, data, HMAC-SHA256)
        (String(repeating: "0b", count: 20), "4869205468657265",
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        ("4a656665", "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        (String(repeating: "aa", count: 20), String(repeating: "dd", count: 50),
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
        (String(repeating: "aa", count: 131),
         "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a65204b6579202d2048617368204b6579204669727374",
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
        (String(repeating: "aa", count: 131),
         "5468697320697320612074657374207573696e672061206c6172676572207468616e20626c6f636b2d73697a65206b657920616e642061206c6172676572207468616e20626c6f636b2d73697a6520646174612e20546865206b6579206e6565647320746f20626520686173686564206265666f7265206265696e6720757365642062792074686520484d414320616c676f726974686d2e",
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
    ])
    func matchesRFC4231(key: String, data: String, expected: String) {
        #expect(SHA256.hmac(key: Self.bytes(key), message: Self.bytes(data)).hex == expected)
    }

    @Test func aWebhookSignedWithAKeyLongerThanTheBlockIsVerified() {
        let secret = String(repeating: "k", count: 100)
        let body = Array(#"{"ref":"refs/heads/main"}"#.utf8)
        let signature = Webhooks.sign(body, secret: secret)
        #expect(Webhooks.verifyHMAC(body: body, signature: signature, secret: secret))
        #expect(!Webhooks.verifyHMAC(body: body, signature: signature, secret: String(repeating: "k", count: 99)))
    }
}
