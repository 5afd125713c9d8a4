import Foundation
import Testing
import TestSupport
@testable import MirrorCore

/// Each link of the AWS credential chain, against real files, processes and servers on loopback.
@Suite(.onTestThreads) struct AWSCredentialChainTests {
    let sandbox: Sandbox
    /// No shared files, no instance metadata off this machine: each test adds what it needs.
    var base: [String: String]

    init() throws {
        sandbox = try Sandbox("aws-chain")
        base = ["HOME": sandbox.root.path, "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
                "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": sandbox.path("aws/config").path,
                "AWS_SHARED_CREDENTIALS_FILE": sandbox.path("aws/credentials").path]
    }

    func resolve(_ environment: [String: String], _ spec: AWSCredentialSpec = AWSCredentialSpec()) throws -> AWSCredentials {
        try AWSCredentialChain(environment: environment).resolve(spec, region: "eu-west-1")
    }

    @Test func environmentVariablesComeFirst() throws {
        var environment = base
        environment["AWS_ACCESS_KEY_ID"] = "AKIAENV"
        environment["AWS_SECRET_ACCESS_KEY"] = "env-secret"
        environment["AWS_SESSION_TOKEN"] = "env-token"
        _ = try sandbox.write("aws/credentials", "[default]\naws_access_key_id = AKIAFILE\naws_secret_access_key = file-secret\n")
        let credentials = try resolve(environment)
        #expect(credentials.accessKeyId == "AKIAENV" && credentials.sessionToken == "env-token")
        #expect(credentials.source == "environment variables")
    }

    @Test func namedProfileFromTheSharedCredentialsFile() throws {
        _ = try sandbox.write("aws/credentials", "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = d\n\n[mirror]\naws_access_key_id = AKIAMIRROR\naws_secret_access_key = mirror-secret\n")
        var environment = base
        environment["AWS_ACCESS_KEY_ID"] = "AKIAENV"
        environment["AWS_SECRET_ACCESS_KEY"] = "ignored-when-a-profile-is-named"
        let credentials = try resolve(environment, AWSCredentialSpec(profile: "mirror"))
        #expect(credentials.accessKeyId == "AKIAMIRROR" && credentials.source == "profile mirror")
        var viaVariable = base
        viaVariable["AWS_PROFILE"] = "mirror"
        #expect(try resolve(viaVariable).accessKeyId == "AKIAMIRROR")
    }

    @Test func missingProfileIsAConfigError() throws {
        #expect(throws: SyncFailure.self) { try resolve(base, AWSCredentialSpec(profile: "nope")) }
        do {
            _ = try resolve(base, AWSCredentialSpec(profile: "nope"))
        } catch let failure as SyncFailure {
            #expect(failure.errorClass == .config && failure.message.contains("'nope'"))
        }
    }

    @Test func credentialProcessIsRunAndRefreshedBeforeItExpires() throws {
        let counter = sandbox.path("process-count")
        let script = try sandbox.write("bin/creds.sh", """
            #!/bin/sh
            echo run >> \(counter.path)
            expires=$(date -u -d '+2 minutes' +%Y-%m-%dT%H:%M:%SZ)
            printf '{"Version": 1, "AccessKeyId": "AKIAPROCESS", "SecretAccessKey": "process-secret", "SessionToken": "process-token", "Expiration": "%s"}' "$expires"
            """, mode: 0o700)
        _ = try sandbox.write("aws/config", "[profile tool]\ncredential_process = \(script.path)\nregion = eu-west-1\n")
        let resolver = CredentialResolver(environment: base, redactor: Redactor())
        let first = try resolver.awsCredentials(AWSCredentialSpec(profile: "tool"), name: "cc", region: "eu-west-1")
        #expect(first.accessKeyId == "AKIAPROCESS" && first.sessionToken == "process-token" && first.expiration != nil)
        #expect(first.source == "profile tool (credential_process)")
        // Expiring within five minutes: the next use asks the process again
        _ = try resolver.awsCredentials(AWSCredentialSpec(profile: "tool"), name: "cc", region: "eu-west-1")
        let runs = try String(contentsOf: counter, encoding: .utf8).split(separator: "\n").count
        #expect(runs == 2)
    }

