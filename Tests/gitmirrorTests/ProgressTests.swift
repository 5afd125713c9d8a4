import Foundation
import MirrorCore
import Testing
import TestSupport

@Suite(.onTestThreads) struct ProgressTests {
    @Test func longPushPrintsTimedLinesWhenNobodyWatchesAndStatusShowsHowFarItIs() throws {
        // Given a secondary whose server holds every push until the test lets it go
        let scenario = try Scenario("progress")
        try scenario.primary.commit("first")
        try scenario.primary.commit("second", on: "feature")
        let held = try scenario.secondary("held")
        let release = scenario.sandbox.path("release-the-push")
        let reached = scenario.sandbox.path("push-reached-the-server")
        try held.installHook("pre-receive", """
            #!/bin/sh
            cat >/dev/null
            touch '\(reached.path)'
            while [ ! -e '\(release.path)' ]; do sleep 0.05; done
            exit 0
            """)
        try scenario.configure(secondaries: "- {name: held, url: \"\(scenario.url(held))\"}")

        // When a sync runs with its output going to a file (as under cron), a line every second
        let log = scenario.sandbox.path("sync-output.log")
        let sync = try Shell.start([Gitmirror.executable.path, "sync", "--progress-every", "1s", "--config", scenario.config.path], log: log)
        #expect(eventually(within: 60) { FileManager.default.fileExists(atPath: reached.path) })

        // Then while the server holds the push, timed lines name the remote and say what it is doing
        let output = { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }
        #expect(eventually(within: 30) { output().split(separator: "\n").contains { $0.contains(" app/held: ") && $0.contains("so far)") } }, "\(output())")
        // And status shows the running sync on that remote
        var status = ""
        #expect(eventually(within: 30) {
            status = try scenario.gitmirror("status").stdout
            return status.contains("syncing now:") && status.contains("app/held: ")
        }, "\(status)")
        let json = try scenario.gitmirror("status", "--json").stdout
        #expect(json.contains("\"progress\" : \""), "\(json)")

        // When the server lets the push go
        try "".write(to: release, atomically: true, encoding: .utf8)
        let exit = sync.wait()

        // Then the sync succeeds, the refs are there, and status no longer shows work in progress
        #expect(exit == 0, "\(output())")
        #expect(try held.refs() == scenario.primary.refs())
        #expect(try scenario.store().progress().isEmpty)
        #expect(!(try scenario.gitmirror("status").stdout.contains("syncing now:")))
        // And no line is a terminal's redraw: no escape sequences in a file
        #expect(!output().contains("\u{1B}["))
    }
}

@Suite(.onTestThreads) struct TransferStopTests {
    @Test func aPushTheServerNeverAnswersIsStoppedWithEverythingItStarted() throws {
        // Given a secondary whose server takes the pack and then never answers
        let (scenario, silent) = try Scenario.withSecondary("push-never-answered", named: "silent-after-pack")
        let release = scenario.sandbox.path("release-the-hook")
        defer { try? "".write(to: release, atomically: true, encoding: .utf8) }
        try silent.installHook("pre-receive", """
            #!/bin/sh
            cat >/dev/null
            while [ ! -e '\(release.path)' ]; do sleep 0.05; done
            exit 1
            """)
        try scenario.configure(secondaries: "- {name: silent, url: \"\(scenario.url(silent))\", stall_timeout: 2s}")

        // When gitmirror syncs
        let output = try scenario.gitmirror("sync")

        // Then that secondary fails as a timeout, and neither the worker nor the git push it started is left running
        #expect(output.status == 1, "\(output)")
        #expect(try scenario.state("silent")?.lastErrorClass == .timeout, "\(output)")
        let cache = scenario.sandbox.path("state/cache/app.git").path
        #expect(eventually(within: 10) { ProcessTable.processes(argvContaining: "--git-dir=\(cache)").isEmpty },
                "\(ProcessTable.processes(argvContaining: "--git-dir=\(cache)"))")
        #expect(try silent.refs().isEmpty)
    }
}
