import Foundation
import MirrorCore

/// A certificate authority the tests make, and server certificates it signs.
public struct CertificateAuthority: Sendable {
    public let certificate: URL
    let key: URL

    public init(sandbox: Sandbox, name: String = "ca") throws {
        let directory = try sandbox.directory(name)
        key = directory.appendingPathComponent("ca.key")
        certificate = directory.appendingPathComponent("ca.pem")
        try Shell.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key.path, "-out", certificate.path,
                       "-days", "2", "-subj", "/CN=gitmirror test CA \(name)"])
    }

    /// A certificate for 127.0.0.1 (as an IP and, for mbedTLS, as a DNS name) and localhost.
    public func issue(in directory: URL) throws -> (certificate: URL, key: URL) {
        let serverKey = directory.appendingPathComponent("server.key")
        let request = directory.appendingPathComponent("server.csr")
        let serverCertificate = directory.appendingPathComponent("server.pem")
        let extensions = directory.appendingPathComponent("san.ext")
        try "subjectAltName=IP:127.0.0.1,DNS:127.0.0.1,DNS:localhost\n".write(to: extensions, atomically: true, encoding: .utf8)
        try Shell.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", serverKey.path, "-out", request.path, "-subj", "/CN=127.0.0.1"])
        try Shell.run(["openssl", "x509", "-req", "-in", request.path, "-CA", certificate.path, "-CAkey", key.path, "-CAcreateserial",
                       "-out", serverCertificate.path, "-days", "2", "-extfile", extensions.path])
        return (serverCertificate, serverKey)
    }
}

/// nginx + fcgiwrap running `git http-backend` over HTTPS (or plain HTTP) with basic auth;
/// or, with `redirect`, a front that answers every request with a 302 to that origin. With `lfs`,
/// giftless (a real Git LFS server) answers `<repo>.git/info/lfs/…` behind the same nginx: its batch
/// API behind the same basic auth, its object storage behind the tokens it hands out itself.
public final class HTTPSServer: Server, @unchecked Sendable {
    public let root: URL
    public let port: Int
    public let tls: Bool
    public let accessLog: URL
    public let authority: CertificateAuthority
    private let nginx: ChildProcess
    private let fcgiwrap: ChildProcess
    private var giftless: ChildProcess?
    /// Where giftless keeps the objects: `<org>/<repo>/<oid>`.
    /// With `anonymousRead`, git needs no credential at all (a public forge's clones).
    public private(set) var lfsStorage: URL?

    /// A `credentials:` entry `name` (flow style, one line): user `username` with the password in
    /// `passwordFile`, trusting this server's certificate authority.
    public func credential(_ name: String, username: String = "mirror", passwordFile: URL) -> String {
        "\(name): {username: \(username), password_file: \(passwordFile.path), ca_file: \(authority.certificate.path)}"
    }

