import Foundation

/// Where credentials may go: the configured URL's scheme, host and port.
struct Origin: Equatable {
    var scheme: String
    var host: String
    var port: Int

    /// The host as the URL spells it, percent-decoded: `URLComponents.host` would also turn an
    /// IDNA host (`xn--…`) into Unicode, through ICU (~1.5 MiB of every worker that relays a
    /// credential), and git's question names the host as the URL spells it.
    init?(url: String) {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
              let host = components.encodedHost?.removingPercentEncoding?.lowercased() else { return nil }
        self.scheme = scheme
        self.host = host
        self.port = components.port ?? (scheme == "https" ? 443 : 80)
    }

    /// git's question: `protocol=https` and `host=example.com[:port]`.
    init?(question: [String: String]) {
        guard let scheme = question["protocol"]?.lowercased(), var host = question["host"]?.lowercased() else { return nil }
        var port = scheme == "https" ? 443 : 80
        if let colon = host.lastIndex(of: ":"), !host.hasSuffix("]"), let number = Int(host[host.index(after: colon)...]) {
            port = number
            host = String(host[..<colon])
        }
        self.scheme = scheme
        self.host = host
        self.port = port
    }

    var description: String { "\(scheme)://\(host):\(port)" }
}
