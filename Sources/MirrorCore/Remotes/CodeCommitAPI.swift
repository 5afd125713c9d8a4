import Foundation

/// The few CodeCommit API calls gitmirror makes (JSON over HTTPS, SigV4-signed).
public struct CodeCommitAPI: Sendable {
    public var region: String
    public var credentials: AWSCredentials
    public var environment: [String: String]
    public var http: HTTPClient

    public init(region: String, credentials: AWSCredentials, environment: [String: String]) {
        self.region = region
        self.credentials = credentials
        self.environment = environment
        self.http = HTTPClient(timeout: 30, caBundle: environment["AWS_CA_BUNDLE"].flatMap { $0.isEmpty ? nil : $0 })
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
        try callRecordingDate(action, payload).0
    }

    func callRecordingDate(_ action: String, _ payload: [String: String]) throws(SyncFailure) -> (Result<[String: Any], APIError>, Date?) {
        let body = (try? JSONSerialization.data(withJSONObject: payload)) ?? Data()
        var headers = ["Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "CodeCommit_20150413.\(action)"]
        headers.merge(SigV4.sign(method: "POST", url: endpoint, headers: headers, body: body, service: "codecommit",
                                 region: region, credentials: credentials)) { _, signed in signed }
        let response = try http.send("POST", endpoint, headers: headers, body: body)
        let date = response.headers["date"].flatMap(Self.httpDate)
        let object = (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any] ?? [:]
        if response.status == 200 { return (.success(object), date) }
        let type = (object["__type"] as? String ?? "HTTP \(response.status)").split(separator: "#").last.map(String.init) ?? ""
        let message = object["message"] as? String ?? object["Message"] as? String ?? response.text.prefix(200).description
        return (.failure(APIError(type: type, message: message)), date)
    }

    static func httpDate(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: text)
    }

    /// Whether the repository exists, and how far this machine's clock is from AWS's (seconds, positive: ours is ahead).
    public func probe(_ name: String) throws(SyncFailure) -> (exists: Bool, skew: TimeInterval?) {
        let sent = Date()
        let (result, date) = try callRecordingDate("GetRepository", ["repositoryName": name])
        let skew = date.map { sent.timeIntervalSince($0) }
        switch result {
        case .success: return (true, skew)
        case .failure(let error) where error.type == "RepositoryDoesNotExistException": return (false, skew)
        case .failure(let error): throw classify(error, doing: "GetRepository \(name)")
        }
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
        switch Classification.awsAPI(errorType: error.type) {
        case .auth?:
            return SyncFailure(.auth, "\(what) was refused (\(error.type): \(error.message)); the identity needs codecommit:GetRepository and codecommit:CreateRepository")
        case .tooLarge?:
            return SyncFailure(.tooLarge, "\(what): the account's repository limit is reached (\(error.message))")
        default:
            return SyncFailure(.internal, "\(what) failed (\(error.type): \(error.message))")
        }
    }
}
