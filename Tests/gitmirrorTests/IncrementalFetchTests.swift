import Foundation
import MirrorCore
import Testing
import TestSupport

/// An incremental fetch asks the primary for what is new and no more (#27): libgit2 offers the server
/// the cache's refs in name order and settles on the first twenty it knows, so with many branches named
/// before `main` a new commit on `main` came with all of `main`'s history since they forked. The fetch
/// now offers the old tips of the refs that moved, and the default branch's, from a scratch repository.
@Suite(.onTestThreads) struct IncrementalFetchTests {
    @Test func aNewCommitComesAloneWhateverTheOtherBranchesAre() throws {
        // Given a primary whose main has moved on since 30 feature branches (named before it) forked, mirrored once
        let (scenario, backup) = try Scenario.withBackup("incremental-fetch")
        for n in 0..<30 { try scenario.primary.commit("feature \(n)", on: "feature/\(String(format: "%02d", n))") }
        for n in 0..<8 { try scenario.primary.commit("main \(n)") }
        let first = try scenario.gitmirror("sync")
        #expect(first.status == 0, "\(first)")

        // When one commit lands on main and it syncs
        let tip = try scenario.primary.commit("one more")
        let packsBefore = try packs(of: scenario.cache)
        let requestsBefore = uploadPacks(scenario)
        let sync = try scenario.gitmirror("sync")

        // Then the secondary has it, and the primary sent that commit, its tree and its blob: nothing else
        #expect(sync.status == 0, "\(sync)")
        #expect(try backup.refs()["refs/heads/main"] == tip)
        let fetched = try packs(of: scenario.cache).subtracting(packsBefore)
        #expect(try fetched.map { try objects(in: $0, of: scenario.cache) } == [3])
        // on the connection it was listed on, as git's fetch does: one upload-pack for the primary
        #expect(uploadPacks(scenario) - requestsBefore == 1, "\(scenario.daemon.logText.suffix(3000))")
        // and the cache holds the primary's refs, its objects whole, and no scratch repository
        #expect(try scenario.cache.refs().filter { !$0.key.hasPrefix("refs/gitmirror/") } == scenario.primary.refs())
        let fsck = try Shell.run(["git", "--git-dir=\(scenario.cache.path)", "fsck", "--connectivity-only", "--no-dangling"])
        #expect(fsck.status == 0, "\(fsck)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: scenario.cache.path).allSatisfy { !$0.hasPrefix("gitmirror-fetch-") })

        // When a tag and a new branch off main appear (refs the cache never had) and it syncs
        let packsThen = try packs(of: scenario.cache)
        try scenario.primary.tag("v1.0", message: "release")
        let branch = try scenario.primary.commit("topic", on: "topic")
        let again = try scenario.gitmirror("sync")

        // Then they arrive offered against main's tip: the tag object, and the branch's commit, tree and blob
        #expect(again.status == 0, "\(again)")
        #expect(try backup.refs()["refs/heads/topic"] == branch)
        #expect(try backup.refs() == scenario.primary.refs())
        let more = try packs(of: scenario.cache).subtracting(packsThen)
        #expect(try more.map { try objects(in: $0, of: scenario.cache) }.reduce(0, +) <= 4)
    }

    /// The upload-pack requests for the primary git daemon has logged.
    private func uploadPacks(_ scenario: Scenario) -> Int {
        scenario.daemon.logText.components(separatedBy: "Request upload-pack for '/\(scenario.primary.url.lastPathComponent)'").count - 1
    }

    private func packs(of cache: BareRepository) throws -> Set<String> {
        Set(try FileManager.default.contentsOfDirectory(atPath: cache.path + "/objects/pack").filter { $0.hasSuffix(".idx") })
    }

    private func objects(in index: String, of cache: BareRepository) throws -> Int {
        let pack = cache.path + "/objects/pack/" + index.dropLast(".idx".count) + ".pack"
        let listed = try Shell.run(["git", "--git-dir=\(cache.path)", "verify-pack", "-v", pack])
        // One line per object: `<id> <type> <size> …`.
        return listed.stdout.split(separator: "\n").filter { $0.split(separator: " ").first?.count == 40 }.count
    }
}
