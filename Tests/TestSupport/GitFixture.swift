import Foundation

/// Bare repositories built with git's plumbing: no working tree, no mock.
public struct BareRepository: Sendable {
    public let url: URL
    public var path: String { url.path }

    /// An existing repository.
    public init(url: URL) { self.url = url }

    /// Creates an empty bare repository.
    @discardableResult
    public static func create(at url: URL) throws -> BareRepository {
        try Shell.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", url.path])
        return BareRepository(url: url)
    }

    func git(_ arguments: [String], input: String? = nil) throws -> String {
        try Shell.run(["git", "--git-dir=\(path)"] + arguments, input: input).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Adds a commit with one file to `branch` (created when missing) and returns its id.
    @discardableResult
    public func commit(_ message: String, on branch: String = "main", file: String? = nil, content: String? = nil) throws -> String {
        let blob = try git(["hash-object", "-w", "--stdin"], input: content ?? "\(message)\n")
        let tree = try git(["mktree"], input: "100644 blob \(blob)\t\(file ?? message.replacingOccurrences(of: " ", with: "-")).txt\n")
        let parent = try? git(["rev-parse", "--verify", "--quiet", "refs/heads/\(branch)"])
        var arguments = ["commit-tree", tree, "-m", message]
        if let parent, !parent.isEmpty { arguments += ["-p", parent] }
        let commit = try git(arguments)
        _ = try git(["update-ref", "refs/heads/\(branch)", commit])
        return commit
    }

    /// Stores `data` as an LFS object the way git-lfs keeps one in a local repository
    /// (`lfs/objects/ab/cd/<oid>`) and commits its pointer; returns the object's oid.
    @discardableResult
    public func commitLFSObject(_ data: Data, named file: String, on branch: String = "main") throws -> String {
        let incoming = url.appendingPathComponent("lfs-incoming")
        try data.write(to: incoming)
        let oid = String(try Shell.run(["sha256sum", incoming.path]).stdout.prefix(64))
        let folder = url.appendingPathComponent("lfs/objects/\(oid.prefix(2))/\(oid.dropFirst(2).prefix(2))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try? FileManager.default.removeItem(at: folder.appendingPathComponent(oid))
        try FileManager.default.moveItem(at: incoming, to: folder.appendingPathComponent(oid))
        try commit("add \(file)", on: branch, file: file, content: "version https://git-lfs.github.com/spec/v1\noid sha256:\(oid)\nsize \(data.count)\n")
        return oid
    }

    /// A lightweight tag, or an annotated one when `message` is given.
    @discardableResult
    public func tag(_ name: String, at target: String = "refs/heads/main", message: String? = nil) throws -> String {
        if let message {
            _ = try git(["tag", "-f", "-a", name, "-m", message, target])
        } else {
            _ = try git(["update-ref", "refs/tags/\(name)", try git(["rev-parse", target])])
        }
        return try git(["rev-parse", "refs/tags/\(name)"])
    }

    public func setRef(_ name: String, to id: String) throws { _ = try git(["update-ref", name, id]) }
    public func deleteRef(_ name: String) throws { _ = try git(["update-ref", "-d", name]) }

    /// Every ref, as `git show-ref` sees it.
    public func refs() throws -> [String: String] {
        let output = try Shell.run(["git", "--git-dir=\(path)", "show-ref"], check: false).stdout
        var result: [String: String] = [:]
        for line in output.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            if parts.count == 2 { result[String(parts[1])] = String(parts[0]) }
        }
        return result
    }

    /// Installs a hook script (for example `update`, to reject a ref).
    public func installHook(_ name: String, _ script: String) throws {
        let hook = url.appendingPathComponent("hooks/\(name)")
        try Sandbox.writeFile(hook, script, mode: 0o755)
    }

    /// An update hook that refuses `ref`, printing `lines` on stderr as a server's policy does, and takes every other ref.
    public func refuse(_ ref: String, saying lines: String...) throws {
        let said = lines.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        try installHook("update", "#!/bin/sh\nif [ \"$1\" = \"\(ref)\" ]; then printf '%s\\n' \(said) >&2; exit 1; fi\nexit 0\n")
    }
}
