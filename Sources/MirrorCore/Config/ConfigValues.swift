import Foundation
// On Linux `struct stat` and `tm` reach Swift through Dispatch's C module, which MemberImportVisibility wants named.
#if canImport(CDispatch)
import CDispatch
#endif
import Yams

/// The typed values of mirrors.yaml: each reads one node, and reports what is wrong with it where it is.
extension ConfigWalker {

    /// The mapping's pairs, after reporting unknown and duplicate keys.
    mutating func mapping(_ node: Node, allowed: [String], what: String) -> [(key: String, keyNode: Node, value: Node)]? {
        guard case .mapping(let mapping) = node else {
            report(node, "\(what) must be a mapping (key: value)")
            return nil
        }
        var seen: Set<String> = []
        var result: [(String, Node, Node)] = []
        for (keyNode, value) in mapping {
            guard let key = keyNode.scalar?.string else {
                report(keyNode, "keys in \(what) must be plain strings")
                continue
            }
            if !seen.insert(key).inserted {
                report(keyNode, "duplicate key '\(key)' in \(what)")
                continue
            }
            if !allowed.contains(key) {
                let suggestion = allowed.min { editDistance($0, key) < editDistance($1, key) }
                let hint = suggestion.flatMap { editDistance($0, key) <= 3 ? " (did you mean '\($0)'?)" : nil } ?? ""
                report(keyNode, "unknown key '\(key)' in \(what)\(hint); allowed: \(allowed.joined(separator: ", "))")
                continue
            }
            result.append((key, keyNode, value))
        }
        return result
    }

    mutating func string(_ node: Node, _ what: String) -> String? {
        guard case .scalar(let scalar) = node else {
            report(node, "\(what) must be a string")
            return nil
        }
        // A plain empty, ~ or null scalar is YAML's null, not a string.
        if scalar.style == .plain, scalar.string == "~" || scalar.string == "null" || scalar.string.isEmpty {
            report(node, "\(what) must not be empty")
            return nil
        }
        return scalar.string
    }

    mutating func bool(_ node: Node, _ what: String) -> Bool? {
        if case .scalar(let scalar) = node, scalar.style == .plain {
            switch scalar.string.lowercased() {
            case "true", "yes", "on": return true
            case "false", "no", "off": return false
            default: break
            }
        }
        report(node, "\(what) must be true or false")
        return nil
    }

    mutating func integer(_ node: Node, _ what: String, minimum: Int) -> Int? {
        guard case .scalar(let scalar) = node, scalar.style == .plain, let value = Int(scalar.string) else {
            report(node, "\(what) must be a whole number")
            return nil
        }
        guard value >= minimum else {
            report(node, "\(what) must be at least \(minimum)")
            return nil
        }
        return value
    }

    mutating func duration(_ node: Node, _ what: String, minimum: TimeInterval = 1) -> TimeInterval? {
        if case .scalar(let scalar) = node, let number = Double(scalar.string.trimmingCharacters(in: .whitespaces)) {
            let shown = number == number.rounded() ? String(Int(number)) : scalar.string
            report(node, "\(what): \(scalar.string) has no unit; write \(shown)s, \(shown)m or \(shown)h")
            return nil
        }
        guard case .scalar(let scalar) = node, let value = parseDuration(scalar.string) else {
            report(node, "\(what) must be a duration such as 90s, 2m or 1h")
            return nil
        }
        guard value >= minimum else {
            report(node, "\(what) must be at least \(minimum == 0 ? "0s" : formatDuration(minimum))")
            return nil
        }
        return value
    }

    mutating func path(_ node: Node, _ what: String) -> URL? {
        guard let text = string(node, what) else { return nil }
        let expanded = (text as NSString).expandingTildeInPath
        return expanded.hasPrefix("/") ? URL(fileURLWithPath: expanded) : base.appendingPathComponent(expanded).standardizedFileURL
    }

