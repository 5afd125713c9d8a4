import Foundation
import MirrorCore
import Testing
import TestSupport

/// Deploy/ checked with the real tools: systemd-analyze, promtool, a Kubernetes schema validator.
@Suite(.onTestThreads) struct DeployTests {
    static let deploy = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Deploy")

    @Test func systemdUnitPassesVerify() throws {
        // The unit names /usr/bin/gitmirror; verify it with the binary this build made. Its man pages are
        // in the package, not on this machine (ShippedUnitTests checks them there).
        let sandbox = try Sandbox("deploy-systemd")
        let unit = try String(contentsOf: Self.deploy.appendingPathComponent("systemd/gitmirror.service"), encoding: .utf8)
            .replacingOccurrences(of: "/usr/bin/gitmirror", with: Gitmirror.executable.path)
        let copy = try sandbox.write("gitmirror.service", unit, mode: 0o644)
        let output = try Shell.run(["systemd-analyze", "verify", "--man=no", copy.path], check: false)
        #expect(output.status == 0, "\(output)")
        #expect(!output.stderr.contains("gitmirror.service:"), "\(output.stderr)")
        #expect(unit.contains("Type=notify") && unit.contains("User=gitmirror") && !unit.contains("\nLoadCredential="))
        // and its hardening stays: systemd's own exposure score at 2.0 or better
        let security = try Shell.run(["systemd-analyze", "security", "--offline=true", copy.path], check: false)
        let score = security.stdout.split(separator: "\n").last { $0.contains("Overall exposure level") }
            .flatMap { $0.split(separator: ":").last?.split(separator: " ").first }.flatMap { Double($0) }
        #expect(score != nil && score! <= 2.0, "\(security.stdout.suffix(400))")
    }

    /// The image is the Debian package installed on bookworm-slim: one build for both, and apt installs
    /// what the package depends on.
    @Test func containerImageInstallsThePackageBuiltByScriptsPackage() throws {
        let containerfile = try String(contentsOf: Self.deploy.appendingPathComponent("container/Containerfile"), encoding: .utf8)
        let build = try #require(containerfile.components(separatedBy: "FROM debian:bookworm-slim").first)
        let runtime = try #require(containerfile.components(separatedBy: "FROM debian:bookworm-slim").last)
        #expect(build.contains("RUN scripts/package"))
        #expect(runtime.contains("apt-get install") && runtime.contains("/tmp/gitmirror.deb"))
        #expect(runtime.contains("--uid 10001") && runtime.contains("USER 10001:10001"))
        #expect(runtime.contains("ENTRYPOINT [\"/usr/bin/gitmirror\"]"))
    }

