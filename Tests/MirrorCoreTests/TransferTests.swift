import Foundation
import Git
import Testing
import TestSupport
@testable import MirrorCore

@Suite(.onTestThreads) struct CredentialRelayTests {
    func relay(_ url: String) throws -> CredentialRelay {
        let relay = try CredentialRelay(url: url) { ("mirror", "canary-relay-secret") }
        close(relay.workerEnd)
        close(relay.childEnd)
        return relay
    }

    @Test func answersOnlyTheConfiguredOriginAndOnlyOnce() throws {
        let relay = try relay("https://git.example.com/team/app.git")
        // Another host, another port, another scheme: nothing is given, and the relay says why.
        for (scheme, host) in [("https", "evil.example.com"), ("https", "git.example.com:8443"), ("http", "git.example.com")] {
            let reply = relay.respond(to: ["action": "get", "protocol": scheme, "host": host])
            #expect(reply == ["quit": "1"])
        }
        #expect(relay.events.count == 3)
        #expect(relay.events.allSatisfy { if case .otherOrigin = $0 { true } else { false } })
        // The configured origin, with its default port written out or not, gets the credential once.
        let first = relay.respond(to: ["action": "get", "protocol": "https", "host": "git.example.com:443"])
        #expect(first == ["username": "mirror", "password": "canary-relay-secret"])
        // A second question means the first answer was refused: no second try.
        #expect(relay.respond(to: ["action": "get", "protocol": "https", "host": "git.example.com"]) == ["quit": "1"])
        #expect(relay.events.last == .refused)
    }

    @Test func gitReportingTheCredentialRejectedIsRecorded() throws {
        let relay = try relay("http://127.0.0.1:9401/s1.git")
        #expect(relay.respond(to: ["action": "get", "protocol": "http", "host": "127.0.0.1:9401"])["password"] == "canary-relay-secret")
        #expect(relay.respond(to: ["action": "erase", "protocol": "http", "host": "127.0.0.1:9401"]) == [:])
        #expect(relay.events == [.refused])
    }

    @Test func settingsConfineGitToTheConfiguredProtocolAndNoRedirects() {
        let settings = GitTransfer.settings(url: "https://h/x.git", helper: "!'/bin/gitmirror' __credential 3", caBundle: "/tmp/ca.pem", sshCommand: "ssh")
        let values = stride(from: 1, to: settings.count, by: 2).map { settings[$0] }
        #expect(values.contains("http.followRedirects=false"))
        #expect(values.contains("protocol.allow=never"))
        #expect(values.contains("protocol.https.allow=always"))
        // The helper list is emptied before ours is named: no other helper is ever asked.
        #expect(values.firstIndex(of: "credential.helper=")! < values.firstIndex(of: "credential.helper=!'/bin/gitmirror' __credential 3")!)
        #expect(values.contains("http.sslCAInfo=/tmp/ca.pem"))
    }

    @Test func sshIsStrictAndUsesOnlyTheGivenKey() {
        let command = GitTransfer.sshCommand(keyPath: "/proc/1/fd/9", knownHosts: "/etc/kh", user: nil)
        for option in ["BatchMode=yes", "StrictHostKeyChecking=yes", "IdentitiesOnly=yes", "IdentityAgent=none", "UserKnownHostsFile='/etc/kh'", "-F /dev/null"] {
            #expect(command.contains(option), "\(option)")
        }
        #expect(command.hasSuffix("-i '/proc/1/fd/9'"))
        #expect(GitTransfer.sshCommand(keyPath: nil, knownHosts: "/k", user: "git").contains("IdentityFile=none"))
    }
}

