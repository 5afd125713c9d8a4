import Foundation

/// The shared `credentials` and `config` files, as the AWS SDKs read them.
public struct AWSSharedFiles: Sendable {
    public var credentialsFile: String
    public var configFile: String
    var credentials: [String: [String: String]] = [:]
    var config: [String: [String: String]] = [:]

    public init(environment: [String: String]) {
        let home = environment["HOME"] ?? NSHomeDirectory()
        credentialsFile = environment["AWS_SHARED_CREDENTIALS_FILE"] ?? "\(home)/.aws/credentials"
        configFile = environment["AWS_CONFIG_FILE"] ?? "\(home)/.aws/config"
        credentials = Self.parse((try? String(contentsOfFile: credentialsFile, encoding: .utf8)) ?? "", configStyle: false)
        config = Self.parse((try? String(contentsOfFile: configFile, encoding: .utf8)) ?? "", configStyle: true)
    }

    /// INI sections; in the config file `[profile NAME]` is profile NAME and `[default]` is default.
    static func parse(_ text: String, configStyle: Bool) -> [String: [String: String]] {
        var sections: [String: [String: String]] = [:]
        var current: String?
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                var name = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                if configStyle && name.hasPrefix("profile ") { name = name.dropFirst("profile ".count).trimmingCharacters(in: .whitespaces) }
                else if configStyle && name != "default" && !name.hasPrefix("profile") { current = nil; continue }   // sso-session and friends
                current = name
                sections[name, default: [:]] = sections[name] ?? [:]
                continue
            }
            guard let current, let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            sections[current]?[key] = value
        }
        return sections
    }

    public func hasProfile(_ name: String) -> Bool { credentials[name] != nil || config[name] != nil }

    /// The profile's settings; the credentials file wins over the config file.
    public func profile(_ name: String) -> [String: String] {
        (config[name] ?? [:]).merging(credentials[name] ?? [:]) { _, fromCredentials in fromCredentials }
    }

    public var profileNames: [String] { Array(Set(credentials.keys).union(config.keys)).sorted() }

    /// A profile's own credentials in botocore's order: keys in the credentials file, then the config
    /// file's `credential_process`, then keys in the config file. Nil when it has none.
    func staticKeys(_ name: String, process: (String) throws(SyncFailure) -> AWSCredentials) throws(SyncFailure) -> AWSCredentials? {
        func keys(_ section: [String: String]?) -> AWSCredentials? {
            guard let section, let key = section["aws_access_key_id"], let secret = section["aws_secret_access_key"] else { return nil }
            return AWSCredentials(accessKeyId: key, secretAccessKey: secret, sessionToken: section["aws_session_token"], source: "profile \(name)")
        }
        if let found = keys(credentials[name]) { return found }
        if let command = config[name]?["credential_process"] ?? credentials[name]?["credential_process"] { return try process(command) }
        return keys(config[name])
    }
}

/// The AWS credential chain, in the SDKs' order: environment variables; the shared
/// files (static keys, credential_process, role_arn with source_profile or
/// credential_source, web identity); web identity from the environment; container
/// credentials; EC2 instance metadata (IMDSv2).
public struct AWSCredentialChain: Sendable {
    public var environment: [String: String]
    public var http: HTTPClient
    public var now: @Sendable () -> Date

    public init(environment: [String: String], http: HTTPClient? = nil, now: @escaping @Sendable () -> Date = { Date() }) {
        self.environment = environment
        self.http = http ?? HTTPClient(caBundle: environment["AWS_CA_BUNDLE"].flatMap { $0.isEmpty ? nil : $0 })
        self.now = now
    }

    var files: AWSSharedFiles { AWSSharedFiles(environment: environment) }

    /// The region a profile or the environment names.
    public func region(profile: String?) -> String? {
        if let region = environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"], !region.isEmpty { return region }
        return files.profile(profile ?? environment["AWS_PROFILE"] ?? "default")["region"]
    }

