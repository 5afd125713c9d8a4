import Foundation
import Yams

/// The document as a whole: its sections, and the checks that span repositories.
extension ConfigWalker {

    mutating func config(_ root: Node) -> Config? {
        guard let pairs = mapping(root, allowed: ["state_dir", "defaults", "credentials", "repositories", "discover", "max_parallel_pushes", "daemon", "retention"], what: "the top level") else { return nil }
        var daemonSettings = DaemonSettings()
        var retention = Retention()
        // Without state_dir: $GITMIRROR_STATE_DIR (the container image sets /var/lib/gitmirror: its
        // configuration is mounted read-only), else .gitmirror beside the configuration file.
        var stateDirectory = environment["GITMIRROR_STATE_DIR"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: ($0 as NSString).expandingTildeInPath) }
            ?? base.appendingPathComponent(".gitmirror")
        var defaults = Policy()
        var credentials: [String: CredentialSpec] = [:]
        var credentialNodes: [(Node, Node)] = []
        var repositoriesNode: Node?
        var discoverNode: Node?
        var maxParallel = 4
        for (key, _, value) in pairs {
            switch key {
            case "state_dir": if let url = path(value, "state_dir") { stateDirectory = url }
            case "defaults": defaults = policy(value, inheriting: Policy(), what: "defaults")
            case "max_parallel_pushes": if let number = integer(value, "max_parallel_pushes", minimum: 1) { maxParallel = number }
            case "credentials":
                guard case .mapping(let mapping) = value else {
                    report(value, "credentials must be a mapping of credential names to their settings")
                    continue
                }
                for (nameNode, body) in mapping { credentialNodes.append((nameNode, body)) }
            case "repositories": repositoriesNode = value
            case "discover": discoverNode = value
            case "daemon": daemonSettings = daemon(value)
            case "retention": retention = self.retention(value)
            default: break
            }
        }
        for (nameNode, body) in credentialNodes {
            guard let name = name(nameNode, "credential name") else { continue }
            if credentials[name] != nil { report(nameNode, "duplicate credential '\(name)'"); continue }
            if let spec = credential(name: name, body) { credentials[name] = spec }
        }
        let credentialNames = Set(credentialNodes.compactMap { $0.0.scalar?.string })
        var sources: [DiscoverySource] = []
        if let discoverNode {
            if case .sequence(let items) = discoverNode, !items.isEmpty {
                var ids: [String: Node] = [:]
                for item in items {
                    guard let source = discoverySource(item, defaults: defaults, credentials: credentials, credentialNames: credentialNames) else { continue }
                    if let previous = ids[source.id] {
                        report(item, "the source \(source.id) is listed twice (first at line \(previous.mark?.line ?? 0)); merge the two entries")
                        continue
                    }
                    ids[source.id] = item
                    sources.append(source)
                }
            } else {
                report(discoverNode, "discover must be a non-empty list of sources, each with one of github:, gitlab:, gitea: or codecommit:")
            }
        }
        guard let repositoriesNode else {
            if discoverNode != nil {
                return Config(file: file, stateDirectory: stateDirectory, maxParallelPushes: maxParallel, credentials: credentials,
                              repositories: [], discover: sources, daemon: daemonSettings, retention: retention)
            }
            report(root, "missing 'repositories:': list at least one repository with a primary and secondaries (or a discover: source)")
            return nil
        }
        guard case .sequence(let sequence) = repositoriesNode else {
            report(repositoriesNode, "repositories must be a list (each item starts with '- name:')")
            return nil
        }
        var mirrors: [Mirror] = []
        var names: [String: (name: String, node: Node)] = [:]
        for item in sequence {
            guard let mirror = mirror(item, defaults: defaults, credentials: credentials, credentialNames: credentialNames) else { continue }
            // Each repository has a cache folder named after it: names that differ only in case
            // would share one on a case-insensitive volume.
            if let previous = names[mirror.name.lowercased()] {
                let how = previous.name == mirror.name ? "duplicate repository name '\(mirror.name)'"
                    : "repository name '\(mirror.name)' differs from '\(previous.name)' only in case, and they would share one cache on a case-insensitive volume"
                report(item, "\(how) (first defined at line \(previous.node.mark?.line ?? 0))")
                continue
            }
            names[mirror.name.lowercased()] = (mirror.name, item)
            mirrors.append(mirror)
        }
        if sequence.isEmpty && discoverNode == nil { report(repositoriesNode, "repositories is empty: list at least one repository") }
        checkSharedSecondaries(mirrors)
        checkCycles(mirrors)
        return Config(file: file, stateDirectory: stateDirectory, maxParallelPushes: maxParallel, credentials: credentials,
                      repositories: mirrors, discover: sources, daemon: daemonSettings, retention: retention)
    }

    /// Two repositories pushing to one secondary overwrite each other's refs on every sync.
    mutating func checkSharedSecondaries(_ mirrors: [Mirror]) {
        var owners: [String: (mirror: String, remote: String)] = [:]
        for mirror in mirrors {
            for secondary in mirror.secondaries {
                let identity = secondary.url.identity
                guard let owner = owners[identity] else {
                    owners[identity] = (mirror.name, secondary.name)
                    continue
                }
                guard owner.mirror != mirror.name, let node = remoteNodes["\(mirror.name)/\(secondary.name)"] else { continue }
                let first = remoteNodes["\(owner.mirror)/\(owner.remote)"].map { location($0).description } ?? "?"
                report(node, "secondary '\(secondary.name)' of '\(mirror.name)' is the same repository as secondary '\(owner.remote)' of '\(owner.mirror)' (\(first)): two primaries would overwrite each other's refs on it at every sync; give each repository its own secondary")
            }
        }
    }

    /// A secondary that is, through other repositories, mirrored back onto its own primary.
    mutating func checkCycles(_ mirrors: [Mirror]) {
        var edges: [String: [(to: String, mirror: String, remote: String)]] = [:]
        for mirror in mirrors {
            for secondary in mirror.secondaries {
                edges[mirror.primary.url.identity, default: []].append((secondary.url.identity, mirror.name, secondary.name))
            }
        }
        var reported: Set<String> = []
        for mirror in mirrors {
            let start = mirror.primary.url.identity
            // Depth-first from each secondary: reaching `start` again closes a cycle.
            for secondary in mirror.secondaries {
                var path = ["'\(mirror.name)' → \(secondary.name)"]
                var seen: Set<String> = [start]
                guard let cycle = Self.walk(from: secondary.url.identity, to: start, edges: edges, seen: &seen, path: &path) else { continue }
                let key = cycle.sorted().joined(separator: "|")
                guard reported.insert(key).inserted, let node = remoteNodes["\(mirror.name)/\(secondary.name)"] else { continue }
                report(node, "the repositories mirror in a cycle (\(cycle.joined(separator: ", then "))), back onto the primary of '\(mirror.name)': each sync would push the others' refs round and round; remove one of these secondaries")
            }
        }
    }

    static func walk(from node: String, to target: String, edges: [String: [(to: String, mirror: String, remote: String)]],
                     seen: inout Set<String>, path: inout [String]) -> [String]? {
        if node == target { return path }
        guard seen.insert(node).inserted else { return nil }
        for edge in edges[node] ?? [] {
            path.append("'\(edge.mirror)' → \(edge.remote)")
            if let found = walk(from: edge.to, to: target, edges: edges, seen: &seen, path: &path) { return found }
            path.removeLast()
        }
        return nil
    }

    mutating func retention(_ node: Node) -> Retention {
        var retention = Retention()
        guard let pairs = mapping(node, allowed: ["runs", "journal", "quarantine", "lfs"], what: "retention") else { return retention }
        for (key, _, value) in pairs {
            switch key {
            case "runs": if let seconds = minimumDuration(value, "retention.runs", at: 3600) { retention.runs = seconds }
            case "quarantine", "lfs":
                var kept: TimeInterval?
                if value.scalar?.string != "forever" {
                    guard case .scalar(let scalar) = value, parseDuration(scalar.string) != nil || Double(scalar.string) != nil else {
                        report(value, "retention.\(key) must be a duration such as 30d, or forever")
                        continue
                    }
                    guard let seconds = minimumDuration(value, "retention.\(key)", at: 86400) else { continue }
                    kept = seconds
                }
                if key == "lfs" { retention.lfs = kept } else { retention.quarantine = kept }
            case "journal":
                if value.scalar?.string == "forever" { retention.journal = nil; continue }
                guard case .scalar(let scalar) = value, parseDuration(scalar.string) != nil || Double(scalar.string) != nil else {
                    report(value, "retention.journal must be a duration such as 365d, or forever")
                    continue
                }
                if let seconds = minimumDuration(value, "retention.journal", at: 86400) { retention.journal = seconds }
            default: break
            }
        }
        if let journal = retention.journal, journal < retention.runs {
            report(node, "retention.journal (\(formatDuration(journal))) is shorter than retention.runs (\(formatDuration(retention.runs))): runs that moved refs would go before those that did not")
        }
        return retention
    }

    mutating func minimumDuration(_ node: Node, _ what: String, at minimum: TimeInterval) -> TimeInterval? {
        guard let seconds = duration(node, what) else { return nil }
        guard seconds >= minimum else {
            report(node, "\(what) must be at least \(formatDuration(minimum))")
            return nil
        }
        return seconds
    }

    /// A size in bytes: a number, or a number with KiB, MiB or GiB (`16MiB`).
    mutating func byteSize(_ node: Node, _ what: String, minimum: Int) -> Int? {
        guard let text = string(node, what)?.trimmingCharacters(in: .whitespaces) else { return nil }
        let units: [(String, Int)] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("", 1)]
        for (unit, factor) in units where text.hasSuffix(unit) {
            let number = text.dropLast(unit.count).trimmingCharacters(in: .whitespaces)
            guard let value = Int(number), value >= 0, value <= Int.max / factor else { break }
            guard value * factor >= minimum else {
                report(node, "\(what) must be at least \(minimum >> 10)KiB (got '\(text)')")
                return nil
            }
            return value * factor
        }
        report(node, "\(what) takes a size such as 16MiB, 512KiB or a number of bytes (got '\(text)')")
        return nil
    }

    mutating func secretReference(_ pairs: [(key: String, keyNode: Node, value: Node)], prefix: String) -> SecretSource? {
        var source: SecretSource?
        for (key, _, value) in pairs {
            if key == "\(prefix)_env", let name = environmentName(value, key) { source = .environment(name) }
            if key == "\(prefix)_file", let url = secretFile(value, key) { source = .file(url) }
        }
        return source
    }

}