    @Test func roleFromASourceProfileIsAssumedThroughSTS() throws {
        let moto = try MotoServer(sandbox: sandbox)
        _ = try sandbox.write("aws/credentials", "[base]\naws_access_key_id = AKIABASE\naws_secret_access_key = base-secret\n")
        _ = try sandbox.write("aws/config", "[profile mirror]\nrole_arn = arn:aws:iam::123456789012:role/mirror\nsource_profile = base\nexternal_id = ext-1\n")
        var environment = base
        environment["AWS_ENDPOINT_URL_STS"] = moto.url
        let credentials = try resolve(environment, AWSCredentialSpec(profile: "mirror"))
        #expect(credentials.accessKeyId.hasPrefix("ASIA"))
        #expect(credentials.sessionToken != nil && credentials.expiration != nil)
        #expect(credentials.source.contains("role arn:aws:iam::123456789012:role/mirror") && credentials.source.contains("profile base"))
    }

    @Test func explicitRoleIsAssumedOnTopOfTheChain() throws {
        let moto = try MotoServer(sandbox: sandbox)
        var environment = base
        environment["AWS_ENDPOINT_URL_STS"] = moto.url
        environment["AWS_ACCESS_KEY_ID"] = "AKIAENV"
        environment["AWS_SECRET_ACCESS_KEY"] = "env-secret"
        let credentials = try resolve(environment, AWSCredentialSpec(roleArn: "arn:aws:iam::123456789012:role/cross-account", externalId: "ext-9"))
        #expect(credentials.accessKeyId.hasPrefix("ASIA") && credentials.sessionToken != nil)
        #expect(credentials.source == "role arn:aws:iam::123456789012:role/cross-account (from environment variables)")
    }

