import CCrypt
import Foundation
import HTTPTypes
import Hummingbird
import Synchronization

/// Who may open the status page and its JSON (`daemon.ui`): loopback clients only unless `access: any`;
/// with a users file (`htpasswd -B`) or a token file, every request signs in, loopback ones too. The
/// sync button and its POST need a signed-in user and a CSRF token bound to that user.
final class PageAccess: Sendable {
    enum Decision: Sendable {
        /// `user`: a person signed in from the users file, who may press the sync button; nil for an
        /// anonymous loopback client (no users or token file configured) or a script with the token (read-only).
        case allowed(user: String?)
        case refused(Response)
    }

    let settings: UISettings
    /// Signs CSRF tokens and the cache of checked passwords; new at each start.
    private let key: [UInt8]
    /// Passwords already checked (crypt is slow by design): user → HMAC of the password, until when.
    private let checked = Mutex<[String: (digest: [UInt8], until: Date)]>([:])

    init(settings: UISettings) {
        self.settings = settings
        var generator = SystemRandomNumberGenerator()
        key = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    var isOff: Bool { settings.access == .off }

    func decide(_ request: Request, loopback: Bool) async -> Decision {
        if settings.access == .off { return .refused(textResponse(.notFound, "the status page is off (daemon.ui.access: off)\n")) }
        // A proxy on this machine forwards other machines' requests: they are not loopback clients.
        let forwarded = ["X-Forwarded-For", "Forwarded", "X-Real-IP"].contains { request.headers[HTTPField.Name($0)!] != nil }
        if settings.access == .loopback, !loopback || forwarded {
            return .refused(textResponse(.forbidden, "the status page answers clients on this machine only (daemon.ui.access: loopback)\n"))
        }
        guard settings.signsIn else { return .allowed(user: nil) }
        let authorization = request.headers[.authorization] ?? ""
        if authorization.lowercased().hasPrefix("bearer "), let token = Self.firstLine(settings.tokenFile),
           Webhooks.verifyToken(authorization, secret: token) {
            return .allowed(user: nil)
        }
        if authorization.lowercased().hasPrefix("basic "), let (user, password) = Self.basic(authorization),
           await verify(user: user, password: password) {
            return .allowed(user: user)
        }
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; charset=utf-8"
        headers[.wwwAuthenticate] = "Basic realm=\"gitmirror\", charset=\"UTF-8\""
        return .refused(Response(status: .unauthorized, headers: headers, body: .init(byteBuffer: ByteBuffer(string: "sign in to see the status page\n"))))
    }

    /// The CSRF token of the sync button's form, bound to the signed-in user.
    func csrfToken(for user: String) -> String {
        SHA256.hmac(key: key, message: Array("csrf\u{0}\(user)".utf8)).hex
    }

    func checkCSRF(_ given: String?, user: String) -> Bool {
        guard let given else { return false }
        return constantTimeEqual(SHA256.hash(Array(given.utf8)), SHA256.hash(Array(csrfToken(for: user).utf8)))
    }

    /// `Authorization: Basic base64(user:password)`.
    static func basic(_ header: String) -> (String, String)? {
        guard let data = Data(base64Encoded: String(header.dropFirst("basic ".count)).trimmingCharacters(in: .whitespaces)),
              let text = String(data: data, encoding: .utf8), let colon = text.firstIndex(of: ":") else { return nil }
        return (String(text[..<colon]), String(text[text.index(after: colon)...]))
    }

    static func firstLine(_ file: URL?) -> String? {
        guard let file, let text = try? String(contentsOf: file, encoding: .utf8) else { return nil }
        let line = text.split(separator: "\n").first.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        return line.isEmpty ? nil : line
    }

    /// The users file is read at each check, so a user added or removed counts at once; a password
    /// checked in the last five minutes is not hashed again (bcrypt takes tens of milliseconds on purpose).
    private func verify(user: String, password: String) async -> Bool {
        guard let file = settings.usersFile, let text = try? String(contentsOf: file, encoding: .utf8) else { return false }
        let hash = text.split(separator: "\n").lazy.compactMap { line -> String? in
            let fields = line.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            guard fields.count == 2, fields[0] == Substring(user) else { return nil }
            return fields[1].trimmingCharacters(in: .whitespacesAndNewlines)
        }.first
        guard let hash, !hash.isEmpty else { return false }
        let digest = SHA256.hmac(key: key, message: Array("\(hash)\u{0}\(password)".utf8))
        let now = Date()
        if let known = checked.withLock({ $0[user] }), known.until > now, constantTimeEqual(known.digest, digest) { return true }
        let matches = await offThePool { Self.cryptMatches(password: password, hash: hash) }
        if matches { checked.withLock { $0[user] = (digest, now.addingTimeInterval(300)) } }
        return matches
    }

    /// crypt(3) of the password with the stored hash as its setting equals the stored hash.
    static func cryptMatches(password: String, hash: String) -> Bool {
        var data = crypt_data()
        guard let result = crypt_rn(password, hash, &data, Int32(MemoryLayout<crypt_data>.size)) else { return false }
        let computed = Array(String(cString: result).utf8)
        // crypt returns "*0"-like failure tokens for a setting it does not know: never a match.
        guard computed.count > 2 else { return false }
        return constantTimeEqual(computed, Array(hash.utf8))
    }
}
