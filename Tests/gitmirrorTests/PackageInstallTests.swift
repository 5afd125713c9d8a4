import Foundation
import MirrorCore
import Testing
import TestSupport

/// The Debian package installed as an operator installs it, on a clean bookworm root where Swift is
/// not: apt resolves what Depends: names, and the installed gitmirror runs.
@Suite(.onTestThreads) struct PackageInstallTests {
    @Test func thePackageInstallsWhereSwiftIsNotAndItsGitmirrorSyncs() throws {
        // Given a clean Debian root without any Swift toolchain, and the package in it
        let sandbox = try Sandbox("package-install")
        let root = sandbox.path("root")
        try DebianRoot.make(in: root)
        let package = try ShippedPackage.file()
        try FileManager.default.copyItem(at: package, to: root.appendingPathComponent("tmp/\(package.lastPathComponent)"))
        let absent = try DebianRoot.run(root, "test ! -e /opt/swift && ! command -v swift && ! command -v swiftc && echo no-toolchain")
        #expect(absent.stdout.contains("no-toolchain"), "\(absent)")

        // When apt installs it
        let install = try DebianRoot.run(root, "apt-get update -qq && apt-get install -y -qq /tmp/\(package.lastPathComponent)")
        #expect(install.status == 0, "\(install.stdout.suffix(3000))\n\(install.stderr.suffix(3000))")

        // Then every library it needs resolves from Debian's packages, and nothing from a toolchain
        let ldd = try DebianRoot.run(root, "ldd /usr/bin/gitmirror")
        #expect(ldd.status == 0 && !ldd.stdout.contains("not found") && !ldd.stdout.contains("swift"), "\(ldd)")
        // and it runs: --version, validate of the example the package installs, and a sync between two local repositories
        let version = try DebianRoot.run(root, "gitmirror --version")
        #expect(version.status == 0 && version.stdout.hasPrefix("gitmirror "), "\(version)")
        let validate = try DebianRoot.run(root, "setpriv --reuid=gitmirror --regid=gitmirror --init-groups gitmirror validate --config /etc/gitmirror/mirrors.yaml")
        #expect(validate.status == 0, "\(validate)")
        let sync = try DebianRoot.run(root, """
            export GIT_AUTHOR_NAME=Ops GIT_AUTHOR_EMAIL=ops@example.invalid GIT_COMMITTER_NAME=Ops GIT_COMMITTER_EMAIL=ops@example.invalid
            mkdir -p /srv/git
            git init -q --bare -b main /srv/git/app.git
            git init -q --bare -b main /srv/git/app-backup.git
            git clone -q /srv/git/app.git /tmp/work 2>/dev/null
            cd /tmp/work && echo one > one.txt && git add one.txt && git commit -q -m one && git tag v1 && git push -q origin main v1
            chown -R gitmirror:gitmirror /srv/git
            cat > /tmp/mirrors.yaml <<YAML
            state_dir: /var/lib/gitmirror
            repositories:
              - name: app
                primary: /srv/git/app.git
                secondaries:
                  - name: backup
                    url: /srv/git/app-backup.git
            YAML
            cd /
            setpriv --reuid=gitmirror --regid=gitmirror --init-groups gitmirror sync --config /tmp/mirrors.yaml
            test "$(git --git-dir=/srv/git/app.git show-ref)" = "$(git --git-dir=/srv/git/app-backup.git show-ref)" && echo in-step
            """)
        #expect(sync.status == 0 && sync.stdout.contains("in-step"), "\(sync)")

        // And the package put its unit, its man pages and its completions where Debian looks for them,
        // and a private state folder owned by its user
        for path in ["lib/systemd/system/gitmirror.service", "usr/share/man/man1/gitmirror.1.gz", "usr/share/man/man1/gitmirror.sync.1.gz",
                     "usr/share/man/man1/gitmirror.daemon.1.gz", "usr/share/bash-completion/completions/gitmirror",
                     "usr/share/zsh/vendor-completions/_gitmirror", "usr/share/fish/vendor_completions.d/gitmirror.fish"] {
            #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent(path).path), "\(path)")
        }
        let manual = try Shell.run(["sh", "-c", "zcat '\(root.appendingPathComponent("usr/share/man/man1/gitmirror.sync.1.gz").path)' | head -20"])
        #expect(manual.stdout.contains(".Dt GITMIRROR.SYNC 1") && manual.stdout.contains(".Sh NAME"), "\(manual)")
        let state = try DebianRoot.run(root, "stat -c '%a %U' /var/lib/gitmirror")
        #expect(state.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "700 gitmirror", "\(state)")

        // When it is purged, the caches and history stay: they are the user's data
        let purge = try DebianRoot.run(root, "apt-get purge -y -qq gitmirror && test -d /var/lib/gitmirror/cache && test -f /var/lib/gitmirror/gitmirror.sqlite && echo kept")
        #expect(purge.status == 0 && purge.stdout.contains("kept"), "\(purge)")
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("usr/bin/gitmirror").path))
    }
}
