import Foundation

/// Which repositories one instance of a sharded fleet owns: a stable hash of the name.
public struct Shard: Sendable, Equatable, CustomStringConvertible {
    public let index: Int
    public let count: Int

    /// `index` is one of `0..<count`; anything else owns nothing, a mistake `parse` refuses in words.
    public init(index: Int, count: Int) {
        precondition(count >= 1 && (0..<count).contains(index), "shard \(index)/\(count) is outside 0..<\(count)")
        self.index = index
        self.count = count
    }

    /// "I/N", or "auto/N" with I from the host name's trailing "-I" (a StatefulSet's ordinal).
    /// An ordinal of N or more is refused: the StatefulSet's `replicas:` and N have drifted apart,
    /// and that replica's repositories would otherwise belong to no one.
    public static func parse(_ text: String, hostName: String) throws(ShardError) -> Shard {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let count = Int(parts[1]), count >= 1 else {
            throw ShardError("--shard must be I/N with 0 <= I < N (for example 2/5), or auto/N on a host whose name ends in -I (got '\(text)')")
        }
        if parts[0] == "auto" {
            guard let ordinal = hostName.split(separator: "-").last.flatMap({ Int($0) }) else {
                throw ShardError("--shard auto/\(count) takes I from the host name's trailing -I (a StatefulSet pod such as gitmirror-0), but this host is '\(hostName)'; pass --shard I/\(count)")
            }
            guard ordinal < count else {
                throw ShardError("--shard auto/\(count): this host is '\(hostName)', ordinal \(ordinal), but there are only \(count) shards (0–\(count - 1)); the StatefulSet's replicas and N disagree: make them equal (and daemon.peers too)")
            }
            return Shard(index: ordinal, count: count)
        }
        guard let index = Int(parts[0]), (0..<count).contains(index) else {
            throw ShardError("--shard \(text): I must be a number from 0 to \(count - 1)")
        }
        return Shard(index: index, count: count)
    }

    /// The shard that owns `repository`.
    public func owner(of repository: String) -> Int {
        guard count > 1 else { return 0 }
        return Int(stableHash(repository) % UInt64(count))
    }

    public func owns(_ repository: String) -> Bool { owner(of: repository) == index }

    public var description: String { "\(index)/\(count)" }
}

public struct ShardError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
