import Foundation

/// The Debian package as `scripts/package` writes it (scripts/test makes it before the suite runs):
/// the tests install and run what ships, not what the debug build made.
public enum ShippedPackage {
    public static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The newest dist/gitmirror_*.deb.
    public static func file() throws -> URL {
        let dist = repository.appendingPathComponent("dist")
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dist.path)) ?? []).filter { $0.hasPrefix("gitmirror_") && $0.hasSuffix(".deb") }
        let newest = names.max { modified(dist.appendingPathComponent($0)) < modified(dist.appendingPathComponent($1)) }
        guard let newest else { throw TestError("no dist/gitmirror_*.deb: run scripts/package (scripts/test does, before the suite)") }
        return dist.appendingPathComponent(newest)
    }

    static func modified(_ url: URL) -> Date {
        ((try? FileManager.default.attributesOfItem(atPath: url.path))?[.modificationDate] as? Date) ?? .distantPast
    }

    /// The package's files unpacked under `folder` (dpkg-deb -x), as dpkg would install them.
    public static func extract(into folder: URL) throws {
        try Shell.run(["dpkg-deb", "-x", try file().path, folder.path])
    }
}

/// A systemd unit file's `[Service]` settings, in order: a key may appear more than once.
public struct UnitFile {
    public let service: [(key: String, value: String)]

    public init(contentsOf url: URL) throws {
        var section = "", entries: [(String, String)] = []
        for raw in try String(contentsOf: url, encoding: .utf8).split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") { section = line; continue }
            guard section == "[Service]", let equals = line.firstIndex(of: "=") else { continue }
            entries.append((String(line[..<equals]), String(line[line.index(after: equals)...])))
        }
        service = entries
    }

    public func values(_ key: String) -> [String] { service.filter { $0.key == key }.map(\.value) }
    public func value(_ key: String) -> String? { values(key).last }

    /// The system calls `SystemCallFilter=` allows, expanded by systemd-analyze as systemd expands them:
    /// the first line sets an allow-list, each `~` line removes from it; the calls systemd always allows are added.
    public func allowedSystemCalls() throws -> [String] {
        var expanded: [String: Set<String>] = [:]
        func expand(_ item: String) throws -> Set<String> {
            guard item.hasPrefix("@") else { return [item] }
            if let known = expanded[item] { return known }
            let output = try Shell.run(["systemd-analyze", "syscall-filter", item]).stdout
            var names: Set<String> = []
            for line in output.split(separator: "\n").dropFirst() {
                let entry = line.trimmingCharacters(in: .whitespaces)
                if entry.isEmpty || entry.hasPrefix("#") { continue }
                names.formUnion(try expand(entry))
            }
            expanded[item] = names
            return names
        }
        var allowed: Set<String>?
        for line in values("SystemCallFilter") {
            let deny = line.hasPrefix("~")
            var items: Set<String> = []
            for item in (deny ? String(line.dropFirst()) : line).split(separator: " ") { items.formUnion(try expand(String(item))) }
            if deny {
                guard allowed != nil else { throw TestError("the unit's first SystemCallFilter= is a deny list; this test rebuilds allow-lists") }
                allowed!.subtract(items)
            } else {
                allowed = (allowed ?? []).union(items)
            }
        }
        guard var result = allowed else { throw TestError("the unit has no SystemCallFilter=") }
        result.formUnion(["execve", "exit", "exit_group", "getrlimit", "rt_sigreturn", "sigreturn", "clock_gettime", "clock_gettime64",
                          "clock_getres", "gettimeofday", "time", "nanosleep", "clock_nanosleep", "clock_nanosleep_time64"])
        return result.sorted()
    }
}