@Suite(.onTestThreads) struct TransferProgressTests {
    @Test func pushArgumentsCarryLeasesAndDeleteFirst() {
        let a = ObjectID(hex: String(repeating: "a", count: 40))!, b = ObjectID(hex: String(repeating: "b", count: 40))!
        let updates = [WireUpdate(ref: "refs/heads/new", expectedOld: nil, new: a, force: false),
                       WireUpdate(ref: "refs/heads/main", expectedOld: a, new: b, force: true),
                       WireUpdate(ref: "refs/heads/gone", expectedOld: b, new: nil, force: false),
                       WireUpdate(ref: "refs/rewritten/heads/main", expectedOld: nil, new: b, force: false, source: "refs/heads/main")]
        // By name, from the cache: every update leased, deletions first, a beside ref from its branch
        let byName = GitTransfer.arguments(cache: "/c", target: "git://h/x", updates: updates)
        #expect(Array(byName.suffix(4)) == [":refs/heads/gone", "refs/heads/new:refs/heads/new", "+refs/heads/main:refs/heads/main",
                                            "refs/heads/main:refs/rewritten/heads/main"])
        #expect(byName.filter { $0.hasPrefix("--force-with-lease=") }.count == 4)
        // By id, from a scratch repository: only the forced update and the deletion carry a lease
        let byID = GitTransfer.arguments(cache: "/s", target: "git://h/x", updates: updates, byID: true)
        #expect(Array(byID.suffix(4)) == [":refs/heads/gone", "\(a.hex):refs/heads/new", "+\(b.hex):refs/heads/main", "\(b.hex):refs/rewritten/heads/main"])
        #expect(byID.filter { $0.hasPrefix("--force-with-lease=") } == ["--force-with-lease=refs/heads/main:\(a.hex)", "--force-with-lease=refs/heads/gone:\(b.hex)"])
        // A plain update refused as no fast-forward moved on the server; a forced one was refused
        let parsed = GitTransfer.parse(porcelain: "!\t\(a.hex):refs/heads/new\t[rejected] (fetch first)\n!\t+\(b.hex):refs/heads/main\t[remote rejected] (hook declined)\n",
                                       updates: updates)
        #expect(parsed.first { $0.ref == "refs/heads/new" }?.reason == .moved)
        #expect(parsed.first { $0.ref == "refs/heads/main" }?.message == "hook declined")
    }

    @Test func gitProgressLinesBecomeSteps() {
        let writing = TransferStep(gitLine: "Writing objects:  45% (47520/105599), 12.01 MiB | 11.99 MiB/s")
        #expect(writing?.phase == "writing objects")
        #expect(writing?.done == 47520 && writing?.total == 105599)
        #expect(writing?.bytes == Int(12.01 * 1024 * 1024))
        #expect(writing?.description == "writing objects 47520/105599 (45%), 12.0 MiB, 12.0 MiB/s")
        #expect(TransferStep(gitLine: "remote: Resolving deltas:  10% (5/50)")?.description == "server resolving deltas 5/50 (10%)")
        #expect(TransferStep(gitLine: "Enumerating objects: 105599, done.")?.done == 105599)
        #expect(TransferStep(gitLine: "remote: error: hook declined") == nil)
        #expect(TransferStep(gitLine: "To git://host/x.git") == nil)
    }

    @Test func theBoardKeepsOneLinePerWorkingRemote() {
        final class Clock: @unchecked Sendable { var now = Date(timeIntervalSince1970: 1000) }
        let clock = Clock()
        let board = ProgressBoard { clock.now }
        board.update(ProgressNote(repository: "app", remote: "s1", message: "listing refs"))
        board.update(ProgressNote(repository: "app", remote: "s2", message: "listing refs"))
        clock.now += 12
        board.update(ProgressNote(repository: "app", remote: "s1", message: "writing objects 10/20 (50%)"))
        board.update(ProgressNote(repository: "app", remote: "s3", message: "listing refs"))
        #expect(board.active.map(\.name) == ["app/s1", "app/s2", "app/s3"])
        #expect(board.active.first?.line == "writing objects 10/20 (50%)")
        // Only work that has gone on for the interval is worth a line when nobody watches.
        #expect(board.longRunning(after: 10).map(\.name) == ["app/s1", "app/s2"])
        board.update(ProgressNote(repository: "app", remote: "s1", message: "ok", finished: true))
        #expect(board.active.map(\.name) == ["app/s2", "app/s3"])
    }
}

@Suite(.onTestThreads) struct ManyRefsWireTests {
    @Test func aListingTravelsAsOneStringAndAHostileNameAsObjects() throws {
        let a = ObjectID(hex: String(repeating: "a", count: 40))!, b = ObjectID(hex: "0123456789ABCDEF0123456789abcdef01234567")!
        let listing = Listing(heads: [RemoteHead(name: "refs/heads/main", id: a), RemoteHead(name: "refs/tags/v1/ü", id: b)], defaultBranch: "refs/heads/main")
        let data = try JSONEncoder().encode(listing)
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains("\"refs\":") && !text.contains("\"heads\":"), "\(text)")
        let back = try JSONDecoder().decode(Listing.self, from: data)
        #expect(back.heads == listing.heads && back.defaultBranch == "refs/heads/main")
        // A name with a space (git forbids it; a hostile server may send it) goes as objects, intact
        let hostile = Listing(heads: [RemoteHead(name: "refs/heads/a b", id: a)], defaultBranch: nil)
        let hostileData = try JSONEncoder().encode(hostile)
        #expect(String(decoding: hostileData, as: UTF8.self).contains("\"heads\":"))
        #expect(try JSONDecoder().decode(Listing.self, from: hostileData).heads == hostile.heads)
        // A damaged string is refused, not half read
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Listing.self, from: Data(#"{"refs":"abc refs/heads/x"}"#.utf8)) }
    }

    @Test func objectIDsKeepTheirHexOrderAndForm() {
        let low = ObjectID(hex: "00000000000000000000000000000000000000ff")!, high = ObjectID(hex: "0100000000000000000000000000000000000000")!
        #expect(low < high && !(high < low))
        #expect(ObjectID(hex: "0123456789ABCDEF0123456789abcdef01234567")?.hex == "0123456789abcdef0123456789abcdef01234567")
        #expect(ObjectID(hex: "0123") == nil && ObjectID(hex: String(repeating: "g", count: 40)) == nil)
        #expect(ObjectID(hex: String(repeating: "0", count: 41)) == nil)
        #expect(ObjectID.zero.isZero && !low.isZero)
    }

    @Test func plainUpdatesOfAScratchPushGoByOnePattern() {
        let a = ObjectID(hex: String(repeating: "a", count: 40))!, b = ObjectID(hex: String(repeating: "b", count: 40))!
        let updates = [WireUpdate(ref: "refs/heads/new", expectedOld: nil, new: a, force: false),
                       WireUpdate(ref: "refs/heads/main", expectedOld: a, new: b, force: true),
                       WireUpdate(ref: "refs/heads/gone", expectedOld: b, new: nil, force: false)]
        let arguments = GitTransfer.arguments(cache: "/s", target: "git://h/x", updates: updates, byID: true, planted: ["refs/heads/new"])
        #expect(Array(arguments.suffix(3)) == [":refs/heads/gone", "refs/gitmirror-push/*:refs/*", "+\(b.hex):refs/heads/main"])
        #expect(!arguments.contains { $0.contains("refs/heads/new") })
    }
}
