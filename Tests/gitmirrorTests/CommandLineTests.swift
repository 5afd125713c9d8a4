import Foundation
import MirrorCore
import Testing
import TestSupport

/// The commands as a person meets them: exit codes, output shapes, help.
@Suite(.onTestThreads) struct CommandLineTests {
    @Test func validateReportsEveryProblemAndExitsTwo() throws {
        let sandbox = try Sandbox("validate")
        let config = try sandbox.write("mirrors.yaml", """
            repositories:
              - name: app
                primary: https://bot:hunter2@git.example.com/app.git
                secondaries:
                  - name: backup
                    url: /srv/backup.git
                    credentials: missing
            """)

        let output = try Gitmirror.run(["validate"], config: config)

        #expect(output.status == 2, "\(output)")
        #expect(output.stderr.contains("\(config.path):3:14: error: the URL carries a password"))
        #expect(output.stderr.contains("\(config.path):7:22: error: credential 'missing' is not defined"))
        #expect(!output.combined.contains("hunter2"))
        // And sync refuses to run at all
        #expect(try Gitmirror.run(["sync"], config: config).status == 2)
    }

    @Test func statusJSONListsEveryRemoteEvenBeforeTheFirstSync() throws {
        let (scenario, backup) = try Scenario.withSecondary("status", named: "backup")
        let missing = try Network.freePort()
        try scenario.configure(secondaries: """
            - name: backup
              url: \(scenario.url(backup))
            - name: gone
              url: git://127.0.0.1:\(missing)/gone.git
            """)

        let before = try scenario.gitmirror("status", "--json")
        #expect(before.status == 0, "\(before)")
        let rowsBefore = try JSONSerialization.jsonObject(with: Data(before.stdout.utf8)) as? [[String: Any]]
        #expect(rowsBefore?.map { $0["state"] as? String } == ["never_synced", "never_synced", "never_synced"])
        // No cache yet: its figures are null, and there
        #expect(rowsBefore?.first?.keys.contains("cache_packs") == true && rowsBefore?.first?["cache_packs"] is NSNull)

        _ = try scenario.gitmirror("sync")
        let after = try scenario.gitmirror("status", "--json")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(after.stdout.utf8)) as? [[String: Any]])
        let byRemote = Dictionary(uniqueKeysWithValues: rows.map { ($0["remote"] as? String ?? "", $0) })
        #expect(byRemote["primary"]?["role"] as? String == "primary")
        #expect(byRemote["backup"]?["state"] as? String == "ok")
        #expect(byRemote["backup"]?["last_success"] is String)
        #expect(byRemote["gone"]?["state"] as? String == "failing")
        #expect(byRemote["gone"]?["last_error_class"] as? String == "network")
        for key in ["repository", "remote", "role", "state", "last_attempt", "last_success", "last_error_class", "last_error"] {
            #expect(rows.allSatisfy { $0.keys.contains(key) }, "missing \(key)")
        }
        // No daemon runs: nothing is overdue by its schedule
        #expect(byRemote["primary"]?["overdue"] as? Bool == false)
        // The primary's row shows the cache's packs and their bytes; a secondary's has neither
        #expect(byRemote["primary"]?["cache_packs"] as? Int == 1, "\(after.stdout)")
        #expect((byRemote["primary"]?["cache_bytes"] as? Int ?? 0) > 0)
        #expect(byRemote["backup"]?.keys.contains("cache_packs") == false)

        // And the sync of every repository was a full pass: SQLite has it, the table shows it
        let pass = try #require(try scenario.store().lastPass())
        #expect(pass.source == "sync" && pass.repositories == 1 && pass.duration > 0 && pass.duration < 120, "\(pass)")
        let table = try scenario.gitmirror("status")
        #expect(table.stdout.contains("last full pass: 1 repository in "), "\(table.stdout)")
    }

    @Test func planPrintsEveryRefAndPushesNothing() throws {
        let scenario = try Scenario("plan")
        try scenario.primary.commit("first")
        try scenario.primary.tag("v1")
        let backup = try scenario.secondary("backup")
        try scenario.configure(secondaries: "- name: backup\n  url: \(scenario.url(backup))")

        let output = try scenario.gitmirror("plan")

        #expect(output.status == 0, "\(output)")
        #expect(output.stdout.contains("create") && output.stdout.contains("refs/heads/main") && output.stdout.contains("refs/tags/v1"))
        #expect(try backup.refs().isEmpty)
        #expect(!scenario.daemon.logText.contains("receive-pack"))
        // The cache holds the primary's refs: the next sync only pushes
        #expect(try scenario.cache.refs()["refs/heads/main"] != nil)
    }

    @Test func planExitsOneWhenASyncWouldLeaveARefDiverged() throws {
        // Given a secondary whose main holds a commit the primary does not have
        let (scenario, backup) = try Scenario.withBackup("plan-diverged")
        try backup.commit("only on the backup")

        // When plan runs
        let output = try scenario.gitmirror("plan", "--json")

        // Then it predicts the divergence and exits 1, as the sync would; nothing moved
        #expect(output.status == 1, "\(output)")
        let reports = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [[String: Any]])
        let secondary = (reports.first?["secondaries"] as? [[String: Any]])?.first
        #expect(secondary?["result"] as? String == "diverged", "\(output.stdout)")
        #expect(try backup.refs() != scenario.primary.refs())
    }

    @Test func anAcceptedDivergenceStopsCountingUntilEitherSideMoves() throws {
        // Given a secondary whose main diverged from the primary's
        let (scenario, backup) = try Scenario.withBackup("accept")
        try backup.commit("only on the backup")
        #expect(try scenario.gitmirror("sync").status == 1)

        // When an operator accepts it
        let refused = try scenario.gitmirror("accept", "app", "--remote", "backup", "--ref", "v9")
        #expect(refused.status == 1 && refused.stderr.contains("no entry for refs/heads/v9"), "\(refused)")
        let accept = try scenario.gitmirror("accept", "app", "--remote", "backup", "--ref", "main")
        #expect(accept.status == 0 && accept.stdout.contains("accepted: refs/heads/main on backup"), "\(accept)")

        // Then syncs are in step and leave the ref as it is, saying why
        let held = try #require(try backup.refs()["refs/heads/main"])
        #expect(try scenario.gitmirror("sync").status == 0)
        #expect(try scenario.state("backup")?.state == .ok)
        #expect(try backup.refs()["refs/heads/main"] == held)
        let entry = try scenario.store().refHistory(repository: "app", remote: "backup", ref: "refs/heads/main").first
        #expect(entry?.action == .keep && entry?.message?.contains("accepted by an operator") == true, "\(String(describing: entry))")

        // And once the primary moves, the divergence counts again
        try scenario.primary.commit("more on the primary")
        let moved = try scenario.gitmirror("sync")
        let movedState = try scenario.state("backup")
        #expect(moved.status == 1 && movedState?.state == .diverged, "\(moved)")
    }

    @Test func syncJSONReportsPerRemoteResults() throws {
        let (scenario, _) = try Scenario.withBackup("sync-json")

        let output = try scenario.gitmirror("sync", "--json")

        #expect(output.status == 0, "\(output)")
        let reports = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [[String: Any]])
        let secondaries = try #require(reports.first?["secondaries"] as? [[String: Any]])
        #expect(secondaries.first?["result"] as? String == "ok")
        #expect((secondaries.first?["refs"] as? [[String: Any]])?.first?["action"] as? String == "create")
    }

    /// Every key of a JSON document, at every depth, and every string value.
    func walk(_ value: Any, keys: inout Set<String>, strings: inout [String]) {
        if let object = value as? [String: Any] {
            for (key, inner) in object { keys.insert(key); walk(inner, keys: &keys, strings: &strings) }
        } else if let array = value as? [Any] {
            for inner in array { walk(inner, keys: &keys, strings: &strings) }
        } else if let text = value as? String {
            strings.append(text)
        }
    }

    @Test func everyJSONOutputIsSnakeCaseWithRFC3339TimesAndTheTablesShowTheOffset() throws {
        // Given a repository synced once
        let (scenario, _) = try Scenario.withBackup("json-style")
        let sync = try scenario.gitmirror("sync", "--json")
        #expect(sync.status == 0, "\(sync)")

        // When every command that speaks JSON is asked to
        var keys = Set<String>(), strings: [String] = []
        for arguments in [["status", "--json"], ["history", "app", "--json"], ["doctor", "--json"], ["plan", "--json"]] {
            let output = try Gitmirror.run(arguments, config: scenario.config)
            walk(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)), keys: &keys, strings: &strings)
        }
        walk(try JSONSerialization.jsonObject(with: Data(sync.stdout.utf8)), keys: &keys, strings: &strings)

        // Then no key is camelCase (run_id, new_oid, error_class…), and every time carries its offset
        #expect(keys.filter { $0.contains(where: \.isUppercase) }.isEmpty, "\(keys.sorted())")
        #expect(keys.isSuperset(of: ["run_id", "new_oid", "recorded_at", "last_success", "up_to_date"]), "\(keys.sorted())")
        let times = strings.filter { $0.range(of: #"^\d{4}-\d\d-\d\dT"#, options: .regularExpression) != nil }
        #expect(!times.isEmpty)
        #expect(times.allSatisfy { $0.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d([+-]\d\d:\d\d|Z)$"#, options: .regularExpression) != nil }, "\(times)")
        // And the tables show the same times, offset included
        let table = try scenario.gitmirror("status").stdout + (try scenario.gitmirror("history", "app").stdout)
        #expect(table.range(of: #"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d\d:\d\d"#, options: .regularExpression) != nil, "\(table)")
    }

    @Test func theReadmeListsEveryOptionAndExitCode() throws {
        // Every option a command's --help shows is in the README's command list, and the exit codes are all there
        let readme = try String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("README.md"), encoding: .utf8)
        for command in ["validate", "doctor", "plan", "sync", "status", "history", "daemon"] {
            let help = try Shell.run([Gitmirror.executable.path, command, "--help"], check: false).stdout
            let options = help.matches(of: /\s(--[a-z][a-z-]+)/).map { String($0.1) }.filter { !["--help", "--version", "--config"].contains($0) }
            let line = readme.split(separator: "\n").filter { $0.hasPrefix("gitmirror \(command)") }.joined(separator: " ")
            let continued = readme.components(separatedBy: "gitmirror \(command) ").dropFirst().first?.prefix(400) ?? ""
            for option in Set(options) {
                #expect(line.contains(option) || continued.contains(option), "README's `gitmirror \(command)` line lacks \(option)")
            }
        }
        for code in ["`0`", "`1`", "`2`", "`64`", "`130`"] { #expect(readme.contains(code), "exit code \(code)") }
        #expect(readme.contains("?repository="))
        let usage = try Shell.run([Gitmirror.executable.path, "sync", "--no-such-option"], check: false)
        #expect(usage.status == 64)
    }

    @Test func helpReadsWell() throws {
        let sandbox = try Sandbox("help")
        let root = try Shell.run([Gitmirror.executable.path, "--help"], check: false)
        #expect(root.status == 0)
        for command in ["validate", "doctor", "plan", "sync", "status", "history"] {
            #expect(root.stdout.contains(command), "\(command) missing from --help")
            let help = try Shell.run([Gitmirror.executable.path, command, "--help"], check: false)
            #expect(help.status == 0 && help.stdout.contains("--config"), "\(help)")
        }
        #expect(!root.stdout.contains("__worker"))
        _ = sandbox
    }

    @Test func unknownRepositoryNameIsAClearError() throws {
        let (scenario, _) = try Scenario.withBackup("unknown-repo")

        let output = try scenario.gitmirror("sync", "nope")

        #expect(output.status == 2)
        #expect(output.stderr.contains("no repository named 'nope'") && output.stderr.contains("known: app"))
    }

    @Test func noSecretReachesAnyFileUnderTheStateDirectory() throws {
        // Given an HTTPS secondary reached with a canary password from the environment
        let (scenario, target) = try Scenario.withSecondary("canary-files", named: "target")
        let canary = "canary-state-dir-secret-4417"
        let https = try HTTPSServer(sandbox: scenario.sandbox, root: scenario.served, user: "mirror", password: canary)
        try scenario.configure(secondaries: """
            - name: web
              url: \(https.url("target.git"))
              credentials: web
              force: true
            """, credentials: "web:\n  username: mirror\n  password_env: GITMIRROR_CANARY\n  ca_file: \(https.authority.certificate.path)")

        // When it syncs, diverges, and syncs again with a backup fetch, while a reader keeps the database
        // open (so SQLite's write-ahead log stays on disk, with whatever the syncs wrote into it)
        let first = try scenario.gitmirror("sync", environment: ["GITMIRROR_CANARY": canary])
        let reader = try scenario.store()
        try target.commit("secondary only")
        try scenario.primary.commit("second")
        let second = try scenario.gitmirror("sync", environment: ["GITMIRROR_CANARY": canary])
        let status = try scenario.gitmirror("status")
        let history = try scenario.gitmirror("history", "app")

        // Then the canary is in no output and in no file under state_dir
        #expect(first.status == 0 && second.status == 0, "\(first)\n\(second)")
        for output in [first, second, status, history] { #expect(!output.combined.contains(canary)) }
        let wal = scenario.sandbox.path("state/gitmirror.sqlite-wal")
        #expect(FileManager.default.fileExists(atPath: wal.path), "the scan must read the -wal file too")
        let scan = scenario.sandbox.files(under: "state", containing: [canary])
        #expect(scan.hits.isEmpty, "\(scan.hits)")
        #expect(scan.read > 5)
        withExtendedLifetime(reader) {}
    }
}
