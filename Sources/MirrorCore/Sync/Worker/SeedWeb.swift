import Foundation

/// A seed over HTTP(S), git's smart protocol: the secondary's advertisement is the answer to
/// `GET …/info/refs?service=git-receive-pack`, the commands and the pack are the body of one
/// `POST …/git-receive-pack` streamed while the pack arrives (HTTPStream), the report is its answer.
///
/// The credential goes to the configured URL's origin only, as for a push: no redirect is followed
/// (a secondary that redirects is not seeded, and its push says why), the URL's own userinfo is never
/// sent, and a CodeCommit password is signed for each request, when it is made.
struct SeedWeb: Sendable {
    /// `…/git-receive-pack`, without userinfo.
    let post: URL
    let client: HTTPClient
    let credential: WireCredential?

    /// The request's headers: the credential (signed now, for CodeCommit), and what git's smart HTTP sends.
    func headers(posting: Bool) -> [String: String] {
        // GitHub and others answer git's smart protocol only to a git user agent.
        var headers = ["User-Agent": "git/gitmirror", "Pragma": "no-cache"]
        if posting {
            headers["Content-Type"] = "application/x-git-receive-pack-request"
            headers["Accept"] = "application/x-git-receive-pack-result"
        }
        if let login = credential?.login() { headers["Authorization"] = "Basic " + Data("\(login.username):\(login.password)".utf8).base64EncodedString() }
        return headers
    }

    /// Asks for the secondary's refs; the advertisement's pkt-lines after git's `# service=` preamble.
    static func open(_ target: SeedTarget, timeout: TimeInterval) throws -> (SeedWeb, Data) {
        let url = target.access.url
        guard ["http", "https"].contains(GitTransfer.scheme(of: url)),
              let post = OriginGuard.smartHTTP(url, "/git-receive-pack"),
              let refs = OriginGuard.smartHTTP(url, "/info/refs", query: "service=git-receive-pack") else {
            throw SyncFailure(.config, "not an HTTP(S) address")
        }
        let client = HTTPClient(timeout: timeout, caBundle: target.access.caFile, maxBodySize: 4 << 20)
        let web = SeedWeb(post: post, client: client, credential: target.access.credential)
        let answer = try client.send("GET", refs, headers: web.headers(posting: false))
        switch answer.status {
        case 200: break
        case 401 where target.access.credential == nil:
            throw SyncFailure(.auth, "the server asks for authentication but no credentials are configured for it")
        case 401, 403:
            throw SyncFailure(.auth, "the server refused the configured credentials (HTTP \(answer.status)) when asked for its refs (check the token, password or key and its permissions); they were not sent to it again this run")
        default:
            throw SyncFailure(.rejected, refusal(answer, to: "the request for its refs"))
        }
        guard answer.headers["content-type"]?.lowercased() == "application/x-git-receive-pack-advertisement" else {
            throw SyncFailure(.rejected, "it does not speak git's smart HTTP protocol (it answered \(answer.headers["content-type"].map { "a \($0.prefix(60))" } ?? "without a content type"))")
        }
        var body = answer.body
        guard let preamble = SeedSession.takePacket(&body), let line = preamble,
              String(decoding: line, as: UTF8.self).trimmingCharacters(in: .newlines) == "# service=git-receive-pack",
              let flush = SeedSession.takePacket(&body), flush == nil else {
            throw SyncFailure(.rejected, "its answer for its refs does not begin as git's smart HTTP protocol does")
        }
        return (web, body)
    }

    /// Why an answer other than 200 ends the seed (the secondary is then pushed as usual, which reports its own refusal).
    static func refusal(_ answer: HTTPClient.Response, to request: String) -> String {
        switch answer.status {
        case 401, 403: return "it refused the configured credentials to \(request) (HTTP \(answer.status))"
        case 300..<400: return "it answered \(request) with a redirect (HTTP \(answer.status)), which a seed never follows"
        default:
            let said = answer.text.split(whereSeparator: \.isNewline).first.map { String($0.prefix(160)) } ?? ""
            return "it answered \(request) with HTTP \(answer.status)" + (said.isEmpty ? "" : " (\(said))")
        }
    }
}
