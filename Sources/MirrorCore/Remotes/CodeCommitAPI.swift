import Foundation

/// The few CodeCommit API calls gitmirror makes (JSON over HTTPS, SigV4-signed).
public struct CodeCommitAPI: Sendable {
    public var region: String
    public var credentials: AWSCredentials
    public var environment: [String: String]
    public var http = HTTPClient(timeout: 30)

    public init(region: String, credentials: AWSCredentials, environment: [String: String]) {
        self.region = region
        self.credentials = credentials
        self.environment = environment
    }

    /// The SDKs' endpoint settings first, then the regional endpoint.
    var endpoint: URL {
        let text = environment["AWS_ENDPOINT_URL_CODECOMMIT"] ?? environment["AWS_ENDPOINT_URL"]
            ?? "https://codecommit.\(region).amazonaws.com\(region.hasPrefix("cn-") ? ".cn" : "")"
        return URL(string: text) ?? URL(string: "https://codecommit.\(region).amazonaws.com")!
    }

    struct APIError: Error {
        var type: String
        var message: String
    }

    func call(_ action: String, _ payload: [String: String]) throws(SyncFailure) -> Result<[String: Any], APIError> {
        let body = (try? JSONSerialization.data(withJSONObject: payload)) ?? Data()
        var headers = ["Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "CodeCommit_20150413.\(action)"]
        headers.merge(SigV4.sign(method: "POST", url: endpoint, headers: headers, body: body, service: "codecommit",
                                 region: region, credentials: credentials)) { _, signed in signed }
        let response = try http.send("POST", endpoint, headers: headers, body: body)
        let object = (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any] ?? [:]
        if response.status == 200 { return .success(object) }
        let type = (object["__type"] as? String ?? "HTTP \(response.status)").split(separator: "#").last.map(String.init) ?? ""
        let message = object["message"] as? String ?? object["Message"] as? String ?? response.text.prefix(200).description
        return .failure(APIError(type: type, message: message))
    }

    /// Whether the repository exists.
    public func repositoryExists(_ name: String) throws(SyncFailure) -> Bool {
        switch try call("GetRepository", ["repositoryName": name]) {
        case .success: return true
        case .failure(let error) where error.type == "RepositoryDoesNotExistException": return false
        case .failure(let error): throw classify(error, doing: "GetRepository \(name)")
        }
    }

    /// Creates the repository; one that already exists counts as created.
    public func createRepository(_ name: String) throws(SyncFailure) {
        switch try call("CreateRepository", ["repositoryName": name, "repositoryDescription": "Mirror created by gitmirror"]) {
        case .success: return
        case .failure(let error) where error.type == "RepositoryNameExistsException": return
        case .failure(let error): throw classify(error, doing: "CreateRepository \(name)")
        }
    }

    func classify(_ error: APIError, doing what: String) -> SyncFailure {
        switch error.type {
        case "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException":
            return SyncFailure(.auth, "\(what) was refused (\(error.type): \(error.message)); the identity needs codecommit:GetRepository and codecommit:CreateRepository")
        case "RepositoryLimitExceededException":
            return SyncFailure(.tooLarge, "\(what): the account's repository limit is reached (\(error.message))")
        default:
            return SyncFailure(.internal, "\(what) failed (\(error.type): \(error.message))")
        }
    }
}
