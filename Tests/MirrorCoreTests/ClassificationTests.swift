import Foundation
import Testing
import TestSupport
@testable import MirrorCore

/// The one classifier, as tables of what transports and servers really say.
@Suite(.onTestThreads) struct ClassificationTests {
    struct Case: Sendable, CustomStringConvertible {
        var message: String
        var server = ""
        var refused = false, ssh = false, certificate = false, network = false, nonFastForward = false, objects = false
        var cache: String? = "/var/lib/gitmirror/cache/app.git"
        var expected: Classification.Cause?
        var description: String { message }

        var evidence: Classification.Evidence {
            var evidence = Classification.Evidence(message: message, serverSaid: server)
            evidence.credentialRefused = refused
            evidence.ssh = ssh
            evidence.certificate = certificate
            evidence.network = network
            evidence.nonFastForward = nonFastForward
            evidence.objectDatabase = objects
            evidence.cachePath = cache
            return evidence
        }
    }

    static let transfers: [Case] = [
        // libgit2's own words
        Case(message: "unexpected http status code: 401", expected: .credentialRefused),
        Case(message: "too many redirects or authentication replays", refused: true, expected: .credentialRefused),
        Case(message: "Failed to authenticate SSH session: Unable to extract public key from private key file", ssh: true, expected: .sshKeyLocked),
        Case(message: "cannot redirect from 'https://a/x' to 'https://b/x'", expected: .redirected),
        Case(message: "unexpected http status code: 404", expected: .notFound),
        Case(message: "the SSL certificate is invalid", certificate: true, expected: .tls),
        Case(message: "failed to connect to 127.0.0.1: Connection refused", network: true, expected: .network),
        Case(message: "early EOF", expected: .network),
        Case(message: "cannot push non-fastforwardable reference", nonFastForward: true, expected: .nonFastForward),
        Case(message: "failed to write: No space left on device", expected: .diskFull),
        Case(message: "failed to make directory '/var/lib/gitmirror/cache/app.git/objects/ab': Permission denied", expected: .cacheUnwritable),
        // a damaged cache says "object not found": that is the cache, not the server (and only when a cache was read)
        Case(message: "object not found - no match for id (8f3a…)", expected: .cacheDamaged),
        Case(message: "object not found - no match for id (8f3a…)", cache: nil, expected: .notFound),
        Case(message: "failed to read object", objects: true, expected: .cacheDamaged),
        // what the server printed decides the size refusal
        Case(message: "unexpected http status code: 500", server: "error: pack exceeds maximum allowed size", expected: .tooLarge),
        Case(message: "unexpected http status code: 413", expected: .tooLarge),
        // git's stderr
        Case(message: "fatal: could not read Username for 'https://h': terminal prompts disabled", expected: .credentialRefused),
        Case(message: "git@h: Permission denied (publickey).", expected: .credentialRefused),
        Case(message: "Host key verification failed. | fatal: Could not read from remote repository.", expected: .hostKeyUntrusted),
        Case(message: "fatal: remote error: access denied or repository not exported: /x.git", expected: .notFound),
        Case(message: "fatal: remote error: no such repository: /x.git", expected: .notFound),
        Case(message: "fatal: remote error: service not enabled: /x.git", expected: .readOnly),
        Case(message: "error: RPC failed; HTTP 413 curl 22 The requested URL returned error: 413", expected: .tooLarge),
        Case(message: "fatal: unable to access 'https://h/x/': SSL certificate problem: unable to get local issuer certificate", expected: .tls),
        Case(message: "fatal: the remote end hung up unexpectedly", expected: .network),
        Case(message: "fatal: unable to access 'https://h/x/': The requested URL returned error: 301", expected: .redirected),
        // gitolite (Debian's gitolite3): its access check speaks before git does, then git says "Could not read"
        Case(message: "FATAL: R any nosuch mirror DENIED by fallthru | (or you mis-spelled the reponame)", network: true, expected: .deniedRead),
        Case(message: "FATAL: W any backup-ro mirror DENIED by fallthru | (or you mis-spelled the reponame) | fatal: Could not read from remote repository.",
             expected: .deniedWrite),
        // OpenSSH and libssh2 failing on this machine, before the server is asked anything
        Case(message: "No user exists for uid 61234 | fatal: Could not read from remote repository.", expected: .noLocalUser),
        Case(message: "Load key \"/etc/gitmirror/id_ed25519\": Permission denied | git@h: Permission denied (publickey).", expected: .keyUnreadable),
        Case(message: "Failed to authenticate SSH session: Unable to open private key file", ssh: true, expected: .keyUnreadable),
        Case(message: "username does not match previous request", ssh: true, expected: .usernameConflict),
        Case(message: "error: something nobody has seen", expected: nil),
    ]

