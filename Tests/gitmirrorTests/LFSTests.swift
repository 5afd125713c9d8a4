import Foundation
import MirrorCore
import Testing
import TestSupport

/// `lfs: true` against a real LFS server (giftless behind nginx, as the forges run theirs), with
/// objects put on the primary by Debian's git-lfs client.
@Suite(.onTestThreads) struct LFSTests {
    static let password = "lfs-Canary-Password-0123456789"

    struct Stage {
        let sandbox: Sandbox
        let server: HTTPSServer
        let work: URL
        let environment: [String: String]
        let config: URL

        init(_ name: String) throws {
            sandbox = try Sandbox(name)
            let served = try sandbox.directory("served")
            try BareRepository.create(at: served.appendingPathComponent("acme/app.git"))
            try BareRepository.create(at: served.appendingPathComponent("backup/app.git"))
            server = try HTTPSServer(sandbox: sandbox, root: served, user: "git", password: LFSTests.password, lfs: true)
            work = try sandbox.directory("work")
            let home = try sandbox.directory("home")
            environment = ["HOME": home.path, "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0", "GIT_SSL_CAINFO": server.authority.certificate.path]
            config = try sandbox.write("mirrors.yaml", """
                state_dir: state
                credentials:
                  web:
                    username: git
                    password_env: WEB_PASSWORD
                    ca_file: \(server.authority.certificate.path)
                repositories:
                  - name: app
                    primary:
                      url: \(server.url("acme/app.git"))
                      credentials: web
                    secondaries:
                      - name: backup
                        url: \(server.url("backup/app.git"))
                        credentials: web
                        lfs: true
                """)
            try git("init", "-q", "-b", "main")
            try git("config", "user.email", "dev@example.com")
            try git("config", "user.name", "Dev")
            try git("lfs", "install")   // in this test's HOME: its clones smudge too
            try git("lfs", "track", "*.bin")
        }

        @discardableResult
        func git(_ arguments: String...) throws -> String {
            let output = try Shell.run(["git", "-C", work.path] + arguments, environment: ProcessInfo.processInfo.environment.merging(environment) { _, new in new })
            return output.stdout
        }

