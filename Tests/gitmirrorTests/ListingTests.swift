import Foundation
import MirrorCore
import Testing
import TestSupport

/// A repository lists its secondaries while it lists its primary (#12): on a pass where nothing
/// moved, far-away remotes cost one round trip of listings, not two in a row.
@Suite(.onTestThreads) struct ListingTests {
    @Test func theSecondariesAreListedWhileThePrimaryIs() throws {
        // Given a primary and two secondaries each 500 ms away (each way), mirrored once
        let (scenario, backup) = try Scenario.withSecondary("listing-overlap", named: "backup")
        let archive = try scenario.secondary("archive")
        let proxies = try (0..<3).map { _ in try DelayProxy(sandbox: scenario.sandbox, targetPort: scenario.daemon.port, delay: 0.5) }
        func address(_ proxy: DelayProxy, _ name: String) -> String { "git://127.0.0.1:\(proxy.port)/\(name).git" }
        try scenario.configure(repositories: [Scenario.Repository("app", primary: address(proxies[0], "primary"), secondaries: [
            "{name: backup, url: \"\(address(proxies[1], "backup"))\"}", "{name: archive, url: \"\(address(proxies[2], "archive"))\"}",
        ])])
        #expect(try scenario.gitmirror("sync").status == 0)
        #expect(try backup.refs() == scenario.primary.refs() && archive.refs() == scenario.primary.refs())
        let before = proxies.map { $0.connections.count }

        // When nothing moved and it syncs again
        let output = try scenario.gitmirror("sync")

        // Then each secondary's listing began before the primary's ended
        #expect(output.status == 0, "\(output)")
        // (within half a round trip of the primary's: listed one after the other, a secondary opens only once the
        // primary's advertisement is back, a whole round trip, 1 s, later)
        let primary = try #require(proxies[0].connections.dropFirst(before[0]).first)
        for (index, proxy) in proxies.enumerated().dropFirst() {
            let listing = try #require(proxy.connections.dropFirst(before[index]).first)
            #expect(listing.opened < primary.opened + 0.5, "secondary \(index) opened \(listing.opened - primary.opened) s after the primary")
        }
    }
}
