import Foundation

/// A clean Debian bookworm root (debootstrap --variant=minbase) where Swift was never installed: what
/// an operator's host has before `apt-get install ./gitmirror_*.deb`. Made once per machine and
/// kept as a tarball under .build/ (about 50 s to make, a second to unpack); each test unpacks its own.
public enum DebianRoot {
    static let cache = ShippedPackage.repository.appendingPathComponent(".build/debian-roots")
    static let tarball = cache.appendingPathComponent("bookworm-minbase.tar")

    /// A fresh root unpacked into `folder`.
    public static func make(in folder: URL) throws {
        try FileManager.default.createDirectory(at: cache, withIntermediateDirectories: true)
        // One debootstrap at a time, however many tests ask.
        let lock = open(cache.appendingPathComponent("lock").path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lock >= 0 else { throw TestError("cannot open the lock under \(cache.path)") }
        defer { close(lock) }
        flock(lock, LOCK_EX)
        if !FileManager.default.fileExists(atPath: tarball.path) {
            let building = cache.appendingPathComponent("building")
            try? FileManager.default.removeItem(at: building)
            let made = try Shell.run(["debootstrap", "--variant=minbase", "bookworm", building.path, "http://deb.debian.org/debian"], check: false)
            guard made.status == 0 else { throw TestError("debootstrap failed:\n\(made.stdout.suffix(2000))\n\(made.stderr.suffix(2000))") }
            try Shell.run(["tar", "-C", building.path, "-cf", tarball.path + ".new", "."])
            try FileManager.default.removeItem(at: building)
            guard rename(tarball.path + ".new", tarball.path) == 0 else { throw TestError("cannot keep \(tarball.path)") }
        }
        flock(lock, LOCK_UN)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Shell.run(["tar", "-C", folder.path, "-xf", tarball.path])
    }

    /// Runs a shell script inside the root as its root user (bubblewrap: its own PIDs, the host's
    /// network and resolver for apt), returning what it printed.
    public static func run(_ root: URL, _ script: String) throws -> Shell.Output {
        try Shell.run(["bwrap", "--die-with-parent", "--unshare-pid", "--bind", root.path, "/", "--proc", "/proc", "--dev", "/dev",
                       "--ro-bind", "/etc/resolv.conf", "/etc/resolv.conf", "--cap-add", "ALL", "--uid", "0", "--gid", "0",
                       "--clearenv", "--setenv", "PATH", "/usr/sbin:/usr/bin:/sbin:/bin", "--setenv", "HOME", "/root",
                       "--setenv", "LANG", "C.UTF-8", "--setenv", "DEBIAN_FRONTEND", "noninteractive",
                       "/bin/sh", "-ec", script], check: false)
    }
}
