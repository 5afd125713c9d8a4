import Foundation
import Testing
import TestSupport
@testable import MirrorCore

/// The CodeCommit git password must be exactly what `aws codecommit credential-helper` computes.
@Suite(.onTestThreads) struct SigV4Tests {
    /// 2026-11-22T08:15:30Z, the clock pinned in awscli when these vectors were made.
    static let pinned = Date(timeIntervalSince1970: 1_795_335_330)

    struct Vector: Sendable {
        var key: String, secret: String, token: String?, host: String, path: String, region: String, password: String
    }

    // Produced by awscli 1.43's credential helper with get_current_datetime pinned (see awscliAgreesWithTheSigner).
    static let vectors: [Vector] = [
        Vector(key: "AKIDEXAMPLE", secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token: nil,
               host: "git-codecommit.us-east-1.amazonaws.com", path: "/v1/repos/payments", region: "us-east-1",
               password: "20261122T081530Z8ed30400f7339b4982ed2198f0e9a8fb6c8566847e990d96ca21b50ea3372130"),
        Vector(key: "ASIAEXAMPLE", secret: "secret/with+chars", token: "FwoGZXIvYXdzEJr//////////token==",
               host: "git-codecommit.eu-west-1.amazonaws.com", path: "/v1/repos/payments", region: "eu-west-1",
               password: "20261122T081530Zd417734d6dae20b1688b3e3c1ce8ee1415c2d15df19e1c78f7a7e6cb00a38000"),
        Vector(key: "AKIDEXAMPLE", secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token: nil,
               host: "git-codecommit-fips.us-gov-west-1.amazonaws.com", path: "/v1/repos/gov-repo", region: "us-gov-west-1",
               password: "20261122T081530Zb7eab211e5e09f3047b08c4978d6bd0f73abb6d9a32db7e55d4de6e6b22d001d"),
        Vector(key: "AKIDEXAMPLE", secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token: nil,
               host: "git-codecommit.cn-north-1.amazonaws.com.cn", path: "/v1/repos/china.repo", region: "cn-north-1",
               password: "20261122T081530Z3851e03ea3558a550d07d5c059292fdf7faa5c649d121e42ab951268106dfc5a"),
        Vector(key: "AKIDEXAMPLE", secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token: nil,
               host: "127.0.0.1:8443", path: "/v1/repos/local", region: "eu-west-1",
               password: "20261122T081530Z00d627da0f426cd0cf0718ed4e384a245450011010d283435cad0b7323370941"),
    ]

    @Test(arguments: vectors.indices)
    func matchesAwscliVector(_ index: Int) {
        let vector = Self.vectors[index]
        let credentials = AWSCredentials(accessKeyId: vector.key, secretAccessKey: vector.secret, sessionToken: vector.token, source: "test")
        let result = SigV4.codeCommitCredentials(host: vector.host, path: vector.path, region: vector.region, credentials: credentials, date: Self.pinned)
        #expect(result.password == vector.password)
        #expect(result.username == vector.key + (vector.token.map { "%" + $0 } ?? ""))
    }

    @Test func awscliAgreesWithTheSigner() throws {
        // The installed awscli signs with a pinned clock; our signer must produce the same password.
        let script = """
            import datetime, json, sys
            from unittest import mock
            from awscli.customizations import codecommit
            from botocore.credentials import Credentials
            session = mock.Mock()
            session.get_credentials.return_value = Credentials("AKIDLIVE", "live/secret+key", "live-token")
            helper = codecommit.CodeCommitGetCommand(session)
            with mock.patch.object(codecommit, "get_current_datetime", return_value=datetime.datetime(2026, 11, 22, 8, 15, 30)):
                print(helper.sign_request("ap-southeast-2", "https://git-codecommit.ap-southeast-2.amazonaws.com/v1/repos/live"))
            """
        let output = try Shell.run(["python3", "-c", script])
        let credentials = AWSCredentials(accessKeyId: "AKIDLIVE", secretAccessKey: "live/secret+key", sessionToken: "live-token", source: "test")
        let ours = SigV4.codeCommitCredentials(host: "git-codecommit.ap-southeast-2.amazonaws.com", path: "/v1/repos/live",
                                               region: "ap-southeast-2", credentials: credentials, date: Self.pinned)
        #expect(ours.password == output.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    @Test func sha256MatchesTheStandardVectors() {
        #expect(SHA256.hash(Array("abc".utf8)).hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hash(Array("".utf8)).hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        let long = Array(String(repeating: "a", count: 1000).utf8)
        #expect(SHA256.hash(long).hex == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }
}
