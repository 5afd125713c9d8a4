import Foundation

/// What a server printed during a push, sorted to the refs it speaks of. gitolite's update hook, git's
/// own hook messages, GitHub and GitLab all name the full ref they refuse; a line that names no ref of
/// the push (a hook's general words) concerns every refused ref, and a line about one ref never appears
/// in another's entry.
enum ServerLines {
    /// The lines about `ref` (at most the last `limit`), among the refs `pushed` in the same push.
    static func about(_ ref: String, pushed: some Sequence<String>, in lines: [String], limit: Int = 5) -> [String] {
        let others = pushed.filter { $0 != ref }
        let mine = lines.filter { line in
            names(line, ref) || !others.contains { names(line, $0) }
        }
        return Array(mine.suffix(limit))
    }

    /// Whether `line` names `ref` as a whole (`refs/heads/a` is not named by `refs/heads/a/b` or `refs/heads/ab`).
    static func names(_ line: String, _ ref: String) -> Bool {
        var rest = line[...]
        while let found = rest.range(of: ref) {
            let before = found.lowerBound == line.startIndex ? nil : line[line.index(before: found.lowerBound)]
            // A ref name never ends in "." (git check-ref-format): a dot after it ends a sentence.
            let after = line[found.upperBound...].drop { $0 == "." }.first
            if !isRefCharacter(before) && !isRefCharacter(after) { return true }
            rest = line[found.upperBound...]
        }
        return false
    }

    private static func isRefCharacter(_ character: Character?) -> Bool {
        guard let character else { return false }
        return character.isLetter || character.isNumber || "/._-".contains(character)
    }
}