    @Test func webIdentityFromTheEnvironmentAsOnEKS() throws {
        let moto = try MotoServer(sandbox: sandbox)
        let token = try sandbox.write("eks/token", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.signature")
        var environment = base
        environment["AWS_ENDPOINT_URL_STS"] = moto.url
        environment["AWS_WEB_IDENTITY_TOKEN_FILE"] = token.path
        environment["AWS_ROLE_ARN"] = "arn:aws:iam::123456789012:role/irsa-mirror"
        let credentials = try resolve(environment)
        #expect(credentials.accessKeyId.hasPrefix("ASIA") && credentials.sessionToken != nil)
        #expect(credentials.source == "web identity (role arn:aws:iam::123456789012:role/irsa-mirror)")
    }

    @Test func containerCredentialsWithAnAuthorizationTokenFile() throws {
        let server = try MetadataServer(sandbox: sandbox, mode: .container, accessKey: "ASIACONTAINER", secretKey: "container-secret",
                                        token: "container-token", authorization: "Bearer pod-identity-token")
        let tokenFile = try sandbox.write("container/token", "Bearer pod-identity-token\n")
        var environment = base
        environment["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = server.url + "/v1/credentials"
        environment["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = tokenFile.path
        let credentials = try resolve(environment)
        #expect(credentials.accessKeyId == "ASIACONTAINER" && credentials.sessionToken == "container-token" && credentials.expiration != nil)
        #expect(credentials.source.hasPrefix("container credentials"))
    }

    @Test func instanceMetadataWithIMDSv2SessionTokens() throws {
        let server = try MetadataServer(sandbox: sandbox, mode: .imds, accessKey: "ASIAINSTANCE", secretKey: "instance-secret", token: "instance-token")
        var environment = base
        environment["AWS_EC2_METADATA_DISABLED"] = nil
        environment["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = server.url
        let credentials = try resolve(environment)
        #expect(credentials.accessKeyId == "ASIAINSTANCE" && credentials.sessionToken == "instance-token")
        #expect(credentials.source == "EC2 instance metadata (role mirror-instance-role)")
        // A session token was asked for first (IMDSv2), and every GET carried it
        #expect(server.requests.first == "PUT /latest/api/token 200")
        #expect(server.requests.allSatisfy { $0.hasSuffix(" 200") })
    }

    /// What botocore (the AWS CLI's and boto3's chain) resolves in the same environment: its method and key.
    func botocore(_ environment: [String: String], profile: String? = nil) throws -> (method: String, key: String?) {
        let script = """
            import json, sys, botocore.session
            session = botocore.session.Session(profile=sys.argv[1] or None)
            credentials = session.get_credentials()
            print(json.dumps({"method": credentials.method if credentials else "none",
                              "key": credentials.get_frozen_credentials().access_key if credentials else None}))
            """
        var env = environment
        env["AWS_DEFAULT_REGION"] = "eu-west-1"
        let output = try Shell.run(["/usr/bin/env", "python3", "-c", script, profile ?? ""], environment: env)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any], "\(output)")
        return (object["method"] as? String ?? "", object["key"] as? String)
    }

    /// botocore's name for the source gitmirror reports.
    func method(_ credentials: AWSCredentials) -> String {
        let source = credentials.source
        if source == "environment variables" { return "env" }
        if source.hasPrefix("EC2 instance metadata") { return "iam-role" }
        if source.hasPrefix("web identity") { return "assume-role-with-web-identity" }
        if source.contains("(role ") { return "assume-role" }
        if source.hasSuffix("(credential_process)") { return "custom-process" }
        if source.hasPrefix("profile ") { return "shared-credentials-file" }
        if source.hasPrefix("container credentials") { return "container-role" }
        return source
    }

    @Test(arguments: ChainCase.allCases)
    func resolvesWhatBotocoreResolves(_ chainCase: ChainCase) throws {
        // Given the same files and environment for both
        let moto = try MotoServer(sandbox: sandbox)
        let token = try sandbox.write("eks/token", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.signature")
        var environment = base
        environment["AWS_ENDPOINT_URL_STS"] = moto.url
        let irsa = ["AWS_WEB_IDENTITY_TOKEN_FILE": token.path, "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/irsa-mirror"]
        var spec = AWSCredentialSpec()
        var servers: [Server] = []
        switch chainCase {
        case .defaultProfileWithOnlyARegionAndWebIdentity:
            _ = try sandbox.write("aws/config", "[default]\nregion = eu-west-1\n")
            environment.merge(irsa) { $1 }
        case .webIdentityBeforeTheDefaultProfilesKeys:
            _ = try sandbox.write("aws/credentials", "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = d\n")
            environment.merge(irsa) { $1 }
        case .environmentKeysBeforeWebIdentity:
            environment.merge(irsa) { $1 }
            environment["AWS_ACCESS_KEY_ID"] = "AKIAENV"
            environment["AWS_SECRET_ACCESS_KEY"] = "env-secret"
        case .profileRoleBeforeWebIdentity:
            _ = try sandbox.write("aws/credentials", "[base]\naws_access_key_id = AKIABASE\naws_secret_access_key = b\n")
            _ = try sandbox.write("aws/config", "[default]\nrole_arn = arn:aws:iam::123456789012:role/chained\nsource_profile = base\n")
            environment.merge(irsa) { $1 }
        case .awsProfileWithOnlyARegionFallsToContainer:
            _ = try sandbox.write("aws/config", "[profile tooling]\nregion = eu-west-1\n")
            let server = try MetadataServer(sandbox: sandbox, mode: .container, accessKey: "ASIACONTAINER", secretKey: "c", token: "t")
            servers.append(server)
            environment["AWS_PROFILE"] = "tooling"
            environment["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = server.url + "/v1/credentials"
        case .defaultProfileWithOnlyARegionFallsToInstanceMetadata:
            _ = try sandbox.write("aws/config", "[default]\nregion = eu-west-1\n")
            let server = try MetadataServer(sandbox: sandbox, mode: .imds, accessKey: "ASIAINSTANCE", secretKey: "i", token: "t")
            servers.append(server)
            environment["AWS_EC2_METADATA_DISABLED"] = nil
            environment["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = server.url
        case .credentialsFileKeysBeforeCredentialProcess:
            _ = try sandbox.write("aws/credentials", "[default]\naws_access_key_id = AKIAFILE\naws_secret_access_key = f\n")
            _ = try sandbox.write("aws/config", "[default]\ncredential_process = /bin/false\n")
        case .namedProfileIgnoresTheEnvironment:
            _ = try sandbox.write("aws/credentials", "[mirror]\naws_access_key_id = AKIAMIRROR\naws_secret_access_key = m\n")
            environment.merge(irsa) { $1 }
            environment["AWS_ACCESS_KEY_ID"] = "AKIAENV"
            environment["AWS_SECRET_ACCESS_KEY"] = "env-secret"
            spec.profile = "mirror"
        }
        defer { servers.forEach { $0.stop() } }

        // Then gitmirror's chain picks the source botocore picks (and the same key, where it is static)
        let expected = try botocore(environment, profile: spec.profile)
        let credentials = try resolve(environment, spec)
        #expect(method(credentials) == expected.method, "\(chainCase): gitmirror used \(credentials.source), botocore \(expected.method)")
        if !expected.method.hasPrefix("assume-role") { #expect(credentials.accessKeyId == expected.key) }
    }

    @Test func aProfileNamedInMirrorsYamlMustHaveCredentialsItself() throws {
        // botocore would go on to container and instance credentials; a profile the user named explicitly
        // that gives nothing is a mistake worth saying, not a reason to sign as something else
        _ = try sandbox.write("aws/config", "[profile mirror]\nregion = eu-west-1\n")
        var environment = base
        environment["AWS_WEB_IDENTITY_TOKEN_FILE"] = try sandbox.write("eks/token", "x").path
        environment["AWS_ROLE_ARN"] = "arn:aws:iam::123456789012:role/irsa-mirror"
        #expect(try botocore(environment, profile: "mirror").method == "none")
        #expect { try resolve(environment, AWSCredentialSpec(profile: "mirror")) } throws: {
            let failure = $0 as? SyncFailure
            return failure?.errorClass == .config && failure?.message.contains("'mirror' (named in mirrors.yaml) has no credentials") == true
        }
    }

    @Test func nothingFoundSaysWhereItLooked() throws {
        do {
            _ = try resolve(base)
            Issue.record("expected no credentials")
        } catch let failure as SyncFailure {
            #expect(failure.errorClass == .auth && failure.message.contains("AWS_ACCESS_KEY_ID"))
        }
    }
}

/// The HTTP client AWS API calls go through: a custom CA bundle (AWS_CA_BUNDLE) is trusted, nothing else is.
@Suite(.onTestThreads) struct HTTPClientTests {
    @Test func trustsTheGivenCABundleAndRefusesUnknownCertificates() throws {
        let sandbox = try Sandbox("http-client")
        let endpoint = try CodeCommitEndpoint(sandbox: sandbox, region: "eu-west-1", accessKey: "AKIA", secretKey: "s")
        let url = try #require(URL(string: "https://127.0.0.1:\(endpoint.port)/not-codecommit"))

        let trusted = try HTTPClient(caBundle: endpoint.authority.certificate.path).send("GET", url)
        #expect(trusted.status == 404 && trusted.text == "not a CodeCommit path")

        do {
            _ = try HTTPClient().send("GET", url)
            Issue.record("an unknown CA must be refused")
        } catch {
            #expect(error.errorClass == .tls && error.message.contains("AWS_CA_BUNDLE"))
        }
    }

    @Test func aSilentServerTimesOut() throws {
        let sandbox = try Sandbox("http-client-silent")
        let silent = try SilentServer(sandbox: sandbox)
        let started = Date()
        do {
            _ = try HTTPClient(timeout: 1).send("GET", URL(string: "http://127.0.0.1:\(silent.port)/")!)
            Issue.record("expected a timeout")
        } catch {
            #expect(error.errorClass == .timeout)
        }
        #expect(Date().timeIntervalSince(started) < 5)
    }
}

enum ChainCase: String, CaseIterable, CustomTestStringConvertible {
    case defaultProfileWithOnlyARegionAndWebIdentity
    case webIdentityBeforeTheDefaultProfilesKeys
    case environmentKeysBeforeWebIdentity
    case profileRoleBeforeWebIdentity
    case awsProfileWithOnlyARegionFallsToContainer
    case defaultProfileWithOnlyARegionFallsToInstanceMetadata
    case credentialsFileKeysBeforeCredentialProcess
    case namedProfileIgnoresTheEnvironment

    var testDescription: String { rawValue }
}
