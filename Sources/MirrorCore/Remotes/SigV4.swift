import Foundation

/// AWS credentials as a source in the chain produced them.
public struct AWSCredentials: Sendable, Codable, Equatable {
    public var accessKeyId: String
    public var secretAccessKey: String
    public var sessionToken: String?
    public var expiration: Date?
    /// Which link of the chain produced them, for `doctor` ("environment", "profile mirror", …).
    public var source: String

    public init(accessKeyId: String, secretAccessKey: String, sessionToken: String? = nil, expiration: Date? = nil, source: String) {
        self.accessKeyId = accessKeyId
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.expiration = expiration
        self.source = source
    }

    /// Temporary credentials are refreshed this long before they expire.
    public func expires(within seconds: TimeInterval, of now: Date = Date()) -> Bool {
        guard let expiration else { return false }
        return expiration.timeIntervalSince(now) < seconds
    }
}

/// AWS Signature Version 4.
public enum SigV4 {
    static func stamp(_ date: Date) -> (timestamp: String, day: String) {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss"
        let timestamp = formatter.string(from: date)
        return (timestamp, String(timestamp.prefix(8)))
    }

    static func signingKey(secret: String, day: String, region: String, service: String) -> [UInt8] {
        let date = SHA256.hmac(key: Array("AWS4\(secret)".utf8), message: Array(day.utf8))
        let regional = SHA256.hmac(key: date, message: Array(region.utf8))
        let serviced = SHA256.hmac(key: regional, message: Array(service.utf8))
        return SHA256.hmac(key: serviced, message: Array("aws4_request".utf8))
    }

    static func signature(canonicalRequest: String, timestamp: String, day: String, region: String, service: String, secret: String) -> String {
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = "AWS4-HMAC-SHA256\n\(timestamp)\n\(scope)\n\(SHA256.hash(Array(canonicalRequest.utf8)).hex)"
        return SHA256.hmac(key: signingKey(secret: secret, day: day, region: region, service: service), message: Array(stringToSign.utf8)).hex
    }

    /// The username and password git sends to CodeCommit, computed exactly as
    /// `aws codecommit credential-helper` computes them: method `GIT`, the
    /// repository path, the host without its port; the session token rides on the username.
    public static func codeCommitCredentials(host: String, path: String, region: String,
                                             credentials: AWSCredentials, date: Date = Date()) -> (username: String, password: String) {
        let (timestamp, day) = stamp(date)
        let hostname = host.split(separator: ":").first.map(String.init) ?? host
        let canonical = "GIT\n\(path)\n\nhost:\(hostname)\n\nhost\n"
        let signature = signature(canonicalRequest: canonical, timestamp: timestamp, day: day, region: region,
                                  service: "codecommit", secret: credentials.secretAccessKey)
        var username = credentials.accessKeyId
        if let token = credentials.sessionToken { username += "%" + token }
        return (username, "\(timestamp)Z\(signature)")
    }

    /// Signs an HTTP request to an AWS API; returns the headers to add (X-Amz-Date, Authorization, X-Amz-Security-Token).
    public static func sign(method: String, url: URL, headers: [String: String], body: Data, service: String, region: String,
                            credentials: AWSCredentials, date: Date = Date()) -> [String: String] {
        let (timestamp, day) = stamp(date)
        var all = headers
        all["X-Amz-Date"] = timestamp + "Z"
        if let token = credentials.sessionToken { all["X-Amz-Security-Token"] = token }
        let components = URLComponents(url: url, resolvingAgainstBaseURL: false)
        var host = components?.host ?? ""
        if let port = components?.port { host += ":\(port)" }
        all["Host"] = host
        let lowered = Dictionary(all.map { ($0.key.lowercased(), $0.value.trimmingCharacters(in: .whitespaces)) }, uniquingKeysWith: { a, _ in a })
        let names = lowered.keys.sorted()
        let canonicalHeaders = names.map { "\($0):\(lowered[$0]!)\n" }.joined()
        let signedHeaders = names.joined(separator: ";")
        let path = components?.percentEncodedPath.isEmpty == false ? components!.percentEncodedPath : "/"
        let items: [(name: String, value: String)] = (components?.percentEncodedQueryItems ?? []).map { ($0.name, $0.value ?? "") }
        let sortedItems = items.sorted { (a: (name: String, value: String), b: (name: String, value: String)) -> Bool in
            a.name == b.name ? a.value < b.value : a.name < b.name
        }
        let query = sortedItems.map { "\($0.name)=\($0.value)" }.joined(separator: "&")
        let canonical = [method, path, query, canonicalHeaders, signedHeaders, SHA256.hash(Array(body)).hex].joined(separator: "\n")
        let signature = signature(canonicalRequest: canonical, timestamp: timestamp + "Z", day: day, region: region,
                                  service: service, secret: credentials.secretAccessKey)
        var result: [String: String] = ["X-Amz-Date": timestamp + "Z", "Host": host]
        if let token = credentials.sessionToken { result["X-Amz-Security-Token"] = token }
        result["Authorization"] = "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyId)/\(day)/\(region)/\(service)/aws4_request, SignedHeaders=\(signedHeaders), Signature=\(signature)"
        return result
    }
}
