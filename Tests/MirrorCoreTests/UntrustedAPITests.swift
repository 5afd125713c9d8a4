import Foundation
import Testing
import TestSupport
@testable import MirrorCore

/// What a forge API says is data: names that would step out of a template, clone addresses on this
/// machine or on another host, and control characters are refused with the entry's name, and
/// nothing else is touched.
@Suite(.onTestThreads) struct UntrustedAPITests {
    let sandbox: Sandbox

    init() throws { sandbox = try Sandbox("untrusted-api") }

    func source(_ extra: String = "", secondary: String = "https://git.example.com/mirrors/{path}.git") throws -> DiscoverySource {
        let yaml = """
            \(ConfigDocuments.acmeOnGitHub)
                \(extra)
                secondaries:
                  - name: backup
                    url: "\(secondary)"
            """
        let config = try ConfigLoader(defaultRegion: "eu-west-1").parse(yaml, file: sandbox.path("mirrors.yaml"))
        return try #require(config.discover.first)
    }

    func repository(_ path: String, name: String? = nil, clone: String? = nil) -> DiscoveredRepository {
        DiscoveredRepository(path: path, name: name ?? String(path.split(separator: "/").last ?? ""),
                             cloneURL: clone ?? "https://github.com/\(path).git")
    }

    func refusal(_ result: Result<Mirror, AddressProblem>) -> String? {
        if case .failure(let problem) = result { return problem.message }
        return nil
    }

    @Test func aPathWithDotSegmentsOrOddCharactersIsRefusedBeforeAnyTemplateIsFilled() throws {
        let source = try source(secondary: "/srv/mirrors/{path}.git")
        for path in ["acme/../../victim", "acme/./x", "acme//x", "acme/-x", "acme/x y", "acme/x\u{1B}]0;t\u{07}", "acme/x\u{0}y", "../victim",
                     "acme/%2e%2e", "acme/" + String(repeating: "l", count: 256)] {
            let refused = refusal(source.mirror(for: repository(path)))
            #expect(refused?.contains("it was not used") == true, "\(path): \(refused ?? "accepted")")
            #expect(refused?.contains("\u{1B}") != true && refused?.contains("\u{0}") != true, "\(path)")
        }
        // A name that is not the path's last part is not taken either (it would fill {name}).
        #expect(refusal(source.mirror(for: repository("acme/widget", name: "../victim")))?.contains("not the last part") == true)
        // Names the forges really use are mirrored.
        for path in ["acme/widget_2.0", "acme/a-b.c"] {
            #expect(refusal(source.mirror(for: repository(path))) == nil, "\(path)")
        }
        #expect(repository("acme/.github").nameProblem == nil)
    }

    @Test func aFilledTemplateStaysUnderItsFixedPrefix() throws {
        let source = try source(secondary: "/srv/mirrors/{path}.git")
        let template = try #require(source.secondaries.first)
        // Even a name that got past the name check (here, built by hand) cannot leave /srv/mirrors/.
        var hostile = repository("acme/x")
        hostile.path = "acme/../../etc"
        hostile.name = "etc"
        if case .success(let spec) = template.expand(for: hostile) { Issue.record("expanded to \(spec.url)") }
        if case .success(let spec) = template.expand(for: repository("acme/widget")) {
            #expect(spec.url.path == "/srv/mirrors/acme/widget.git")
        } else {
            Issue.record("a good name was refused")
        }
    }

    @Test func aCloneAddressOnThisMachineOrAnotherSchemeIsRefused() throws {
        let source = try source()
        for clone in ["file:///srv/secret.git", "/srv/secret.git", "secret.git", "git://github.com/acme/x.git", "ssh://git@github.com/acme/x.git",
                      "http://github.com/acme/x.git", "ext::sh -c touch% /tmp/pwned"] {
            let refused = refusal(source.mirror(for: repository("acme/x", clone: clone)))
            #expect(refused != nil, "\(clone) was accepted")
        }
        #expect(refusal(source.mirror(for: repository("acme/x", clone: "file:///srv/secret.git")))?.contains("a path on this machine") == true)
    }

    @Test func aCloneAddressOnAnotherHostIsRefusedUnlessTheConfigurationNamesIt() throws {
        // github.com's API is on api.github.com and its clones on github.com: that pairing is documented
        #expect(refusal(try source().mirror(for: repository("acme/x", clone: "https://github.com/acme/x.git"))) == nil)
        let elsewhere = repository("acme/x", clone: "https://collector.example.net/acme/x.git")
        let refused = try #require(refusal(try source().mirror(for: elsewhere)))
        #expect(refused.contains("collector.example.net") && refused.contains("no credential went there") && refused.contains("clone_host"), "\(refused)")
        // A forge that serves its clones elsewhere says so in the configuration.
        let named = try source("clone_host: collector.example.net")
        let mirror = try named.mirror(for: elsewhere).get()
        #expect(mirror.primary.url.host == "collector.example.net")
        #expect(mirror.primary.credentialName == "github")
    }

