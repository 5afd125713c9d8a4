import Foundation

/// What the hosting services do differently: usernames for tokens, their limits,
/// and the rejections they send, turned into classes and advice.
public enum Forge: String, Sendable {
    case github, gitlab, gitea, codeCommit = "codecommit", other

    /// The hosting service of a remote: its stated forge, else what its address says.
    public static func of(_ remote: RemoteSpec) -> Forge {
        switch remote.forge?.kind {
        case .github?: return .github
        case .gitlab?: return .gitlab
        case .gitea?: return .gitea
        case nil: return of(remote.url)
        }
    }

    public static func of(_ url: RemoteURL) -> Forge {
        if url.codeCommit != nil { return .codeCommit }
        let host = url.host?.lowercased() ?? ""
        if host == "github.com" || host.hasSuffix(".github.com") || host.hasSuffix(".ghe.com") { return .github }
        if host == "gitlab.com" || host.hasPrefix("gitlab.") { return .gitlab }
        if host == "codeberg.org" || host.hasPrefix("gitea.") || host.hasPrefix("forgejo.") { return .gitea }
        return .other
    }

    /// The username a token goes with when the configuration names none.
    public var tokenUsername: String {
        switch self {
        case .github: return "x-access-token"
        case .gitlab: return "oauth2"
        default: return "git"
        }
    }

    /// CodeCommit accepts at most this many ref updates in one push.
    public var maxRefUpdatesPerPush: Int? { self == .codeCommit ? 4000 : nil }

    /// A ref this host refuses before anything is sent, and why.
    public func refusal(of ref: String) -> String? {
        if self == .codeCommit, ref.hasPrefix("refs/heads/") {
            let branch = ref.dropFirst("refs/heads/".count)
            if branch.count == 40, branch.allSatisfy(\.isHexDigit) {
                return "CodeCommit refuses branch names of exactly 40 hexadecimal digits; rename the branch on the primary or leave it out with refs:"
            }
        }
        return nil
    }
}
