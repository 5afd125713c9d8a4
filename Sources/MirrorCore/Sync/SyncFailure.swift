/// The stable class of a failure: it decides retrying and alerting.
public enum ErrorClass: String, Codable, Sendable, CaseIterable {
    case config, auth
    case hostKey = "host_key"
    case tls
    case notFound = "not_found"
    case network, timeout, rejected, diverged, protected
    case tooLarge = "too_large"
    case primaryEmpty = "primary_empty"
    case `internal`
}

/// A failure a person can act on: what failed, where, and what to do.
public struct SyncFailure: Error, Codable, Sendable, CustomStringConvertible, Equatable {
    public var errorClass: ErrorClass
    public var message: String

    public init(_ errorClass: ErrorClass, _ message: String) {
        self.errorClass = errorClass
        self.message = message
    }

    public var description: String { "\(errorClass.rawValue): \(message)" }
}