    /// A file that must exist and, holding a secret, must not be readable by everyone. The mode is the
    /// one of the file a symlink leads to: Kubernetes mounts a Secret's keys as links (`token ->
    /// ..data/token`) whose own mode is always 0777; the file behind is 0400 or 0440 (`defaultMode`).
    mutating func secretFile(_ node: Node, _ what: String) -> URL? {
        guard let url = path(node, what) else { return nil }
        var info = stat()
        guard stat(url.path, &info) == 0 else {
            let exists = FileManager.default.fileExists(atPath: url.path) || (try? FileManager.default.destinationOfSymbolicLink(atPath: url.path)) != nil
            report(node, exists ? "\(what) '\(url.path)' cannot be read (\(String(cString: strerror(errno))))" : "\(what) '\(url.path)' does not exist")
            return nil
        }
        let mode = Int(info.st_mode & 0o7777)
        if mode & 0o004 != 0 {
            let linked = (try? FileManager.default.destinationOfSymbolicLink(atPath: url.path)) != nil
            let fix = linked ? "make the file it links to unreadable by others (for a Kubernetes Secret volume: defaultMode: 0400 or 0440)" : "run chmod 600 on it"
            report(node, "\(what) '\(url.path)' is readable by every user (mode \(String(mode, radix: 8))); \(fix)")
            return nil
        }
        return url
    }

    mutating func existingFile(_ node: Node, _ what: String) -> URL? {
        guard let url = path(node, what) else { return nil }
        if !FileManager.default.fileExists(atPath: url.path) {
            report(node, "\(what) '\(url.path)' does not exist")
            return nil
        }
        return url
    }

    mutating func name(_ node: Node, _ what: String) -> String? {
        guard let text = string(node, what) else { return nil }
        guard isSafeIdentifier(text) else {
            report(node, "\(what) '\(text)' is not a safe name: use 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit")
            return nil
        }
        return text
    }

    mutating func refPatterns(_ node: Node) -> [String]? {
        guard case .sequence(let sequence) = node else {
            report(node, "refs must be a list of ref patterns such as [\"refs/heads/*\", \"refs/tags/v*\"]")
            return nil
        }
        var patterns: [String] = []
        for item in sequence {
            guard let pattern = string(item, "a ref pattern") else { continue }
            if !pattern.hasPrefix("refs/") {
                let namespaces = ["heads/", "tags/", "notes/", "remotes/", "changes/", "pull/", "merge-requests/"]
                let suggestion = namespaces.contains { pattern.hasPrefix($0) } ? "refs/\(pattern)" : "refs/heads/\(pattern)"
                report(item, "ref pattern '\(pattern)' must start with refs/ (did you mean \(suggestion)?)")
            } else if let namespace = privateRefNamespaces.first(where: { pattern.hasPrefix($0) }) {
                report(item, "ref pattern '\(pattern)' is in \(namespace)*, which belongs to the hosting service or to gitmirror and is never mirrored")
            } else if pattern.filter({ $0 == "*" }).count > 1 || pattern.contains("..") || pattern.contains(" ") || pattern.hasSuffix("/") {
                report(item, "ref pattern '\(pattern)' is not valid: use a ref name with at most one '*'")
            } else {
                patterns.append(pattern)
            }
        }
        if patterns.isEmpty && problems.isEmpty { report(node, "refs must list at least one pattern") }
        return patterns
    }

    var urlContext: URLContext {
        URLContext(base: base, defaultRegion: defaultRegion, codeCommitEndpoint: environment["CODE_COMMIT_ENDPOINT"].flatMap { $0.isEmpty ? nil : $0 })
    }

    mutating func url(_ node: Node, allowInsecure: Bool, endpoint: String? = nil) -> RemoteURL? {
        guard let text = string(node, "url") else { return nil }
        switch RemoteURL.parseChecked(text, context: urlContext, allowInsecure: allowInsecure, endpoint: endpoint) {
        case .success(let url): return url
        case .failure(let problem):
            report(node, problem.message)
            return nil
        }
    }

}