        /// Commits a binary file tracked by LFS and pushes it (and its object) to the primary; returns the object's oid.
        @discardableResult
        func commitObject(_ file: String, bytes: Int, seed: UInt8) throws -> String {
            let data = Data((0..<bytes).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) })
            try data.write(to: work.appendingPathComponent(file))
            try git("add", ".gitattributes", file)
            try git("commit", "-q", "-m", "add \(file)")
            let address = server.url("acme/app.git").replacingOccurrences(of: "https://", with: "https://git:\(LFSTests.password)@")
            try git("push", "-q", address, "main")
            let pointer = try git("cat-file", "-p", "HEAD:\(file)")
            return String(pointer.split(separator: "\n").first { $0.hasPrefix("oid sha256:") }!.dropFirst("oid sha256:".count))
        }

        func stored(_ oid: String, repository: String) -> Data? {
            FileManager.default.contents(atPath: server.lfsStorage!.appendingPathComponent("\(repository)/\(oid)").path)
        }

        func sync() throws -> (output: Shell.Output, report: [String: Any]) {
            let output = try Gitmirror.run(["sync", "--json"], config: config, environment: ["WEB_PASSWORD": LFSTests.password])
            let reports = (try? JSONSerialization.jsonObject(with: Data(output.stdout.utf8))) as? [[String: Any]] ?? []
            return (output, (reports.first?["secondaries"] as? [[String: Any]])?.first ?? [:])
        }
    }

    @Test func objectsReachTheSecondaryBeforeItsRefsAndOnlyOnce() throws {
        // Given a primary whose history points to an LFS object held by its LFS server
        let stage = try Stage("lfs")
        let first = try stage.commitObject("model.bin", bytes: 300_000, seed: 1)
        #expect(stage.stored(first, repository: "acme/app") != nil)

        // When gitmirror syncs
        let (output, report) = try stage.sync()

        // Then the secondary's LFS server holds the object, byte for byte, and the refs are pushed
        #expect(output.status == 0, "\(output)")
        #expect(report["lfs_objects"] as? Int == 1, "\(report)")
        #expect(stage.stored(first, repository: "backup/app") == stage.stored(first, repository: "acme/app"))
        let served = BareRepository(url: stage.server.root.appendingPathComponent("backup/app.git"))
        #expect(try served.refs()["refs/heads/main"] == BareRepository(url: stage.server.root.appendingPathComponent("acme/app.git")).refs()["refs/heads/main"])
        #expect(FileManager.default.fileExists(atPath: stage.sandbox.path("state/lfs/objects/\(first.prefix(2))/\(first.dropFirst(2).prefix(2))/\(first)").path))

        // When a second object is pushed to the primary, only it travels
        let second = try stage.commitObject("weights.bin", bytes: 70_000, seed: 2)
        let (again, againReport) = try stage.sync()
        #expect(again.status == 0, "\(again)")
        #expect(againReport["lfs_objects"] as? Int == 1, "\(againReport)")
        #expect(stage.stored(second, repository: "backup/app") == stage.stored(second, repository: "acme/app"))

        // And a clone of the secondary with git-lfs gets the objects
        let clone = stage.sandbox.path("clone")
        let address = stage.server.url("backup/app.git").replacingOccurrences(of: "https://", with: "https://git:\(Self.password)@")
        _ = try Shell.run(["git", "clone", "-q", address, clone.path],
                          environment: ProcessInfo.processInfo.environment.merging(stage.environment) { _, new in new })
        #expect(FileManager.default.contents(atPath: clone.appendingPathComponent("model.bin").path) == stage.stored(first, repository: "acme/app"))

        // And the password appears nowhere gitmirror writes
        let scan = stage.sandbox.files(under: "state", containing: [Self.password])
        #expect(scan.hits.isEmpty, "\(scan.hits)")
        #expect(!output.stdout.contains(Self.password) && !output.stderr.contains(Self.password))
    }

    @Test func aPointerWhoseObjectIsMissingKeepsEveryRefOffTheSecondary() throws {
        // Given a primary mirrored once, then a commit whose pointer names an object no LFS server holds
        let stage = try Stage("lfs-missing")
        try stage.commitObject("model.bin", bytes: 5000, seed: 3)
        #expect(try stage.sync().output.status == 0)
        let served = BareRepository(url: stage.server.root.appendingPathComponent("backup/app.git"))
        let before = try served.refs()
        let primary = BareRepository(url: stage.server.root.appendingPathComponent("acme/app.git"))
        let fake = "version https://git-lfs.github.com/spec/v1\noid sha256:\(String(repeating: "ab", count: 32))\nsize 1234\n"
        try primary.commit("a pointer without its object", file: "ghost.bin", content: fake)

        // When gitmirror syncs
        let (output, report) = try stage.sync()

        // Then the secondary fails as not_found, saying which object, and none of its refs moved
        #expect(output.status == 1, "\(output)")
        let failure = report["failure"] as? [String: Any] ?? [:]
        #expect(failure["error_class"] as? String == "not_found", "\(report)")
        #expect((failure["message"] as? String ?? "").contains(String(repeating: "ab", count: 32)), "\(failure)")
        #expect(try served.refs() == before)
    }

    @Test func validateRefusesLFSWhereItCannotWork() throws {
        let sandbox = try Sandbox("lfs-validate")
        let config = try sandbox.write("mirrors.yaml", """
            repositories:
              - name: app
                primary: git@git.example.com:acme/app.git
                secondaries:
                  - name: aws
                    url: codecommit::eu-west-1://app
                    lfs: true
                  - name: web
                    url: https://backup.example.com/acme/app.git
                    lfs: true
            """)
        let output = try Gitmirror.run(["validate"], config: config, environment: ["AWS_REGION": "eu-west-1"])
        #expect(output.status == 2, "\(output)")
        #expect(output.stderr.contains("mirrors.yaml:3:14: error: a secondary has lfs: true, but the primary is ssh"), "\(output.stderr)")
        #expect(output.stderr.contains("mirrors.yaml:7:14: error: CodeCommit does not store Git LFS objects"), "\(output.stderr)")
    }
}