    public init(sandbox: Sandbox, root: URL, user: String, password: String, authority: CertificateAuthority? = nil,
                tls: Bool = true, redirect: String? = nil, lfs: Bool = false, anonymousRead: Bool = false) throws {
        self.root = root
        self.tls = tls
        let unique = UUID().uuidString.prefix(8).lowercased()
        let directory = try sandbox.directory("nginx-\(unique)")
        self.authority = try authority ?? CertificateAuthority(sandbox: sandbox, name: "ca-\(unique)")
        let issued = try self.authority.issue(in: directory)
        let hash = try Shell.run(["openssl", "passwd", "-apr1", "-stdin"], input: password).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try "\(user):\(hash)\n".write(to: directory.appendingPathComponent("htpasswd"), atomically: true, encoding: .utf8)
        let socket = directory.appendingPathComponent("fcgiwrap.sock")
        let fcgiLog = directory.appendingPathComponent("fcgiwrap.log")
        fcgiwrap = try Shell.start(["/usr/sbin/fcgiwrap", "-c", "4", "-s", "unix:\(socket.path)"], log: fcgiLog)
        accessLog = directory.appendingPathComponent("access.log")
        let errorLog = directory.appendingPathComponent("error.log")
        for temp in ["body", "fastcgi", "proxy", "uwsgi", "scgi"] { try FileManager.default.createDirectory(at: directory.appendingPathComponent(temp), withIntermediateDirectories: true) }
        var lfsLocations = ""
        if lfs {
            let storage = try sandbox.directory("nginx-\(unique)/lfs-storage")
            lfsStorage = storage
            let settings = directory.appendingPathComponent("giftless.yaml")
            try """
                LEGACY_ENDPOINTS: false
                AUTH_PROVIDERS:
                  - giftless.auth.allow_anon:read_write
                TRANSFER_ADAPTERS:
                  basic:
                    factory: giftless.transfer.basic_streaming:factory
                    options:
                      storage_class: giftless.storage.local_storage:LocalStorage
                      storage_options:
                        path: \(storage.path)
                PRE_AUTHORIZED_ACTION_PROVIDER:
                  factory: giftless.auth.jwt:factory
                  options:
                    algorithm: HS256
                    private_key: \(UUID().uuidString)\(UUID().uuidString)
                    default_lifetime: 600
                MIDDLEWARE:
                  - class: werkzeug.middleware.proxy_fix:ProxyFix
                    kwargs: {x_host: 1, x_port: 1, x_proto: 1}
                """.write(to: settings, atomically: true, encoding: .utf8)
            var environment = ProcessInfo.processInfo.environment
            environment["GIFTLESS_CONFIG_FILE"] = settings.path
            let giftlessLog = directory.appendingPathComponent("giftless.log")
            let lfsPort: Int
            (lfsPort, giftless, _) = try Network.serve(seconds: 30) { lfsPort in
                (try Shell.start(["/usr/bin/env", "python3", "-c",
                                  "from giftless.app import init_app; init_app().run(host='127.0.0.1', port=\(lfsPort), threaded=True)"],
                                 log: giftlessLog, environment: environment), giftlessLog)
            }
            let proxy = """
                proxy_pass http://127.0.0.1:\(lfsPort);
                proxy_set_header X-Forwarded-Host $http_host;
                proxy_set_header X-Forwarded-Proto \(tls ? "https" : "http");
                proxy_request_buffering off;
                """
            lfsLocations = """
                location ~ /info/lfs/objects/batch$ {
                    auth_basic "git";
                    auth_basic_user_file \(directory.path)/htpasswd;
                    \(proxy)
                }
                location ~ /info/lfs/objects/storage/ {
                    \(proxy)
                }
                """
        }
        let config = directory.appendingPathComponent("nginx.conf")
        (port, nginx, _) = try Network.serve { [accessLog, root, lfsLocations] port in
            try """
                daemon off;
                user root;
                worker_processes 1;
                pid \(directory.path)/nginx.pid;
                error_log \(errorLog.path) info;
                events { worker_connections 128; }
                http {
                    access_log \(accessLog.path);
                    client_body_temp_path \(directory.path)/body;
                    fastcgi_temp_path \(directory.path)/fastcgi;
                    proxy_temp_path \(directory.path)/proxy;
                    uwsgi_temp_path \(directory.path)/uwsgi;
                    scgi_temp_path \(directory.path)/scgi;
                    server {
                        listen 127.0.0.1:\(port)\(tls ? " ssl" : "");
                        \(tls ? "ssl_certificate \(issued.certificate.path);" : "")
                        \(tls ? "ssl_certificate_key \(issued.key.path);" : "")
                        client_max_body_size 0;
                        \(lfsLocations)
                        \(redirect.map { "location / { return 302 \($0)$request_uri; }" } ?? "")
                        location \(redirect == nil ? "/" : "/never-served/") {
                            auth_basic \(anonymousRead ? "off" : "\"git\"");
                            auth_basic_user_file \(directory.path)/htpasswd;
                            fastcgi_pass unix:\(socket.path);
                            fastcgi_buffering off;
                            fastcgi_request_buffering off;
                            fastcgi_param SCRIPT_FILENAME /usr/lib/git-core/git-http-backend;
                            fastcgi_param GIT_PROJECT_ROOT \(root.path);
                            fastcgi_param GIT_HTTP_EXPORT_ALL "";
                            fastcgi_param PATH_INFO $uri;
                            fastcgi_param REMOTE_USER $remote_user;
                            fastcgi_param QUERY_STRING $query_string;
                            fastcgi_param REQUEST_METHOD $request_method;
                            fastcgi_param CONTENT_TYPE $content_type;
                            fastcgi_param CONTENT_LENGTH $content_length;
                            fastcgi_param HTTP_CONTENT_ENCODING $http_content_encoding;
                            fastcgi_param GIT_CONFIG_NOSYSTEM 1;
                            fastcgi_param HOME \(directory.path);
                        }
                    }
                }
                """.write(to: config, atomically: true, encoding: .utf8)
            return (try Shell.start(["/usr/sbin/nginx", "-p", directory.path, "-c", config.path], log: directory.appendingPathComponent("nginx.out")), errorLog)
        }
        sandbox.keep(self)
    }

    public func url(_ name: String) -> String { "\(tls ? "https" : "http")://127.0.0.1:\(port)/\(name)" }

    /// Lines of the access log with this status code.
    public func requests(status: Int) -> Int {
        let text = (try? String(contentsOf: accessLog, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").filter { $0.contains("\" \(status) ") }.count
    }

    public var accessLogText: String { (try? String(contentsOf: accessLog, encoding: .utf8)) ?? "" }

    public func stop() {
        terminate(nginx)
        terminate(fcgiwrap)
        if let giftless { terminate(giftless) }
    }
}
