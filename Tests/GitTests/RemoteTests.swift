import Foundation
@testable import Git
import Testing
import TestSupport

/// The libgit2 wrapper against a real git daemon.
@Suite(.onTestThreads) struct RemoteTests {
    @Test func listsFetchesAndPushesWithPerRefStatus() throws {
        // Given a served primary with a branch and an annotated tag, and an empty target with a hook
        let sandbox = try Sandbox("git-remote")
        let served = try sandbox.directory("served")
        let primary = try BareRepository.create(at: served.appendingPathComponent("primary.git"))
        let main = try primary.commit("first")
        let tag = try primary.tag("v1", message: "one")
        let target = try BareRepository.create(at: served.appendingPathComponent("target.git"))
        try target.installHook("update", "#!/bin/sh\n[ \"$1\" = refs/tags/v1 ] && { echo no tags here >&2; exit 1; }\nexit 0\n")
        let daemon = try GitDaemon(sandbox: sandbox, root: served)

        // When we list, fetch into a new bare cache and push from it
        let listed = try Remote(url: daemon.url("primary.git"), hooks: TransferHooks()).listHeads()
        #expect(Set(listed.map(\.name)).isSuperset(of: ["refs/heads/main", "refs/tags/v1"]))
        #expect(listed.first { $0.name == "refs/tags/v1" }?.id.hex == tag)
        #expect(!listed.contains { $0.name.hasSuffix("^{}") })

        let cache = try Repository.openOrCreateBare(at: sandbox.path("cache.git").path)
        try Remote(url: daemon.url("primary.git"), in: cache, hooks: TransferHooks())
            .fetch(refspecs: ["+refs/heads/main:refs/heads/main", "+refs/tags/v1:refs/tags/v1"])
        #expect(try cache.reference(named: "refs/heads/main")?.hex == main)

        let hooks = TransferHooks()
        let remote = try Remote(url: daemon.url("target.git"), in: cache, hooks: hooks)
        try remote.connect(.push)
        try remote.upload(refspecs: ["refs/heads/main:refs/heads/main", "refs/tags/v1:refs/tags/v1"])

        // Then libgit2 returned 0, yet the rejected ref is reported through push_update_reference
        #expect(hooks.pushStatuses["refs/heads/main"] == .some(nil))
        #expect(hooks.pushStatuses["refs/tags/v1"] == .some("hook declined"))
        #expect(try target.refs() == ["refs/heads/main": main])
        #expect(hooks.serverMessages.contains { $0.contains("no tags here") })
    }

    @Test func objectGraphQueriesOnTheCache() throws {
        let sandbox = try Sandbox("git-graph")
        let source = try BareRepository.create(at: sandbox.path("source.git"))
        let first = try source.commit("first")
        let second = try source.commit("second")
        let repository = try Repository.openBare(at: source.path)
        let a = try #require(ObjectID(hex: first)), b = try #require(ObjectID(hex: second))
        #expect(try repository.isDescendant(b, of: a))
        #expect(try !repository.isDescendant(a, of: b))
        #expect(try repository.contains(a))
        #expect(try !repository.contains(ObjectID(hex: String(repeating: "1", count: 40))!))
        try repository.setReference("refs/gitmirror/backup/x", to: a, message: "test")
        #expect(try repository.references(matching: "refs/gitmirror/*") == ["refs/gitmirror/backup/x": a])
        try repository.deleteReference("refs/gitmirror/backup/x")
        #expect(try repository.reference(named: "refs/gitmirror/backup/x") == nil)
    }

    @Test func aFetchScansThePackFolderOnceAndAMissAfterItRescans() throws {
        // Given a repository whose objects are packed, opened and read
        let sandbox = try Sandbox("git-rescans")
        let source = try BareRepository.create(at: sandbox.path("source.git"))
        let first = try #require(ObjectID(hex: try source.commit("first")))
        try Shell.run(["git", "--git-dir=\(source.path)", "repack", "-adq"])
        let repository = try Repository.openBare(at: source.path)
        #expect(try repository.contains(first))

        // When another process packs a new commit while misses are not rescanned (a fetch's negotiation)
        let second = try #require(ObjectID(hex: try source.commit("second")))
        let seenDuring = try repository.withoutRescans { () throws(GitError) in
            let repacked = Result { try Shell.run(["git", "--git-dir=\(source.path)", "repack", "-adq"]) }
            return (repacked: repacked, first: try repository.contains(first), second: try repository.contains(second))
        }
        _ = try seenDuring.repacked.get()

        // Then the scan at the start answered (what it found stays found, the new pack is not looked
        // for at each miss), and the first miss after it rescans and finds the new pack
        #expect(seenDuring.first)
        #expect(!seenDuring.second)
        #expect(try repository.contains(second))
        #expect(try repository.contains(first))
    }

    @Test func serverLinesSplitAcrossSideBandPacketsAreJudgedWhole() {
        // Given side-band packets that cut progress and a message mid-line
        let hooks = TransferHooks()
        for packet in ["Counting objects: (16/", "87)\rCounting objects: 100% (87/87), done.\nerror: GH0", "13: refusing\n", "Total 3 (delta 0)"] {
            hooks.appendServerMessage(packet)
        }

        // Then progress is dropped whole, and the message is kept whole, once
        #expect(hooks.serverMessages == ["error: GH013: refusing"], "\(hooks.serverMessages)")
    }
}
