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

    func call(_ action: String, _ payload: [String: Any]) throws(SyncFailure) -> Result<[String: Any], APIError> {
        try callRecordingDate(action, payload).0
    }

    func callRecordingDate(_ action: String, _ payload: [String: Any]) throws(SyncFailure) -> (Result<[String: Any], APIError>, Date?) {
        let body = (try? JSONSerialization.data(withJSONObject: payload, options: [.sortedKeys])) ?? Data()
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

    /// Every repository of the region, with its default branch and description (ListRepositories,
    /// then BatchGetRepositories 25 at a time). `clone` makes the address a repository is cloned from.
    public func repositories() throws(SyncFailure) -> [DiscoveredRepository] {
        var names: [String] = []
        var token: String?
        repeat {
            var payload: [String: Any] = ["sortBy": "repositoryName", "order": "ascending"]
            if let token { payload["nextToken"] = token }
            switch try call("ListRepositories", payload) {
            case .success(let object):
                names += (object["repositories"] as? [[String: Any]] ?? []).compactMap { $0["repositoryName"] as? String }
                token = (object["nextToken"] as? String).flatMap { $0.isEmpty ? nil : $0 }
            case .failure(let error): throw classify(error, doing: "ListRepositories in \(region)")
            }
        } while token != nil
        var found: [DiscoveredRepository] = []
        for start in stride(from: 0, to: names.count, by: 25) {
            let batch = Array(names[start..<min(start + 25, names.count)])
            switch try call("BatchGetRepositories", ["repositoryNames": batch]) {
            case .success(let object):
                for item in object["repositories"] as? [[String: Any]] ?? [] {
                    guard let name = item["repositoryName"] as? String else { continue }
                    found.append(DiscoveredRepository(path: name, name: name, cloneURL: "codecommit::\(region)://\(name)",
                                                      defaultBranch: item["defaultBranch"] as? String,
                                                      description: (item["repositoryDescription"] as? String).flatMap { $0.isEmpty ? nil : $0 }))
                }
            case .failure(let error): throw classify(error, doing: "BatchGetRepositories in \(region)")
            }
        }
        return found.sorted { $0.path < $1.path }
    }

    /// Points the repository's HEAD at `branch`, which must exist there.
    public func updateDefaultBranch(_ name: String, to branch: String) throws(SyncFailure) {
        switch try call("UpdateDefaultBranch", ["repositoryName": name, "defaultBranchName": branch]) {
        case .success: return
        case .failure(let error): throw classify(error, doing: "UpdateDefaultBranch \(name) to \(branch)")
        }
    }

    /// Creates the repository; one that already exists counts as created.
    public func createRepository(_ name: String, description: String? = nil) throws(SyncFailure) {
        switch try call("CreateRepository", ["repositoryName": name, "repositoryDescription": description ?? "Mirror created by gitmirror"]) {
        case .success: return
        case .failure(let error) where error.type == "RepositoryNameExistsException": return
        case .failure(let error): throw classify(error, doing: "CreateRepository \(name)")
        }
    }

    func classify(_ error: APIError, doing what: String) -> SyncFailure {
        switch Classification.awsAPI(errorType: error.type) {
        case .auth?:
            return SyncFailure(.auth, "\(what) was refused (\(error.type): \(error.message)); the identity needs codecommit:\(what.split(separator: " ").first ?? "") (and, for create: true and discovery, codecommit:GetRepository, CreateRepository, ListRepositories, BatchGetRepositories and UpdateDefaultBranch)")
        case .rateLimited?:
            return SyncFailure(.rateLimited, "\(what): AWS throttled the call (\(error.type)); the next run tries again")
        case .tooLarge?:
            return SyncFailure(.tooLarge, "\(what): the account's repository limit is reached (\(error.message))")
        default:
            return SyncFailure(.internal, "\(what) failed (\(error.type): \(error.message))")
        }
    }
}
