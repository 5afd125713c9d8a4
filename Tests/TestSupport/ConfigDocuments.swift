import Foundation
import MirrorCore
import Testing

/// mirrors.yaml documents a test writes in code, parsed as if read from a sandbox's folder (relative
/// paths resolve there).
public struct ConfigDocuments {
    public let sandbox: Sandbox
    public let file: URL
    public let loader: ConfigLoader

    /// A `discover:` document's start: the GitHub organisation `acme` listed with the credential
    /// `github` (GITHUB_TOKEN); the entry's further keys follow at four spaces.
    public static let acmeOnGitHub = """
        credentials:
          github:
            token_env: GITHUB_TOKEN
        discover:
          - github: acme
            credentials: github
        """

    public init(_ name: String, loader: ConfigLoader = ConfigLoader()) throws {
        sandbox = try Sandbox(name)
        file = sandbox.path("mirrors.yaml")
        self.loader = loader
    }

    public func load(_ yaml: String, environment: [String: String] = [:]) throws(ConfigError) -> Config {
        try loader.parse(yaml, file: file, environment: environment)
    }

    /// What is wrong with a document that must be refused; a document that loads is an issue of the test.
    public func problems(_ yaml: String, environment: [String: String] = [:]) -> [ConfigProblem] {
        do {
            _ = try load(yaml, environment: environment)
            Issue.record("expected the configuration to be rejected")
            return []
        } catch {
            return error.problems
        }
    }
}
