import Foundation
import MirrorCore
import Testing
import TestSupport

/// A user who can push to the primary chooses its refs' names and targets: one ref that the cache or
/// a secondary cannot hold fails that ref alone, with its name and the reason, on every path; every
/// other ref is mirrored, and the next sync is the same.
@Suite(.onTestThreads) struct HostileRefsTests {
    static let longPart = "refs/heads/" + String(repeating: "L", count: 300)
    static let longName = "refs/heads/" + (0..<10).map { _ in String(repeating: "d", count: 100) }.joined(separator: "/") + "/x"

    /// Refs no `git update-ref` would write (too long for a file, or a branch on a blob or a tree), put
    /// into packed-refs as a server that keeps refs elsewhere could hold them.
    func plant(_ refs: [(String, String)], in repository: BareRepository) throws {
        _ = try Shell.run(["git", "--git-dir=\(repository.path)", "pack-refs", "--all"])
        let file = repository.url.appendingPathComponent("packed-refs")
        let lines = try String(contentsOf: file, encoding: .utf8).split(separator: "\n").filter { !$0.hasPrefix("#") }.map(String.init)
            + refs.map { "\($0.1) \($0.0)" }
        let sorted = lines.sorted { $0.split(separator: " ")[1] < $1.split(separator: " ")[1] }
        try ("# pack-refs with: peeled fully-peeled sorted \n" + sorted.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
    }

    func failedRefs(_ scenario: Scenario) throws -> [String: String] {
        let rows = try scenario.store().refHistory(repository: "app", remote: "primary").filter { $0.outcome == .failed }
        return Dictionary(rows.map { ($0.ref, $0.message ?? "") }) { first, _ in first }
    }

    @Test func overGitProtocolALongRefFailsAloneAndTheOthersAreMirrored() throws {
        // Given a primary behind git daemon with main, feature, a 300-byte name part and a 1,011-byte name
        let scenario = try Scenario("refs-long-git")
        let main = try scenario.primary.commit("first")
        let feature = try scenario.primary.commit("feature", on: "feature")
        try plant([(Self.longPart, main), (Self.longName, main)], in: scenario.primary)
        let backup = try scenario.secondary("backup")
        try scenario.configure(secondaries: "- name: backup\n  url: \(scenario.url(backup))\n  prune: true")

        // When gitmirror syncs twice
        let first = try scenario.gitmirror("sync")
        let second = try scenario.gitmirror("sync")

        // Then main and feature reach the secondary, and each long ref fails alone, named, as rejected
        #expect(first.status == 1 && second.status == 1, "\(first)\n\(second)")
        #expect(try backup.refs() == ["refs/heads/main": main, "refs/heads/feature": feature])
        #expect(first.stdout.contains("2 refs of the primary cannot be mirrored"), "\(first)")
        #expect(first.stdout.contains("every other ref was mirrored"), "\(first)")
        let failed = try failedRefs(scenario)
        #expect(failed[Self.longPart]?.contains("300 bytes long, more than the 250 a file name holds") == true, "\(failed)")
        #expect(failed[Self.longName]?.contains("\(Self.longName.utf8.count) bytes long") == true, "\(failed)")
        #expect(try scenario.state("primary")?.lastErrorClass == .rejected)
        #expect(try scenario.state("backup")?.lastErrorClass == nil)
    }

    @Test func fromALocalPathLongRefsAndBranchesOnABlobOrATreeFailAlone() throws {
        // Given a local primary whose packed-refs hold a long name part and branches on a blob and on a tree
        let scenario = try Scenario("refs-local")
        let main = try scenario.primary.commit("first")
        let blob = try Shell.run(["git", "--git-dir=\(scenario.primary.path)", "hash-object", "-w", "--stdin"], input: "hello\n")
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let tree = try Shell.run(["git", "--git-dir=\(scenario.primary.path)", "rev-parse", "main^{tree}"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try plant([(Self.longPart, main), ("refs/heads/blob", blob), ("refs/heads/tree", tree)], in: scenario.primary)
        let backup = try scenario.secondary("backup")
        try scenario.configure(secondaries: "- name: backup\n  url: \(scenario.url(backup))")
        let text = try String(contentsOf: scenario.config, encoding: .utf8)
            .replacingOccurrences(of: "primary: \(scenario.url(scenario.primary))", with: "primary: \(scenario.primary.path)")
        try text.write(to: scenario.config, atomically: true, encoding: .utf8)

        // When gitmirror syncs
        let sync = try scenario.gitmirror("sync")

        // Then main is mirrored, and the three refs fail alone on the primary (not the whole repository, not not_found)
        #expect(sync.status == 1, "\(sync)")
        #expect(try backup.refs()["refs/heads/main"] == main)
        #expect(try backup.refs()[Self.longPart] == nil)
        let failed = try failedRefs(scenario)
        #expect(failed[Self.longPart] != nil, "\(failed)")
        // (git's fetch will not store a branch on a blob or a tree: they fail on the primary, and the secondary never sees them)
        #expect(failed["refs/heads/blob"]?.contains("a branch must point at a commit") == true, "\(failed)")
        #expect(failed["refs/heads/tree"]?.contains("a branch must point at a commit") == true, "\(failed)")
        #expect(try backup.refs().count == 1)
        #expect(try scenario.state("primary")?.lastErrorClass == .rejected, "\(sync)")
        #expect(!sync.stdout.contains("not_found"), "\(sync)")
    }

    @Test func aBranchOnABlobFromAGitServerFailsOnlyThatRefOnTheSecondary() throws {
        // Given a primary behind git daemon whose branch blob points at a blob
        let scenario = try Scenario("refs-blob-git")
        let main = try scenario.primary.commit("first")
        let blob = try Shell.run(["git", "--git-dir=\(scenario.primary.path)", "hash-object", "-w", "--stdin"], input: "hello\n")
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try plant([("refs/heads/blob", blob)], in: scenario.primary)
        let backup = try scenario.secondary("backup")
        try scenario.configure(secondaries: "- name: backup\n  url: \(scenario.url(backup))")

        // When gitmirror syncs
        let sync = try scenario.gitmirror("sync")

        // Then main is mirrored, and only refs/heads/blob fails, named, with the server's reason
        #expect(sync.status == 1, "\(sync)")
        #expect(try backup.refs() == ["refs/heads/main": main])
        #expect(sync.stdout.contains("refs/heads/blob") && sync.stdout.contains("non-commit object"), "\(sync)")
        let rows = try scenario.store().refHistory(repository: "app").filter { $0.ref == "refs/heads/blob" }
        #expect(rows.contains { $0.outcome == .rejected || $0.outcome == .failed }, "\(rows)")
        #expect(try scenario.store().refHistory(repository: "app", remote: "backup").contains { $0.ref == "refs/heads/main" && $0.outcome == .applied })
    }
}