    /// The package's Depends: names the Debian package of every system library the binary links (Swift's
    /// own are linked in with --static-swift-stdlib), and the programs gitmirror runs: git and OpenSSH.
    @Test func packageDependsOnEveryLinkedSystemLibraryAndTheProgramsItRuns() throws {
        let sandbox = try Sandbox("deploy-depends")
        let unpacked = try sandbox.directory("package")
        try ShippedPackage.extract(into: unpacked)
        let binary = unpacked.appendingPathComponent("usr/bin/gitmirror").path
        let dependsField = try Shell.run(["dpkg-deb", "-f", try ShippedPackage.file().path, "Depends"]).stdout
        // Packed relative relocations (Package.swift's compactLink) need the loader of glibc 2.36.
        if try Shell.run(["readelf", "--version-info", binary]).stdout.contains("GLIBC_ABI_DT_RELR") {
            #expect(dependsField.contains("libc6 (>= 2.36)"), "\(dependsField)")
        }
        let depends = Set(dependsField
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ").first.map(String.init) ?? "" })
        #expect(depends.isSuperset(of: ["git", "openssh-client", "ca-certificates"]), "\(depends)")
        // Loaded when first needed (dlopen), so named by hand: libcurl at the first HTTP request, libgit2
        // at the first repository a process opens, libcrypto (libssl3) at the first digest.
        #expect(depends.isSuperset(of: ["libcurl4", "libgit2-1.5", "libssl3"]), "\(depends)")

        let dynamic = try Shell.run(["readelf", "--dynamic", binary])
        let needed = dynamic.stdout.split(separator: "\n").filter { $0.contains("(NEEDED)") }
            .compactMap { $0.split(separator: "[").last?.split(separator: "]").first.map(String.init) }
        let resolved = try Shell.run(["ldd", binary]).stdout.split(separator: "\n")
        #expect(!resolved.contains { $0.contains("not found") || $0.contains("swift") }, "\(resolved)")
        var packages: [String: String] = [:]
        for library in needed where !library.hasPrefix("ld-linux") {
            guard let line = resolved.first(where: { $0.trimmingCharacters(in: .whitespaces).hasPrefix(library + " ") }),
                  let path = line.split(separator: " ").first(where: { $0.hasPrefix("/") }) else {
                Issue.record("\(library) does not resolve")
                continue
            }
            // dpkg knows a file by the path its package installed (/lib/… or /usr/lib/… on a merged /usr).
            let real = URL(fileURLWithPath: String(path)).resolvingSymlinksInPath().path
            let candidates = [String(path), real, real.hasPrefix("/usr/") ? String(real.dropFirst(4)) : "/usr" + real]
            let owners = try candidates.map { try Shell.run(["dpkg-query", "--search", $0], check: false) }
            guard let owner = owners.first(where: { $0.status == 0 }),
                  let package = owner.stdout.split(separator: ":").first.map(String.init) else {
                Issue.record("\(library) (\(path)) belongs to no Debian package")
                continue
            }
            packages[library] = package
        }
        #expect(packages.values.contains("libsqlite3-0"), "\(packages)")
        #expect(!needed.contains { $0.hasPrefix("libgit2") || $0.hasPrefix("libcurl") || $0.hasPrefix("libcrypto") }, "\(needed)")
        for (library, package) in packages {
            #expect(depends.contains(package), "gitmirror links \(library) from \(package), which Depends: does not name")
        }
    }

    @Test func alertRulesPassPromtool() throws {
        let output = try Shell.run(["promtool", "check", "rules", Self.deploy.appendingPathComponent("kubernetes/alert-rules.yml").path], check: false)
        #expect(output.status == 0, "\(output)")
        #expect(output.stdout.contains("SUCCESS: 3 rules found"))
    }

    /// The rules fire when they should — including for a secondary that has never once been in step —
    /// and stay quiet after a recovery: promtool's own rule unit tests.
    @Test func alertRulesFireAsTheirUnitTestsExpect() throws {
        let tests = Self.deploy.appendingPathComponent("kubernetes/alert-rules.test.yml")
        let output = try Shell.run(["promtool", "test", "rules", tests.path], check: false)
        #expect(output.status == 0, "\(output)")
        #expect(output.stdout.contains("SUCCESS"))
        #expect(try String(contentsOf: tests, encoding: .utf8).contains("remote=\"codecommit\""))
    }

    @Test func kubernetesManifestsPassTheSchemaValidator() throws {
        let output = try Shell.run(["kubernetes-validate", "--strict", Self.deploy.appendingPathComponent("kubernetes/gitmirror.yaml").path], check: false)
        #expect(output.status == 0, "\(output)")
        for kind in ["statefulset/gitmirror", "configmap/gitmirror-config", "secret/gitmirror-secrets", "service/gitmirror", "service/gitmirror-peers", "serviceaccount/gitmirror"] {
            #expect(output.combined.contains("passed for resource \(kind)"), "\(kind)")
        }
    }

    @Test func theManifestsConfigurationIsValid() throws {
        // The mirrors.yaml inside the ConfigMap must load (its secret files are mounted in the pod; here they are not).
        let manifest = try String(contentsOf: Self.deploy.appendingPathComponent("kubernetes/gitmirror.yaml"), encoding: .utf8)
        let start = try #require(manifest.range(of: "  mirrors.yaml: |\n"))
        let block = manifest[start.upperBound...].prefix { _ in true }.split(separator: "\n", omittingEmptySubsequences: false)
            .prefix { $0.hasPrefix("    ") || $0.isEmpty }.map { String($0.dropFirst(4)) }.joined(separator: "\n")
        do {
            _ = try ConfigLoader().parse(block, file: URL(fileURLWithPath: "/etc/gitmirror/mirrors.yaml"), environment: ["AWS_REGION": "eu-west-1"])
            Issue.record("expected only the missing secret files to be reported")
        } catch {
            #expect(error.problems.allSatisfy { $0.message.contains("does not exist") }, "\(error)")
        }
    }

    @Test func shardAutoTakesTheStatefulSetOrdinal() throws {
        #expect(try Shard.parse("auto/3", hostName: "gitmirror-2") == Shard(index: 2, count: 3))
        #expect(try Shard.parse("1/4", hostName: "x") == Shard(index: 1, count: 4))
        // replicas: 3 with auto/2: the third pod is refused, saying why, rather than owning nothing
        #expect { try Shard.parse("auto/2", hostName: "gitmirror-2") } throws: {
            "\($0)".contains("ordinal 2, but there are only 2 shards") && "\($0)".contains("replicas and N disagree")
        }
        #expect(throws: ShardError.self) { try Shard.parse("auto/2", hostName: "laptop") }
        #expect(throws: ShardError.self) { try Shard.parse("2/2", hostName: "x") }
        // Every repository belongs to exactly one shard
        let names = (0..<200).map { "repo-\($0)" }
        let shards = (0..<3).map { Shard(index: $0, count: 3) }
        #expect(names.allSatisfy { name in shards.filter { $0.owns(name) }.count == 1 })
        #expect(shards.allSatisfy { shard in names.contains { shard.owns($0) } })
    }

    @Test func theManifestsPeersShardsAndReplicasAgree() throws {
        // Entry i of daemon.peers is pod i's stable name under the headless Service, and there are
        // as many as replicas and as --shard auto/N says: none of the three can drift alone.
        let manifest = try String(contentsOf: Self.deploy.appendingPathComponent("kubernetes/gitmirror.yaml"), encoding: .utf8)
        let replicas = try #require(manifest.firstMatch(of: /replicas: (\d+)/).flatMap { Int($0.1) })
        let shards = try #require(manifest.firstMatch(of: /"--shard", "auto\/(\d+)"/).flatMap { Int($0.1) })
        let peers = manifest.matches(of: /http:\/\/gitmirror-(\d+)\.gitmirror-peers:9150/).map { Int($0.1)! }
        #expect(replicas == shards)
        #expect(peers == Array(0..<replicas), "\(peers)")
        #expect(manifest.contains("clusterIP: None") && manifest.contains("serviceName: gitmirror-peers"))
    }
}