    /// gitolite's per-ref refusals, as its update hook words them.
    @Test func gitolitesPerRefRefusalsAreClassedByTheRight() {
        #expect(Classification.rejection("FATAL: + refs/heads/main backup mirror DENIED by fallthru").errorClass == .protected)
        #expect(Classification.rejection("FATAL: D refs/heads/old backup mirror DENIED by fallthru").errorClass == .protected)
        let denied = Classification.rejection("FATAL: W refs/heads/private/x guarded mirror DENIED by refs/heads/private/")
        #expect(denied.errorClass == .rejected && denied.advice?.contains("refs:") == true)
    }

    @Test(arguments: transfers)
    func transferFailuresGetTheirCause(_ example: Case) {
        #expect(Classification.transfer(example.evidence) == example.expected)
    }

    @Test func everyCauseHasAClassAndLocalFaultsAreOnlyLocal() {
        #expect(Classification.Cause.allCases.count == Classification.transferRules.count)
        var evidence = Classification.Evidence(message: "unexpected http status code: 401")
        evidence.cachePath = "/c"
        #expect(Classification.localFault(evidence) == nil)
        evidence.message = "No space left on device"
        #expect(Classification.localFault(evidence) == .diskFull)
    }

    @Test func awsErrorTypesAndRetryPolicy() {
        #expect(Classification.awsAPI(errorType: "AccessDeniedException") == .auth)
        #expect(Classification.awsAPI(errorType: "RepositoryLimitExceededException") == .tooLarge)
        #expect(Classification.awsAPI(errorType: "ThrottlingException") == .rateLimited)
        #expect(Classification.awsAPI(errorType: "EncryptionKeyAccessDeniedException") == nil)
        #expect([401, 403, 404, 413, 429, 502, 422].map(Classification.forgeAPI(status:)) == [.auth, .auth, .notFound, .tooLarge, .rateLimited, .network, .internal])
        let slow = ErrorClass.allCases.filter { !$0.healsWithRetry }
        #expect(Set(slow) == [.auth, .hostKey, .config, .notFound, .readOnly])
        #expect(ErrorClass.allCases.filter { Classification.refusesPushesOnly($0) } == [.auth, .notFound, .readOnly])
    }
}

/// A push's server lines, sorted to the refs they speak of.
@Suite struct ServerLinesTests {
    @Test func aRefGetsItsOwnLinesAndTheGeneralOnesNeverAnotherRefs() {
        let pushed = ["refs/heads/a", "refs/heads/a/b", "refs/heads/ab", "refs/heads/main"]
        let lines = ["FATAL: W refs/heads/a guarded mirror DENIED", "error: hook declined to update refs/heads/a/b",
                     "GH006: Protected branch update failed for refs/heads/ab.", "*** pushes are audited ***", "updated refs/heads/main"]
        #expect(ServerLines.about("refs/heads/a", pushed: pushed, in: lines) == [lines[0], lines[3]])
        #expect(ServerLines.about("refs/heads/a/b", pushed: pushed, in: lines) == [lines[1], lines[3]])
        #expect(ServerLines.about("refs/heads/ab", pushed: pushed, in: lines) == [lines[2], lines[3]])
        #expect(ServerLines.about("refs/heads/a", pushed: pushed, in: Array(repeating: "general", count: 9)).count == 5)
    }
}
