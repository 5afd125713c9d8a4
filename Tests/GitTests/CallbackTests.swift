import CLibgit2
import Foundation
@testable import Git
import Testing

/// The C side of the wrapper, called as libgit2 calls it: the callbacks with a payload lent for the call,
/// and the error path every call goes through.
@Suite(.onTestThreads) struct CallbackTests {
    /// Calls the credential callback of `hooks` as libgit2 does, with the kinds of credential the server takes.
    func askCredential(_ hooks: TransferHooks, allowed: git_credential_t = GIT_CREDENTIAL_USERPASS_PLAINTEXT) -> (Int32, Bool) {
        // libgit2's error slot and credential types need it set up, as every operation has it.
        Libgit2.initialize()
        let payload = Unmanaged.passUnretained(hooks).toOpaque()
        let callbacks = makeCallbacks(payload)
        var out: UnsafeMutablePointer<git_credential>?
        let result = callbacks.credentials(&out, "https://git.example.com/app.git", nil, allowed.rawValue, payload)
        let made = out != nil
        if let out { git_credential_free(out) }
        return (result, made)
    }

    @Test func theCredentialIsGivenOnceAndASecondRequestIsARefusal() {
        // Given hooks with a password
        let hooks = TransferHooks()
        hooks.credential = .userPassword(username: "mirror", password: "canary-callback-secret")

        // When libgit2 asks twice (as it does after the server refused the first answer)
        let (first, made) = askCredential(hooks)
        let (second, madeAgain) = askCredential(hooks)

        // Then the first request gets the credential, the second none: the refusal is recorded, and the
        // error libgit2 reads says so without the secret
        #expect(first == 0 && made)
        #expect(second == GIT_EUSER.rawValue && !madeAgain)
        #expect(hooks.failure == .credentialsRefused("the server refused the configured credentials"))
        let message = git_error_last().flatMap { $0.pointee.message.map { String(cString: $0) } } ?? ""
        #expect(message.contains("refused") && !message.contains("canary-callback-secret"))
        git_error_clear()
    }

    @Test func aPasswordIsNotOfferedWhereTheServerTakesOnlyKeys() {
        // Given hooks with a password, and a server that takes SSH keys only
        let hooks = TransferHooks()
        hooks.credential = .userPassword(username: "mirror", password: "secret")

        // When libgit2 asks
        let (result, made) = askCredential(hooks, allowed: GIT_CREDENTIAL_SSH_KEY)

        // Then nothing is given, and the failure says what to configure
        #expect(result == GIT_EUSER.rawValue && !made)
        #expect(hooks.failure == .noCredentials("the server does not accept a username and password; configure an SSH key"))
        git_error_clear()
    }

    @Test func aCredentialTheOriginGuardHoldsBackIsNeverGiven() {
        // Given hooks whose origin check says the server redirected elsewhere
        let hooks = TransferHooks()
        hooks.credential = .userPassword(username: "mirror", password: "secret")
        hooks.credentialRelease = { _, _ in .redirected("redirected to https://elsewhere.example") }

        // When libgit2 asks
        let (result, made) = askCredential(hooks)

        // Then no credential is made, and the failure is the redirect
        #expect(result == GIT_EUSER.rawValue && !made)
        #expect(hooks.failure == .redirected("redirected to https://elsewhere.example"))
        git_error_clear()
    }

    @Test func eachRefsVerdictIsRecordedAsTheServerGaveIt() {
        // Given hooks and the push_update_reference callback
        let hooks = TransferHooks()
        let payload = Unmanaged.passUnretained(hooks).toOpaque()
        let callbacks = makeCallbacks(payload)

        // When the server accepts one ref and refuses another
        #expect(callbacks.push_update_reference("refs/heads/main", nil, payload) == 0)
        #expect(callbacks.push_update_reference("refs/tags/v1", "hook declined", payload) == 0)

        // Then both verdicts are kept per ref
        #expect(hooks.pushStatuses["refs/heads/main"] == .some(nil))
        #expect(hooks.pushStatuses["refs/tags/v1"] == .some("hook declined"))
    }

    @Test func aFailureReadsLibgit2sErrorOnceAndClearsIt() throws {
        // Given a libgit2 call that fails with a message of its own
        Libgit2.initialize()
        #expect(throws: GitError.self) { try Repository.openBare(at: "/nonexistent/gitmirror-\(UUID().uuidString)") }

        // When a later call fails without setting a message
        let later = #expect(throws: GitError.self) { try check("git_example", -1) }

        // Then it does not carry the earlier failure's message: the slot was cleared when that one was read
        #expect(later?.message == "unknown error" && later?.function == "git_example")
        #expect(git_error_last() == nil || git_error_last()?.pointee.message == nil)
    }

    @Test func aSettingLibgit2RefusesIsAnErrorNamingIt() {
        // Given libgit2 set up
        Libgit2.initialize()
        #expect(Libgit2.setupFailure == nil)

        // When a trust store that does not exist is set
        let error = #expect(throws: GitError.self) { try Libgit2.setCertificateFile("/nonexistent/gitmirror-ca.pem") }

        // Then the failure names the option
        #expect(error?.function == "git_libgit2_opts(SET_SSL_CERT_LOCATIONS)", "\(String(describing: error))")
    }
}
