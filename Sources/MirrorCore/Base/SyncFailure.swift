/// The stable class of a failure: it decides retrying and alerting.
public enum ErrorClass: String, Codable, Sendable, CaseIterable {
    case config, auth
    case hostKey = "host_key"
    case tls
    case notFound = "not_found"
    case network, timeout, rejected, diverged, protected
    case tooLarge = "too_large"
    case primaryEmpty = "primary_empty"
    /// The secondary can be read with these credentials but refuses pushes.
    case readOnly = "read_only"
    case `internal`
    /// An API's rate limit is used up: the call waits for it, or gives up until the next run.
    case rateLimited = "rate_limited"
    /// gitmirror itself was stopped (Ctrl-C, SIGTERM) during the operation: no verdict on the remote.
    case interrupted
}

/// A failure a person can act on: what failed, where, and what to do.
public struct SyncFailure: Error, Codable, Sendable, CustomStringConvertible, Equatable {
    public var errorClass: ErrorClass
    public var message: String
    /// Set when the failure came from reading the cache's own objects (a damaged cache, not the
    /// server): the sync verifies the cache, then quarantines and rebuilds it.
    public var cacheDamage: CacheDamage?

    public init(_ errorClass: ErrorClass, _ message: String, cacheDamage: CacheDamage? = nil) {
        self.errorClass = errorClass
        self.message = message
        self.cacheDamage = cacheDamage
    }

    public var description: String { "\(errorClass.rawValue): \(message)" }
}

/// What suggests the cache is damaged.
public struct CacheDamage: Codable, Sendable, Equatable {
    /// What was found, in the transport's words.
    public var detail: String
    /// libgit2 found no object where the cache's history names one (its object database said "not
    /// found"): damage as it is, with no need to read every object to confirm it.
    public var objectMissing: Bool

    public init(_ detail: String, objectMissing: Bool = false) {
        self.detail = detail
        self.objectMissing = objectMissing
    }
}
