import Foundation
import Git
import Testing
import TestSupport
@testable import MirrorCore

/// The supervisor reads its caches' refs from their files (RefFiles), not through libgit2: what it
/// reads must be what libgit2 reads, packed, loose or both.
@Suite(.onTestThreads) struct RefFilesTests {
    @Test func theRefFilesGiveWhatLibgit2GivesPackedLooseAndBoth() throws {
        // Given a repository with packed refs, an annotated tag (a peeled line), loose refs that
        // override packed ones, a ref in a deep folder, and a symbolic ref
        let sandbox = try Sandbox("ref-files")
        let repository = try BareRepository.create(at: sandbox.path("r.git"))
        let first = try repository.commit("one")
        try repository.commit("two", on: "feature/a/b")
        _ = try repository.tag("v1", message: "annotated")
        _ = try repository.tag("light")
        _ = try Shell.run(["git", "--git-dir=\(repository.path)", "pack-refs", "--all"])
        let moved = try repository.commit("three")
        try repository.setRef("refs/heads/loose-only", to: first)
        _ = try Shell.run(["git", "--git-dir=\(repository.path)", "symbolic-ref", "refs/heads/alias", "refs/heads/main"])

        // When both read it
        let files = try RefFiles.read(gitDirectory: repository.path)
        let libgit2 = try Repository.openBare(at: repository.path).references(matching: "refs/*")

        // Then they agree, the loose value winning over the packed one, and the symbolic ref is left out
        #expect(files == libgit2)
        #expect(files["refs/heads/main"]?.hex == moved)
        #expect(files["refs/heads/loose-only"]?.hex == first)
        #expect(files["refs/heads/feature/a/b"] != nil && files["refs/tags/v1"] != nil && files["refs/tags/light"] != nil)
        #expect(files["refs/heads/alias"] == nil)
        #expect(files.count == 5)
    }

    @Test func aRefFileThatHoldsNoIdIsAnErrorAndALockIsNotARef() throws {
        let sandbox = try Sandbox("ref-files-torn")
        let repository = try BareRepository.create(at: sandbox.path("r.git"))
        try repository.commit("one")
        // A ref being written is not a ref yet
        try Data("0123".utf8).write(to: repository.url.appendingPathComponent("refs/heads/next.lock"))
        #expect(try RefFiles.read(gitDirectory: repository.path).keys.sorted() == ["refs/heads/main"])
        // A torn ref file is an error naming it (the caller reads the cache as libgit2 would fail on it)
        try Data("not an id\n".utf8).write(to: repository.url.appendingPathComponent("refs/heads/torn"))
        do {
            _ = try RefFiles.read(gitDirectory: repository.path)
            Issue.record("a torn ref file was read")
        } catch {
            #expect("\(error)".contains("refs/heads/torn"), "\(error)")
        }
        // A repository without packed-refs or refs/ has none
        let empty = try sandbox.directory("empty.git")
        #expect(try RefFiles.read(gitDirectory: empty.path).isEmpty)
    }
}
