import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// A request's context, with the address of the peer that sent it (for the log of refused hooks).
public struct DaemonRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The connection's peer, and the X-Forwarded-For a proxy or load balancer added.
    let peer: String
    /// The peer is on this machine's loopback (127.0.0.0/8, ::1, or either mapped into IPv6).
    let peerIsLoopback: Bool

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        let address = source.channel.remoteAddress
        peer = address.map { address in
            address.ipAddress.map { "\($0):\(address.port ?? 0)" } ?? "\(address)"
        } ?? "unknown"
        peerIsLoopback = address?.ipAddress.map(Self.isLoopback) ?? false
    }

    static func isLoopback(_ ip: String) -> Bool {
        var text = ip.lowercased()
        if text.hasPrefix("::ffff:") { text.removeFirst("::ffff:".count) }
        if text == "::1" { return true }
        let parts = text.split(separator: ".")
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }
}

/// The header a replica adds when it forwards a hook to the shard that owns the repository;
/// the owner does not forward it again (replicas whose configurations disagree cannot loop).
let forwardedHeader = HTTPField.Name("X-Gitmirror-Forwarded-From")!

/// What one hook asks for, once its sender is verified.
struct HookRequest: Sendable {
    /// `github`, `gitlab`, `gitea` or `api`: the run's trigger.
    var source: String
    /// The event the sender named (`push`, `ping`, …), for the log.
    var event: String
    var names: [String]
    /// What the request named, for the log when nothing matches.
    var named: String
    var request: Request
    var body: [UInt8]
}

func makeRouter(state: DaemonState, scheduler: Scheduler, metrics: DaemonMetrics, store: StateStore, ui: UISettings,
                reload: @escaping @Sendable () async -> Result<Config, any Error>, logger: Logger) -> Router<DaemonRequestContext> {
    let router = Router(context: DaemonRequestContext.self)
    StatusPage(state: state, store: store, scheduler: scheduler, settings: ui).register(on: router)
    router.get("healthz") { _, _ in "ok\n" }
    router.get("readyz") { _, _ -> Response in
        let ready = await scheduler.isReady
        return textResponse(ready ? .ok : .serviceUnavailable, ready ? "ready\n" : "starting: the first scheduling pass is not done\n")
    }
    router.get("metrics") { _, _ -> Response in
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: metrics.render())))
    }

    let hooks = HookDispatcher(state: state, scheduler: scheduler, reload: reload, logger: logger)
    for hook in ForgeHook.all {
        router.post(RouterPath("hooks/\(hook.source)")) { request, context in await hooks.receive(hook, request, context) }
    }
    router.post("hooks/sync/:repository") { request, context in await hooks.sync(request, context) }
    router.post("reload") { request, context in await hooks.reloadNow(request, context) }
    return router
}

/// How each forge's hook says what it is and proves who sent it.
struct ForgeHook: Sendable {
    /// The path's last part and the run's trigger: github, gitlab, gitea.
    var source: String
    var forge: String
    /// The setting that configures its secret.
    var setting: String
    /// What a refusal calls the proof: signature or token.
    var proof: String
    var secret: @Sendable (DaemonState.HookSecrets) -> String?
    var event: @Sendable (HTTPFields) -> String?
    /// The delivery's id, as the forge names each delivery (and a redelivery of it).
    var delivery: @Sendable (HTTPFields) -> String?
    /// True when the proof is a header alone (GitLab's token), checked before the body is read.
    var headerOnly = false
    var verify: @Sendable (HTTPFields, [UInt8], String) -> Bool

    static func header(_ name: String) -> HTTPField.Name { HTTPField.Name(name)! }

    static let all: [ForgeHook] = [
        ForgeHook(source: "github", forge: "GitHub", setting: "github_secret_env", proof: "signature", secret: \.github,
                  event: { $0[header("X-GitHub-Event")] }, delivery: { $0[header("X-GitHub-Delivery")] },
                  verify: { headers, body, secret in Webhooks.verifyHMAC(body: body, signature: headers[header("X-Hub-Signature-256")], secret: secret) }),
        ForgeHook(source: "gitlab", forge: "GitLab", setting: "gitlab_token_env", proof: "token", secret: \.gitlab,
                  event: { $0[header("X-Gitlab-Event")] }, delivery: { $0[header("X-Gitlab-Event-UUID")] }, headerOnly: true,
                  verify: { headers, _, secret in Webhooks.verifyToken(headers[header("X-Gitlab-Token")], secret: secret) }),
        ForgeHook(source: "gitea", forge: "Gitea", setting: "gitea_secret_env", proof: "signature", secret: \.gitea,
                  event: { $0[header("X-Gitea-Event")] ?? $0[header("X-Forgejo-Event")] },
                  delivery: { $0[header("X-Gitea-Delivery")] ?? $0[header("X-Forgejo-Delivery")] },
                  verify: { headers, body, secret in
                      Webhooks.verifyHMAC(body: body, signature: headers[header("X-Gitea-Signature")] ?? headers[header("X-Forgejo-Signature")], secret: secret)
                  }),
    ]
}

/// Runs CPU-bound work (an HMAC over 25 MB, a JSON parse) on a thread of its own, so that the
/// cooperative pool — two threads on two cores — stays free to answer `/healthz` and `/readyz`.
func offThePool<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        BlockingThreads.shared.run { continuation.resume(returning: work()) }
    }
}

func textResponse(_ status: HTTPResponse.Status, _ body: String) -> Response {
    var headers = HTTPFields()
    headers[.contentType] = "text/plain; charset=utf-8"
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
}

/// Passes a hook on to the replica that owns its repository: the same path, query, body and
/// headers (so the owner checks the forge's signature itself), marked as forwarded.
struct PeerForwarder: Sendable {
    var timeout: TimeInterval = 10
    static let hopByHop: Set<String> = ["host", "content-length", "connection", "transfer-encoding", "keep-alive", "expect", "te", "upgrade"]

    func forward(_ request: Request, body: [UInt8], to peer: URL, from shard: Shard) async -> Result<Int, SyncFailure> {
        var headers: [String: String] = [:]
        for field in request.headers where !Self.hopByHop.contains(field.name.canonicalName) {
            headers[field.name.rawName] = field.value
        }
        headers[forwardedHeader.rawName] = "shard \(shard)"
        var address = peer.absoluteString + request.uri.path
        if let query = request.uri.query { address += "?" + query }
        guard let url = URL(string: address) else { return .failure(SyncFailure(.config, "cannot forward to \(address)")) }
        let client = HTTPClient(timeout: timeout)
        let fields = headers
        return await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                do throws(SyncFailure) {
                    continuation.resume(returning: .success(try client.send("POST", url, headers: fields, body: Data(body)).status))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
    }
}
