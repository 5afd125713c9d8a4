import Foundation
import Yams

/// A CodeCommit address, in any of its forms.
extension ConfigWalker {
    /// `codecommit: {region: eu-west-1, repository: payments}`
    mutating func codeCommit(_ node: Node, endpoint: String?) -> RemoteURL? {
        guard let pairs = mapping(node, allowed: ["region", "repository", "fips"], what: "codecommit") else { return nil }
        var region = defaultRegion
        var repository: String?
        var fips = false
        for (key, _, value) in pairs {
            switch key {
            case "region": region = string(value, "region")
            case "repository":
                repository = string(value, "repository")
                if let name = repository, !CodeCommitTarget.isValidName(name) {
                    report(value, "'\(name)' is not a valid CodeCommit repository name: 1-100 letters, digits, '.', '_' or '-', not ending in .git")
                    return nil
                }
            case "fips": fips = bool(value, "fips") ?? false
            default: break
            }
        }
        guard let repository else { report(node, "codecommit needs a repository:"); return nil }
        guard let region else { report(node, "codecommit needs a region: (or set AWS_REGION)"); return nil }
        let endpoint = endpoint ?? environment["CODE_COMMIT_ENDPOINT"].flatMap { $0.isEmpty ? nil : $0 }
        return RemoteURL.codeCommit(CodeCommitTarget(region: region, repository: repository, profile: nil, fips: fips), endpoint: endpoint)
    }
}
