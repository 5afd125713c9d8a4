import Foundation
import Git

/// Credentials go only to the configured scheme, host and port (README, "never leaks a secret").
///
/// git is told so directly (`http.followRedirects=false`, and its credential helper answers one origin).
/// libgit2 1.5 is not: it follows a redirect to another port or scheme of the same host on its own, and
/// its credential callback is only ever told the configured URL. So before a username and password are
/// given to libgit2, the configured origin is asked the same question libgit2 asked (`GET
/// …/info/refs?service=…`, with the credential — it may have it — and no redirect followed). When it
/// sends requests to another origin, the credential is withheld and the sync fails as `config`.
enum OriginGuard {
    /// `.allow` when the origin answers for itself (or redirects within itself, which git also follows for this GET).
    static func release(url: String, service: String, username: String, password: String,
                        caBundle: String?, timeout: TimeInterval = 30) -> CredentialRelease {
        guard let origin = Origin(url: url), origin.scheme == "http" || origin.scheme == "https",
              let probe = smartHTTP(url, "/info/refs", query: "service=\(service)") else { return .allow }
        let basic = Data("\(username):\(password)".utf8).base64EncodedString()
        let response: HTTPClient.Response
        do {
            response = try HTTPClient(timeout: timeout, caBundle: caBundle)
                .send("GET", probe, headers: ["Authorization": "Basic \(basic)", "User-Agent": "gitmirror"])
        } catch {
            return .unconfirmed("gitmirror could not confirm that \(origin.description) answers for itself before sending it credentials (\(error.message)); no credential was sent")
        }
        if response.status == 401 || response.status == 403 {
            // The same credential, the same request: libgit2 would be refused too.
            return .refused("the server refused the configured credentials (HTTP \(response.status))")
        }
        guard (300..<400).contains(response.status) else { return .allow }
        guard let location = response.headers["location"], let target = URL(string: location, relativeTo: probe)?.absoluteURL else {
            return .redirected("the server at \(origin.description) answered \(response.status) without saying where to; no credential was sent")
        }
        guard let elsewhere = Origin(url: target.absoluteString), elsewhere == origin else {
            return .redirected("the server redirected to \(display(target)), another scheme, host or port than the configured \(origin.description); gitmirror gives credentials only to the configured origin and follows no redirect away from it, so none was sent. Put the final URL in mirrors.yaml")
        }
        return .allow
    }

    /// Where git's smart HTTP protocol asks `configured` (an http(s) URL) for `suffix` (`/info/refs`,
    /// `/git-receive-pack`): without the URL's userinfo, which is never sent, nor a query of its own.
    static func smartHTTP(_ configured: String, _ suffix: String, query: String? = nil) -> URL? {
        guard var components = URLComponents(string: configured) else { return nil }
        components.user = nil
        components.password = nil
        components.fragment = nil
        components.query = query
        while components.path.hasSuffix("/") { components.path.removeLast() }
        components.path += suffix
        return components.url
    }

    /// The redirect's target as it may be printed: no userinfo, no query.
    static func display(_ url: URL) -> String {
        guard var components = URLComponents(url: url, resolvingAgainstBaseURL: true) else { return "another origin" }
        components.user = nil
        components.password = nil
        components.query = nil
        components.fragment = nil
        return components.string ?? "another origin"
    }
}
