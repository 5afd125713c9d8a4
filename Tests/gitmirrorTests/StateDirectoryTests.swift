import Foundation
import MirrorCore
import Testing
import TestSupport

/// `state_dir` against other local users: private whichever entry point made it, refused when others
/// can write it, and nothing gitmirror owns reached through a link someone planted.
@Suite(.onTestThreads) struct StateDirectoryTests {
    func mode(_ path: URL) -> Int {
        var info = stat()
        guard lstat(path.path, &info) == 0 else { return -1 }
        return Int(info.st_mode & 0o777)
    }

    /// Plants `name` under state_dir as a link to `target`, as another local user could.
    func plant(_ scenario: Scenario, _ name: String, to target: URL) throws {
        let link = scenario.sandbox.path("state/\(name)")
        try FileManager.default.createDirectory(at: link.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: target.path)
    }

    func scenario(_ name: String) throws -> (Scenario, BareRepository) {
        let scenario = try Scenario(name)
        try scenario.primary.commit("first")
        let backup = try scenario.secondary("backup")
        try scenario.configure(secondaries: "- name: backup\n  url: \(scenario.url(backup))", daemon: "interval: 1h")
        return (scenario, backup)
    }

    @Test func aStateDirMadeByTheDaemonUnderUmask022IsPrivate() throws {
        // Given no state_dir yet, and a daemon started with the usual umask 022
        let (scenario, backup) = try scenario("state-daemon-mode")
        let previous = umask(0o022)
        defer { umask(previous) }
        let daemon = try scenario.startDaemon()

        // When it has synced once
        #expect(eventually(within: 30) { try backup.refs() == scenario.primary.refs() }, "\(daemon.logText)")

        // Then state_dir, cache/ and the caches are 0700, and the database with its -wal and -shm 0600
        let state = scenario.sandbox.path("state")
        #expect(mode(state) == 0o700)
        #expect(mode(state.appendingPathComponent("cache")) == 0o700)
        for file in ["gitmirror.sqlite", "gitmirror.sqlite-wal", "gitmirror.sqlite-shm"] {
            #expect(mode(state.appendingPathComponent(file)) == 0o600, "\(file): \(String(mode(state.appendingPathComponent(file)), radix: 8))")
        }
    }

    @Test func aWiderStateDirOfOursIsNarrowedAndOneOthersCanWriteIsRefused() throws {
        // Given a state_dir of ours left 0755 with a 0644 database from an older gitmirror
        let (scenario, backup) = try scenario("state-narrowed")
        let state = scenario.sandbox.path("state")
        #expect(try scenario.gitmirror("sync").status == 0)
        chmod(state.path, 0o755)
        chmod(state.appendingPathComponent("gitmirror.sqlite").path, 0o644)

        // When sync runs, both are narrowed
        #expect(try scenario.gitmirror("sync").status == 0)
        #expect(mode(state) == 0o700 && mode(state.appendingPathComponent("gitmirror.sqlite")) == 0o600)
        #expect(try backup.refs() == scenario.primary.refs())

        // Given a state_dir that belongs to another user and that everyone can write
        let shared = scenario.sandbox.path("shared-state")
        try FileManager.default.createDirectory(at: shared, withIntermediateDirectories: true)
        chown(shared.path, 65534, 65534)
        chmod(shared.path, 0o777)
        let text = try String(contentsOf: scenario.config, encoding: .utf8).replacingOccurrences(of: "state_dir: state", with: "state_dir: shared-state")
        try text.write(to: scenario.config, atomically: true, encoding: .utf8)

        // Then sync refuses it as a configuration problem, and writes nothing there
        let refused = try scenario.gitmirror("sync")
        #expect(refused.status != 0, "\(refused)")
        #expect(refused.stderr.contains("others can write to it"), "\(refused)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: shared.path).isEmpty)
    }

    @Test func aCachePlantedAsALinkIsRefusedAndItsTargetUntouched() throws {
        // Given another user's repository, and cache/app.git planted as a link to it before the first sync
        let (scenario, backup) = try scenario("state-cache-link")
        let foreign = try BareRepository.create(at: scenario.sandbox.path("someone-else/theirs.git"))
        try foreign.commit("theirs")
        let before = try foreign.refs()
        try plant(scenario, "cache/app.git", to: foreign.url)

        // When gitmirror syncs
        let sync = try scenario.gitmirror("sync")

        // Then the repository fails as config, saying what to remove, and the foreign repository is as it was
        #expect(sync.status != 0, "\(sync)")
        #expect(sync.stdout.contains("is a symbolic link") || sync.stderr.contains("is a symbolic link"), "\(sync)")
        #expect(try foreign.refs() == before)
        #expect(try backup.refs().isEmpty)
        let rows = try scenario.store().remoteStates()
        #expect(rows.first { $0.remote == "primary" }?.lastErrorClass == .config, "\(rows)")
    }

    @Test func aLockFilePlantedAsALinkIsNeverTruncated() throws {
        // Given cache/app.lock planted as a link to a file of someone else's
        let (scenario, _) = try scenario("state-lock-link")
        let victim = scenario.sandbox.path("someone-else.txt")
        try "precious\n".write(to: victim, atomically: true, encoding: .utf8)
        try plant(scenario, "cache/app.lock", to: victim)

        // When gitmirror syncs
        let sync = try scenario.gitmirror("sync")

        // Then it refuses, and the file keeps its content
        #expect(sync.status != 0, "\(sync)")
        #expect(sync.stdout.contains("app.lock is a symbolic link") || sync.stderr.contains("app.lock is a symbolic link"), "\(sync)")
        #expect(try String(contentsOf: victim, encoding: .utf8) == "precious\n")
    }

    @Test func aDatabasePlantedAsALinkIsRefused() throws {
        let (scenario, _) = try scenario("state-db-link")
        let victim = scenario.sandbox.path("someone-else.db")
        try Data("x".utf8).write(to: victim)
        try plant(scenario, "gitmirror.sqlite", to: victim)

        let sync = try scenario.gitmirror("sync")

        #expect(sync.status != 0, "\(sync)")
        #expect(sync.stderr.contains("gitmirror.sqlite is a symbolic link"), "\(sync)")
        #expect(try Data(contentsOf: victim) == Data("x".utf8))
    }
}