    public func resolve(_ spec: AWSCredentialSpec, region: String) throws(SyncFailure) -> AWSCredentials {
        var base = try baseCredentials(spec, region: region)
        if let roleArn = spec.roleArn {
            base = try assumeRole(roleArn, with: base, externalId: spec.externalId, sessionName: spec.roleSessionName, region: region)
        }
        return base
    }

    /// The chain in botocore's order (`create_credential_resolver`):
    /// 1. the environment's keys (unless mirrors.yaml names a profile);
    /// 2. the profile's `role_arn` with `source_profile` or `credential_source`;
    /// 3. web identity: `AWS_WEB_IDENTITY_TOKEN_FILE`/`AWS_ROLE_ARN` (not for a profile mirrors.yaml names), then the profile's;
    /// 4. the profile's keys in the credentials file, its `credential_process`, its keys in the config file;
    /// 5. container credentials, then instance metadata.
    /// The profile is the one mirrors.yaml names, else `AWS_PROFILE`, else `default`. A profile that
    /// gives no credentials (say `[default]` with only a region) falls through to 5, as in the SDKs;
    /// only a profile mirrors.yaml names explicitly must give credentials itself.
    func baseCredentials(_ spec: AWSCredentialSpec, region: String) throws(SyncFailure) -> AWSCredentials {
        let explicit = spec.profile != nil
        if !explicit, let key = environment["AWS_ACCESS_KEY_ID"], let secret = environment["AWS_SECRET_ACCESS_KEY"], !key.isEmpty, !secret.isEmpty {
            return AWSCredentials(accessKeyId: key, secretAccessKey: secret, sessionToken: environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 },
                                  source: "environment variables")
        }
        let files = self.files
        let profileName = spec.profile ?? environment["AWS_PROFILE"].flatMap { $0.isEmpty ? nil : $0 } ?? "default"
        if !files.hasProfile(profileName) && profileName != "default" {
            throw SyncFailure(.config, "the AWS profile '\(profileName)' is not in \(files.credentialsFile) or \(files.configFile)")
        }
        let settings = files.profile(profileName)
        if settings["role_arn"] != nil && settings["web_identity_token_file"] == nil {
            return try fromProfile(profileName, files: files, region: region, visited: [])
        }
        let fromEnvironment = { (name: String) -> String? in explicit ? nil : self.environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        if let tokenFile = fromEnvironment("AWS_WEB_IDENTITY_TOKEN_FILE") ?? settings["web_identity_token_file"] {
            guard let roleArn = fromEnvironment("AWS_ROLE_ARN") ?? settings["role_arn"] else {
                throw SyncFailure(.config, "a web identity token file (\(tokenFile)) is set but no role to assume with it: set AWS_ROLE_ARN, or role_arn in AWS profile '\(profileName)'")
            }
            return try webIdentity(roleArn: roleArn, tokenFile: tokenFile,
                                   sessionName: fromEnvironment("AWS_ROLE_SESSION_NAME") ?? settings["role_session_name"], region: region)
        }
        if let keys = try files.staticKeys(profileName, process: { command throws(SyncFailure) in try credentialProcess(command, profile: profileName) }) {
            return keys
        }
        if settings["sso_session"] != nil || settings["sso_start_url"] != nil {
            throw SyncFailure(.config, "AWS profile '\(profileName)' signs in with IAM Identity Center (SSO), which gitmirror does not do; use credential_process = aws configure export-credentials --profile \(profileName) --format process in another profile, or a role")
        }
        if explicit {
            throw SyncFailure(.config, "AWS profile '\(profileName)' (named in mirrors.yaml) has no credentials: no keys, credential_process, role_arn or web_identity_token_file")
        }
        if environment["AWS_CONTAINER_CREDENTIALS_FULL_URI"] != nil || environment["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"] != nil {
            return try container()
        }
        if environment["AWS_EC2_METADATA_DISABLED"]?.lowercased() != "true" {
            if let credentials = try? instanceMetadata() { return credentials }
        }
        let looked = files.hasProfile(profileName) ? "profile '\(profileName)' gives none (it only sets \(settings.keys.sorted().joined(separator: ", ")))" : "no profile '\(profileName)'"
        throw SyncFailure(.auth, "no AWS credentials found (\(looked)): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, name a profile (aws: {profile: NAME}) in \(files.credentialsFile) or \(files.configFile), or run where web identity, container or instance credentials are available")
    }