    @Test func aSelfHostedForgeClonesFromItsOwnHostOverItsOwnScheme() throws {
        let source = try source("api: https://git.example.com/api/v3")
        #expect(refusal(source.mirror(for: repository("acme/x", clone: "https://git.example.com/acme/x.git"))) == nil)
        #expect(refusal(source.mirror(for: repository("acme/x", clone: "https://GIT.example.com:8443/acme/x.git"))) == nil)
        #expect(refusal(source.mirror(for: repository("acme/x", clone: "https://github.com/acme/x.git"))) != nil)
        #expect(refusal(source.mirror(for: repository("acme/x", clone: "http://git.example.com/acme/x.git"))) != nil, "no downgrade to http")
    }

    @Test func clonesOverSSHNeedCloneSSHAndTheForgesHost() throws {
        let ssh = try source("clone: ssh")
        var entry = repository("acme/x")
        entry.sshURL = "git@github.com:acme/x.git"
        #expect(refusal(ssh.mirror(for: entry)) == nil)
        entry.sshURL = "git@attacker.example:acme/x.git"
        #expect(refusal(ssh.mirror(for: entry)) != nil)
    }

    @Test func theAnswerSizeCapIsASettingWithAClearError() throws {
        #expect(try source().maxAnswerSize == 16 << 20)
        #expect(try source("max_answer_size: 64MiB").maxAnswerSize == 64 << 20)
        do {
            _ = try source("max_answer_size: lots")
            Issue.record("accepted")
        } catch let error as ConfigError {
            #expect(error.problems.first?.message.contains("takes a size such as 16MiB") == true, "\(error)")
        }
    }

    @Test func printableEscapesWhatCouldSteerATerminalOrALog() {
        #expect(Printable.escaped("plain name-1.0") == "plain name-1.0")
        #expect(Printable.escaped("a\nb\r\u{1B}]0;x\u{07}\u{0}\u{202E}") == "a\\nb\\r\\e]0;x\\u{7}\\u{0}\\u{202e}")
        #expect(Printable.quoted(String(repeating: "x", count: 200), limit: 10) == "'xxxxxxxxxx…'")
    }
}

/// The primary's ref names, as its pushers chose them: which the cache can hold.
@Suite struct RefNameTests {
    @Test func namesGitAndTheCacheCannotHoldAreRefusedWithTheReason() {
        for good in ["refs/heads/main", "refs/heads/feature/login", "refs/tags/v1.0", "refs/heads/ü/日本", "refs/heads/a.b@c",
                     "refs/heads/" + String(repeating: "a", count: 250)] {
            #expect(RefName.problem(good) == nil, "\(good)")
        }
        #expect(RefName.problem("refs/heads/" + String(repeating: "a", count: 251))?.contains("251 bytes long") == true)
        #expect(RefName.problem("refs/heads/" + (0..<11).map { _ in String(repeating: "d", count: 90) }.joined(separator: "/"))?.contains("bytes long, more than the 1000") == true)
        for bad in ["refs/heads/a..b", "refs/heads/.hidden", "refs/heads/x.lock", "refs/heads/a b", "refs/heads/a\u{1B}b", "refs/heads/a:b",
                    "refs/heads/a@{1}", "refs//x", "refs/heads/x.", "refs/heads/a\\b", "refs/heads/x~1", "refs/heads/x^", "refs/heads/x?",
                    "refs/heads/x*", "refs/heads/[x", "refs/heads/a\u{7F}", "main", "refs/heads/x/.lock", "refs/heads/"] {
            #expect(RefName.problem(bad) != nil, "\(bad)")
        }
        #expect(RefName.shown("refs/heads/" + String(repeating: "L", count: 300)).hasSuffix("…(311 bytes)"))
    }

    /// `problem` answers as git's own `check-ref-format` does, on names made of the bytes its rules are
    /// about (the short names below are within the lengths the cache adds): it checks most names in one
    /// pass, and that pass must never let through what git refuses, nor refuse what git takes.
    @Test func namesAreJudgedAsGitJudgesThem() throws {
        // Half the names from the bytes that make parts (dots, slashes, `@{`, `.lock`), half with the
        // forbidden ones too.
        let parts = ["a", "b", ".", ".", "/", "@", "{", "lock", ".lock", "é"]
        let forbidden = [" ", "~", "^", ":", "?", "*", "[", "\\", "\u{7F}", "\u{1}"]
        var generator = SplitMix64(seed: 27)
        var disagreements: [String] = []
        for number in 0..<600 {
            let pieces = number % 2 == 0 ? parts : parts + forbidden
            let count = Int.random(in: 1...7, using: &generator)
            let name = "refs/heads/" + (0..<count).map { _ in pieces.randomElement(using: &generator)! }.joined()
            let git = try Shell.run(["git", "check-ref-format", name], check: false).status == 0
            if git != (RefName.problem(name) == nil) { disagreements.append(Printable.escaped(name)) }
        }
        #expect(disagreements.isEmpty, "\(disagreements)")
    }
}

/// A small deterministic generator (SplitMix64), so that a failure names the same names again.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
