import Foundation
import MirrorCore
import Testing
import TestSupport

/// Host-specific behaviour: known rejections become classes with advice; CodeCommit's limits are honoured.
@Suite(.onTestThreads) struct ForgeTests {
    @Test func protectedBranchRejectionIsClassifiedWithAdvice() throws {
        // Given a secondary whose hook answers as GitHub does for a protected branch
        let scenario = try Scenario("gh006")
        try scenario.primary.commit("first")
        let other = try scenario.primary.commit("other", on: "other")
        let backup = try scenario.secondary("backup")
        try backup.refuse("refs/heads/main", saying: "error: GH006: Protected branch update failed for refs/heads/main.",
                          "error: Changes must be made through a pull request.")
        try scenario.configure(secondaries: "- name: github\n  url: \(scenario.url(backup))")

        let output = try scenario.gitmirror("sync")

        #expect(output.status == 1, "\(output)")
        let state = try #require(try scenario.state("github"))
        #expect(state.lastErrorClass == .protected)
        #expect(state.lastError?.contains("allow the mirror's account to push") == true, "\(state.lastError ?? "")")
        #expect(try backup.refs()["refs/heads/other"] == other)
    }

    @Test func codeCommitRefusesFortyHexBranchNamesAndTakesTheRest() throws {
        let scenario = try Scenario("codecommit-hex")
        try scenario.primary.commit("first")
        let hexName = String(repeating: "ab", count: 20)
        try scenario.primary.commit("oddly named", on: hexName)
        let endpoint = try CodeCommitEndpoint(sandbox: scenario.sandbox, region: "eu-west-1", accessKey: CodeCommitTests.accessKey, secretKey: CodeCommitTests.secret)
        let target = try endpoint.repository("payments")
        try scenario.configure(secondaries: "- name: cc\n  url: codecommit::eu-west-1://payments\n  endpoint: \(endpoint.endpoint)")

        let output = try scenario.gitmirror("sync", environment: CodeCommitTests().environment(endpoint))

        #expect(output.status == 1, "\(output)")
        #expect(try target.refs()["refs/heads/main"] != nil)
        #expect(try target.refs()["refs/heads/\(hexName)"] == nil)
        let row = try #require(try scenario.store().refHistory(repository: "app", ref: "refs/heads/\(hexName)").first)
        #expect(row.outcome == .rejected && row.message?.contains("40 hexadecimal digits") == true)
    }

    @Test func moreThanFourThousandRefUpdatesGoToCodeCommitInBatches() throws {
        // Given 4,001 tags on the primary
        let scenario = try Scenario("codecommit-batches")
        let head = try scenario.primary.commit("first")
        let updates = (0...4000).map { "create refs/tags/t\($0) \(head)" }.joined(separator: "\n") + "\n"
        try Shell.run(["git", "--git-dir=\(scenario.primary.path)", "update-ref", "--stdin"], input: updates)
        let endpoint = try CodeCommitEndpoint(sandbox: scenario.sandbox, region: "eu-west-1", accessKey: CodeCommitTests.accessKey, secretKey: CodeCommitTests.secret)
        let target = try endpoint.repository("payments")
        try scenario.configure(secondaries: "- name: cc\n  url: codecommit::eu-west-1://payments\n  endpoint: \(endpoint.endpoint)")

        let output = try scenario.gitmirror("sync", environment: CodeCommitTests().environment(endpoint))

        // Then all 4,002 refs arrive, in two pushes: 4,000 with the primary's pack as it arrived (the
        // branch among them), the other two afterwards
        #expect(output.status == 0, "\(output)")
        #expect(try target.refs().count == 4002)
        #expect(endpoint.attempts.filter { $0 == "AUTH 200 POST ok" }.count == 2, "\(endpoint.attempts.suffix(10))")
        let history = try scenario.store().refHistory(repository: "app", remote: "cc", limit: 10_000)
        let seeded = history.filter { $0.message == "created from the primary's pack as it arrived" }
        #expect(seeded.count == 4000 && seeded.contains { $0.ref == "refs/heads/main" }, "\(seeded.count)")
        #expect(history.filter { $0.outcome == .applied }.count == 4002)
    }
}