    func fromProfile(_ name: String, files: AWSSharedFiles, region: String, visited: Set<String>) throws(SyncFailure) -> AWSCredentials {
        guard !visited.contains(name) else {
            throw SyncFailure(.config, "AWS profile '\(name)' is part of a source_profile loop")
        }
        let settings = files.profile(name)
        let profileRegion = settings["region"] ?? region
        if let roleArn = settings["role_arn"] {
            if let tokenFile = settings["web_identity_token_file"] {
                return try webIdentity(roleArn: roleArn, tokenFile: tokenFile, sessionName: settings["role_session_name"], region: profileRegion)
            }
            let source: AWSCredentials
            if let sourceProfile = settings["source_profile"] {
                if sourceProfile == name, let key = settings["aws_access_key_id"], let secret = settings["aws_secret_access_key"] {
                    source = AWSCredentials(accessKeyId: key, secretAccessKey: secret, sessionToken: settings["aws_session_token"], source: "profile \(name)")
                } else {
                    guard files.hasProfile(sourceProfile) else {
                        throw SyncFailure(.config, "AWS profile '\(name)' names source_profile '\(sourceProfile)', which does not exist")
                    }
                    source = try fromProfile(sourceProfile, files: files, region: profileRegion, visited: visited.union([name]))
                }
            } else if let credentialSource = settings["credential_source"] {
                switch credentialSource {
                case "Environment":
                    guard let key = environment["AWS_ACCESS_KEY_ID"], let secret = environment["AWS_SECRET_ACCESS_KEY"] else {
                        throw SyncFailure(.auth, "AWS profile '\(name)' takes its source credentials from the environment, where AWS_ACCESS_KEY_ID is not set")
                    }
                    source = AWSCredentials(accessKeyId: key, secretAccessKey: secret, sessionToken: environment["AWS_SESSION_TOKEN"], source: "environment variables")
                case "EcsContainer": source = try container()
                case "Ec2InstanceMetadata": source = try instanceMetadata()
                default: throw SyncFailure(.config, "AWS profile '\(name)': credential_source '\(credentialSource)' is not one of Environment, EcsContainer, Ec2InstanceMetadata")
                }
            } else {
                throw SyncFailure(.config, "AWS profile '\(name)' has role_arn but neither source_profile nor credential_source")
            }
            var assumed = try assumeRole(roleArn, with: source, externalId: settings["external_id"], sessionName: settings["role_session_name"], region: profileRegion)
            assumed.source = "profile \(name) (role \(roleArn) from \(source.source))"
            return assumed
        }
        if let keys = try files.staticKeys(name, process: { command throws(SyncFailure) in try credentialProcess(command, profile: name) }) {
            return keys
        }
        throw SyncFailure(.config, "AWS profile '\(name)' has no credentials (no keys, credential_process or role_arn)")
    }

    // MARK: sources

    func credentialProcess(_ command: String, profile: String) throws(SyncFailure) -> AWSCredentials {
        let output: Data
        let status: Int32
        do {
            (status, output) = try Self.run(["/bin/sh", "-c", command], environment: environment, timeout: 60)
        } catch {
            throw SyncFailure(.auth, "credential_process of AWS profile '\(profile)' could not run: \(error)")
        }
        guard status == 0 else {
            throw SyncFailure(.auth, "credential_process of AWS profile '\(profile)' exited with status \(status)")
        }
        var credentials = try parseJSONCredentials(output, tokenKey: "SessionToken", what: "credential_process of AWS profile '\(profile)'")
        credentials.source = "profile \(profile) (credential_process)"
        return credentials
    }

