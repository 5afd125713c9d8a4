import Foundation

/// An AWS CodeCommit repository, however the user wrote its address.
public struct CodeCommitTarget: Sendable, Equatable {
    public var region: String
    public var repository: String
    /// The AWS profile named in a `codecommit://PROFILE@NAME` URL.
    public var profile: String?
    public var fips = false

    /// `git-codecommit[-fips].REGION.amazonaws.com[.cn]`
    public var host: String {
        "git-codecommit\(fips ? "-fips" : "").\(region).amazonaws.com\(region.hasPrefix("cn-") ? ".cn" : "")"
    }

    public var path: String { "/v1/repos/\(repository)" }

    /// CodeCommit's own rule for repository names.
    public static func isValidName(_ name: String) -> Bool {
        guard (1...100).contains(name.count), !name.lowercased().hasSuffix(".git") else { return false }
        return name.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "._-".unicodeScalars.contains($0)) }
    }

    static let hostPattern = #"^(vpce-[^.]+\.)?git-codecommit(-fips)?\.([a-z0-9-]+)\.(vpce\.)?amazonaws\.com(\.cn)?$"#
    /// NSRegularExpression is immutable once made and safe to match from any thread.
    static let hostRegex = try? NSRegularExpression(pattern: hostPattern, options: [.caseInsensitive])

    /// Recognizes an HTTPS or SSH address on a CodeCommit host (also FIPS, China and VPC endpoint hosts).
    static func recognize(host: String, path: String) -> CodeCommitTarget? {
        // Every remote's URL is parsed on every run: most are on no CodeCommit host, and the regex is compiled once.
        guard host.range(of: "git-codecommit", options: .caseInsensitive) != nil, let regex = hostRegex else { return nil }
        let range = NSRange(host.startIndex..., in: host)
        guard let match = regex.firstMatch(in: host, range: range),
              let regionRange = Range(match.range(at: 3), in: host) else { return nil }
        let prefix = "/v1/repos/"
        guard path.hasPrefix(prefix) else { return nil }
        var name = String(path.dropFirst(prefix.count))
        while name.hasSuffix("/") { name.removeLast() }
        return CodeCommitTarget(region: String(host[regionRange]).lowercased(), repository: name, profile: nil,
                                fips: match.range(at: 2).location != NSNotFound)
    }
}

extension RemoteURL {
    /// Parses git-remote-codecommit's forms: `codecommit::REGION://[PROFILE@]NAME` and
    /// `codecommit://[PROFILE@]NAME` (the region then comes from `defaultRegion`).
    static func parseCodeCommit(_ text: String, defaultRegion: String?, endpoint: String?) throws(ParseError) -> RemoteURL {
        var rest = text.dropFirst("codecommit".count)
        var region: String?
        if rest.hasPrefix("::") {
            rest = rest.dropFirst(2)
            guard let end = rest.range(of: "://") else { throw .codeCommit("write codecommit::REGION://[PROFILE@]REPOSITORY") }
            region = String(rest[..<end.lowerBound])
            rest = rest[end.upperBound...]
        } else if rest.hasPrefix("://") {
            rest = rest.dropFirst(3)
        } else {
            throw .codeCommit("write codecommit://[PROFILE@]REPOSITORY or codecommit::REGION://[PROFILE@]REPOSITORY")
        }
        var profile: String?
        if let at = rest.firstIndex(of: "@") {
            profile = String(rest[..<at])
            rest = rest[rest.index(after: at)...]
        }
        let name = String(rest)
        guard let region = region ?? defaultRegion, !region.isEmpty else {
            throw .codeCommit("\(text) names no region: write codecommit::REGION://\(name), or set AWS_REGION")
        }
        let target = CodeCommitTarget(region: region, repository: name, profile: profile)
        return RemoteURL.codeCommit(target, endpoint: endpoint)
    }

    /// The HTTPS address of a CodeCommit repository; `endpoint` (host[:port]) replaces the host, for VPC endpoints and tests.
    public static func codeCommit(_ target: CodeCommitTarget, endpoint: String?) -> RemoteURL {
        let authority = endpoint ?? target.host
        let parts = authority.split(separator: ":", maxSplits: 1)
        return RemoteURL(scheme: .https, user: nil, host: String(parts[0]), port: parts.count > 1 ? Int(parts[1]) : nil,
                         path: target.path, gitURL: "https://\(authority)\(target.path)", codeCommit: target)
    }
}
