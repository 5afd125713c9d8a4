import Foundation
import MirrorCore
import Testing
import TestSupport

/// Many refs at git's cost (#27): the cache takes a fetch's refs in one packed-refs file, not one
/// loose file each, and a push of many new refs to a secondary that already holds some goes by one
/// pattern from a scratch repository, not one refspec each (git matches those pairwise).
@Suite(.onTestThreads) struct ManyRefsTests {
    @Test func manyNewBranchesArePackedInTheCacheAndReachASecondaryThatHasRefs() throws {
        // Given a primary and a secondary mirrored once (main only)
        let (scenario, backup) = try Scenario.withBackup("many-refs", synced: true)
        let main = try #require(try scenario.primary.refs()["refs/heads/main"])

        // When 150 branches and 10 tags appear on the primary and it syncs
        let creates = (0..<150).map { "create refs/heads/release/\($0) \(main)\n" }.joined()
            + (0..<10).map { "create refs/tags/v\($0) \(main)\n" }.joined()
        try Shell.run(["git", "--git-dir=\(scenario.primary.path)", "update-ref", "--stdin"], input: creates)
        let sync = try scenario.gitmirror("sync")

        // Then the secondary holds every one of them
        #expect(sync.status == 0, "\(sync)")
        #expect(try backup.refs() == scenario.primary.refs())
        #expect(try backup.refs().count == 161)
        // and the cache keeps them in packed-refs, without a loose file each
        let cache = scenario.cache.path
        let packed = try String(contentsOfFile: cache + "/packed-refs", encoding: .utf8)
        #expect(packed.contains("\(main) refs/heads/release/149\n") && packed.contains("\(main) refs/tags/v9\n"))
        #expect(!FileManager.default.fileExists(atPath: cache + "/refs/heads/release"))
        // and no scratch repository is left in it
        #expect(try FileManager.default.contentsOfDirectory(atPath: cache).allSatisfy { !$0.hasPrefix("gitmirror-push-") })

        // When 100 of those branches move on (a fast-forward each) and it syncs again
        let next = try scenario.primary.commit("second")
        let moves = (0..<100).map { "update refs/heads/release/\($0) \(next)\n" }.joined()
        try Shell.run(["git", "--git-dir=\(scenario.primary.path)", "update-ref", "--stdin"], input: moves)
        let again = try scenario.gitmirror("sync")

        // Then the secondary follows exactly, and the cache's refs are what the primary holds
        #expect(again.status == 0, "\(again)")
        #expect(try backup.refs() == scenario.primary.refs())
        let cached = try scenario.cache.refs().filter { !$0.key.hasPrefix("refs/gitmirror/") }
        #expect(cached == (try scenario.primary.refs()))
    }
}