    func container() throws(SyncFailure) -> AWSCredentials {
        let address = environment["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
            ?? "http://169.254.170.2" + (environment["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"] ?? "")
        guard let url = URL(string: address) else { throw SyncFailure(.config, "AWS container credentials URI '\(address)' is not a URL") }
        var headers: [String: String] = [:]
        if let file = environment["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] {
            guard let token = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw SyncFailure(.auth, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE \(file) cannot be read")
            }
            headers["Authorization"] = token.trimmingCharacters(in: .whitespacesAndNewlines)
        } else if let token = environment["AWS_CONTAINER_AUTHORIZATION_TOKEN"] {
            headers["Authorization"] = token
        }
        let response = try http.send("GET", url, headers: headers)
        guard response.status == 200 else {
            throw SyncFailure(.auth, "container credentials at \(url.absoluteString) answered HTTP \(response.status)")
        }
        var credentials = try parseJSONCredentials(response.body, tokenKey: "Token", what: "container credentials")
        credentials.source = "container credentials (\(url.host ?? address))"
        return credentials
    }

    func instanceMetadata() throws(SyncFailure) -> AWSCredentials {
        let endpoint = environment["AWS_EC2_METADATA_SERVICE_ENDPOINT"] ?? "http://169.254.169.254"
        let base = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        var quick = http
        quick.timeout = 2
        guard let tokenURL = URL(string: base + "/latest/api/token"), let listURL = URL(string: base + "/latest/meta-data/iam/security-credentials/") else {
            throw SyncFailure(.config, "AWS_EC2_METADATA_SERVICE_ENDPOINT '\(endpoint)' is not a URL")
        }
        let tokenResponse = try quick.send("PUT", tokenURL, headers: ["X-aws-ec2-metadata-token-ttl-seconds": "21600"])
        guard tokenResponse.status == 200 else { throw SyncFailure(.auth, "instance metadata refused a session token (HTTP \(tokenResponse.status))") }
        let token = tokenResponse.text.trimmingCharacters(in: .whitespacesAndNewlines)
        let headers = ["X-aws-ec2-metadata-token": token]
        let roles = try quick.send("GET", listURL, headers: headers)
        guard roles.status == 200, let role = roles.text.split(whereSeparator: \.isNewline).first.map(String.init), !role.isEmpty,
              let roleURL = URL(string: listURL.absoluteString + role) else {
            throw SyncFailure(.auth, "this instance has no IAM role attached (instance metadata answered HTTP \(roles.status))")
        }
        let response = try quick.send("GET", roleURL, headers: headers)
        guard response.status == 200 else { throw SyncFailure(.auth, "instance metadata credentials answered HTTP \(response.status)") }
        var credentials = try parseJSONCredentials(response.body, tokenKey: "Token", what: "instance metadata")
        credentials.source = "EC2 instance metadata (role \(role))"
        return credentials
    }

    func stsEndpoint(region: String) -> URL {
        let text = environment["AWS_ENDPOINT_URL_STS"] ?? environment["AWS_ENDPOINT_URL"]
            ?? "https://sts.\(region).amazonaws.com\(region.hasPrefix("cn-") ? ".cn" : "")"
        return URL(string: text) ?? URL(string: "https://sts.amazonaws.com")!
    }

    func webIdentity(roleArn: String, tokenFile: String, sessionName: String?, region: String) throws(SyncFailure) -> AWSCredentials {
        guard let token = try? String(contentsOfFile: tokenFile, encoding: .utf8) else {
            throw SyncFailure(.auth, "the web identity token file \(tokenFile) cannot be read")
        }
        let form = [("Action", "AssumeRoleWithWebIdentity"), ("Version", "2011-06-15"), ("RoleArn", roleArn),
                    ("RoleSessionName", sessionName ?? "gitmirror-\(Int(now().timeIntervalSince1970))"),
                    ("WebIdentityToken", token.trimmingCharacters(in: .whitespacesAndNewlines))]
        var credentials = try sts(form: form, signedWith: nil, region: region, what: "AssumeRoleWithWebIdentity for \(roleArn)")
        credentials.source = "web identity (role \(roleArn))"
        return credentials
    }

    func assumeRole(_ roleArn: String, with source: AWSCredentials, externalId: String?, sessionName: String?, region: String) throws(SyncFailure) -> AWSCredentials {
        var form = [("Action", "AssumeRole"), ("Version", "2011-06-15"), ("RoleArn", roleArn),
                    ("RoleSessionName", sessionName ?? "gitmirror-\(Int(now().timeIntervalSince1970))")]
        if let externalId { form.append(("ExternalId", externalId)) }
        var credentials = try sts(form: form, signedWith: source, region: region, what: "AssumeRole \(roleArn)")
        credentials.source = "role \(roleArn) (from \(source.source))"
        return credentials
    }

    func sts(form: [(String, String)], signedWith source: AWSCredentials?, region: String, what: String) throws(SyncFailure) -> AWSCredentials {
        let url = stsEndpoint(region: region)
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        let body = Data(form.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0.1)" }.joined(separator: "&").utf8)
        var headers = ["Content-Type": "application/x-www-form-urlencoded; charset=utf-8"]
        if let source {
            headers.merge(SigV4.sign(method: "POST", url: url, headers: headers, body: body, service: "sts", region: region,
                                     credentials: source, date: now())) { _, signed in signed }
        }
        let response = try http.send("POST", url, headers: headers, body: body)
        let text = response.text
        guard response.status == 200 else {
            let code = Self.xmlValue("Code", in: text) ?? "HTTP \(response.status)"
            let message = Self.xmlValue("Message", in: text) ?? ""
            throw SyncFailure(.auth, "\(what) was refused by STS (\(code)\(message.isEmpty ? "" : ": \(message)"))")
        }
        guard let key = Self.xmlValue("AccessKeyId", in: text), let secret = Self.xmlValue("SecretAccessKey", in: text) else {
            throw SyncFailure(.auth, "\(what): STS answered without credentials")
        }
        return AWSCredentials(accessKeyId: key, secretAccessKey: secret, sessionToken: Self.xmlValue("SessionToken", in: text),
                              expiration: Self.xmlValue("Expiration", in: text).flatMap(Self.date), source: "sts")
    }

    func parseJSONCredentials(_ data: Data, tokenKey: String, what: String) throws(SyncFailure) -> AWSCredentials {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let key = object["AccessKeyId"] as? String, let secret = object["SecretAccessKey"] as? String else {
            throw SyncFailure(.auth, "\(what) did not return AccessKeyId and SecretAccessKey as JSON")
        }
        return AWSCredentials(accessKeyId: key, secretAccessKey: secret, sessionToken: object[tokenKey] as? String,
                              expiration: (object["Expiration"] as? String).flatMap(Self.date), source: what)
    }

    static func xmlValue(_ tag: String, in text: String) -> String? {
        guard let start = text.range(of: "<\(tag)>"), let end = text.range(of: "</\(tag)>", range: start.upperBound..<text.endIndex) else { return nil }
        return String(text[start.upperBound..<end.lowerBound])
    }

    static func date(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }

    /// Runs a credential_process command with a deadline; its stdout is the answer.
    static func run(_ command: [String], environment: [String: String], timeout: TimeInterval) throws -> (Int32, Data) {
        let result = try ChildProcess.run(command, environment: environment, timeout: timeout)
        return (result.status, result.output)
    }
}

extension ConfigLoader {
    /// A loader for this machine: a `codecommit://NAME` without a region takes the AWS SDKs' default
    /// (AWS_REGION, then the profile's `region` in ~/.aws/config), read here, before parsing.
    public static func forThisMachine(requireEnvironment: Bool = false,
                                      environment: [String: String] = ProcessInfo.processInfo.environment) -> ConfigLoader {
        ConfigLoader(requireEnvironment: requireEnvironment, defaultRegion: AWSCredentialChain(environment: environment).region(profile: nil))
    }
}
