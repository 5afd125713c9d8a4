import Foundation

/// Where a discovered repository came from.
public struct MirrorOrigin: Sendable, Equatable {
    public var source: String
    public var path: String
}

/// What became of one repository a source listed.
public struct DiscoveryEntry: Sendable {
    public enum Status: Sendable, Equatable {
        /// Mirrored as discovered.
        case mirrored
        /// A repository of this name is written in mirrors.yaml, and that one is mirrored.
        case written
        case excluded(String)
        /// Its name or a secondary is another discovered repository's too: neither is mirrored.
        case collision(String)
        case invalid(String)

        public var word: String {
            switch self {
            case .mirrored: return "mirrored"
            case .written: return "written"
            case .excluded: return "excluded"
            case .collision: return "collision"
            case .invalid: return "invalid"
            }
        }

        public var reason: String? {
            switch self {
            case .mirrored: return nil
            case .written: return "a repository of this name is written in repositories:, and it wins"
            case .excluded(let why), .collision(let why), .invalid(let why): return why
            }
        }
    }

    public var source: String
    public var repository: DiscoveredRepository
    /// The mirror's name (as the template makes it).
    public var name: String
    public var status: Status
    public var mirror: Mirror?
}

extension Config {
    /// The written repositories and the ones the listings (source id → repositories) add, with what
    /// became of every listed repository. Written repositories win over discovered ones of the same
    /// name; discovered ones that collide with each other (a name, a secondary) are all left out.
    public func expanded(with listings: [String: [DiscoveredRepository]]) -> (config: Config, entries: [DiscoveryEntry]) {
        var entries: [DiscoveryEntry] = []
        for source in discover {
            for repository in (listings[source.id] ?? []).sorted(by: { $0.path < $1.path }) {
                var entry = DiscoveryEntry(source: source.id, repository: repository, name: source.mirrorName(for: repository), status: .mirrored)
                if let reason = source.exclusion(of: repository) {
                    entry.status = .excluded(reason)
                } else {
                    switch source.mirror(for: repository) {
                    case .success(let mirror): entry.mirror = mirror
                    case .failure(let problem): entry.status = .invalid(problem.message)
                    }
                }
                entries.append(entry)
            }
        }
        let written = Set(repositories.map { $0.name.lowercased() })
        for index in entries.indices where entries[index].status == .mirrored && written.contains(entries[index].name.lowercased()) {
            entries[index].status = .written
            entries[index].mirror = nil
        }
        // The same name (folded: one cache folder each) from two listings.
        let taken = entries.indices.filter { entries[$0].status == .mirrored }
        let byName = Dictionary(grouping: taken) { entries[$0].name.lowercased() }
        for (_, group) in byName where group.count > 1 {
            for index in group {
                let others = group.filter { $0 != index }.map { "\(entries[$0].source) \(entries[$0].repository.path)" }
                entries[index].status = .collision("the name '\(entries[index].name)' is also that of \(others.joined(separator: ", ")); set name: (for example \"{owner}-{name}\") so that each has its own")
                entries[index].mirror = nil
            }
        }
        // A secondary that two repositories would push to: a written one keeps it.
        var owners: [String: String] = [:]
        for mirror in repositories { for secondary in mirror.secondaries { owners[secondary.url.identity] = "written repository '\(mirror.name)'" } }
        let remaining = entries.indices.filter { entries[$0].status == .mirrored }
        var claims: [String: [Int]] = [:]
        for index in remaining { for secondary in entries[index].mirror!.secondaries { claims[secondary.url.identity, default: []].append(index) } }
        for index in remaining {
            for secondary in entries[index].mirror!.secondaries {
                if let owner = owners[secondary.url.identity] {
                    entries[index].status = .collision("secondary '\(secondary.name)' \(secondary.url) is already that of \(owner)")
                } else if let claimants = claims[secondary.url.identity], claimants.count > 1 {
                    let others = claimants.filter { $0 != index }.map { "\(entries[$0].source) \(entries[$0].repository.path)" }
                    entries[index].status = .collision("secondary '\(secondary.name)' \(secondary.url) would also be that of \(others.joined(separator: ", "))")
                }
            }
            if entries[index].status != .mirrored { entries[index].mirror = nil }
        }
        var config = self
        config.repositories += entries.compactMap(\.mirror)
        return (config, entries)
    }
}
