import Foundation

/// Namespaces that belong to a hosting service (or to gitmirror itself) and are never mirrored:
/// `refs:` may not name them, and RefFilter never selects them.
let privateRefNamespaces = ["refs/pull/", "refs/merge-requests/", "refs/for/", "refs/changes/", "refs/keep-around/",
                            "refs/environments/", "refs/pipelines/", "refs/remotes/", "refs/gitmirror/"]

/// Ref patterns as git refspecs read them: exact names, or one `*` matching any run of characters.
public enum RefFilter {
    public static func matches(_ name: String, _ patterns: [String]) -> Bool {
        if privateRefNamespaces.contains(where: { name.utf8.starts(with: $0.utf8) }) { return false }
        return patterns.contains { matches(name, $0) }
    }

    /// On bytes, as git matches refspecs (and a pass matches every ref of a primary against each pattern).
    static func matches(_ name: String, _ pattern: String) -> Bool {
        let name = name.utf8, pattern = pattern.utf8
        guard let star = pattern.firstIndex(of: UInt8(ascii: "*")) else { return name.elementsEqual(pattern) }
        let prefix = pattern[..<star], suffix = pattern[pattern.index(after: star)...]
        return name.count >= prefix.count + suffix.count && name.starts(with: prefix)
            && name.reversed().starts(with: suffix.reversed())
    }
}
