import Foundation
import Git

/// A primary on a local path, read with git's own upload-pack where libgit2's local transport cannot:
/// libgit2 reads the primary's ref database directly and fails the whole listing on one ref it cannot
/// hold as a file (a 300-byte name kept in packed-refs), where git advertises every ref and leaves the
/// choice to the fetch. Used only after libgit2 failed, so the usual path stays libgit2's; runs in the
/// worker, under its limits.
enum LocalPrimary {
    static func isLocal(_ url: String) -> Bool { url.hasPrefix("/") || url.hasPrefix("file://") }

    /// The refs `git ls-remote` advertises (HEAD and peeled tags included, as libgit2's listing has them),
    /// and the branch HEAD points at.
    static func list(_ url: String) throws -> (heads: [RemoteHead], head: String?) {
        let run = try ChildProcess.run(["git", "ls-remote", "--symref", url], environment: GitTransfer.environment())
        guard run.status == 0 else {
            throw SyncFailure(.notFound, "git ls-remote \(url): \(String(decoding: run.errors, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        var heads: [RemoteHead] = [], head: String?
        for line in String(decoding: run.output, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: "\t", maxSplits: 1).map(String.init)
            guard fields.count == 2 else { continue }
            if fields[0].hasPrefix("ref: ") {
                if fields[1] == "HEAD" { head = String(fields[0].dropFirst("ref: ".count)) }
            } else if let id = ObjectID(hex: fields[0]) {
                heads.append(RemoteHead(name: fields[1], id: id))
            }
        }
        return (heads, head)
    }

    /// Fetches `refspecs` into the cache with `git fetch`. A ref git will not write (a branch that points
    /// at a blob) is left out and the others are fetched (exit 1); only git's fatal exit (128) fails the
    /// whole fetch. The caller compares the cache's refs with what it asked for.
    static func fetch(_ url: String, into cache: String, refspecs: [String]) throws {
        let command = ["git", "--git-dir=\(cache)", "-c", "fetch.fsckObjects=false", "fetch", "--no-write-fetch-head", "--no-auto-gc",
                       "--no-tags", "--no-recurse-submodules", "--stdin", url]
        let run = try ChildProcess.run(command, environment: GitTransfer.environment(), input: Data(refspecs.joined(separator: "\n").utf8))
        let status = run.status
        guard status == 0 || status == 1 else {
            throw SyncFailure(.internal, "git fetch from \(url): \(String(decoding: run.errors, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines).suffix(500))")
        }
    }
}
