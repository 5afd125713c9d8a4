import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// A request's context, with the address of the peer that sent it (for the log of refused hooks).
public struct DaemonRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The connection's peer, and the X-Forwarded-For a proxy or load balancer added.
    let peer: String

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        peer = source.channel.remoteAddress.map { address in
            address.ipAddress.map { "\($0):\(address.port ?? 0)" } ?? "\(address)"
        } ?? "unknown"
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

func makeRouter(state: DaemonState, scheduler: Scheduler, metrics: DaemonMetrics, store: StateStore,
                reload: @escaping @Sendable () async -> Result<Config, any Error>, logger: Logger) -> Router<DaemonRequestContext> {
    let router = Router(context: DaemonRequestContext.self)
    let forwarder = PeerForwarder()
    let deliveries = DeliveryLedger()
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

    /// Logs a hook that is answered with an error, with what it named and who sent it.
    @Sendable func refuse(_ status: HTTPResponse.Status, _ message: String, source: String, event: String, named: String,
                          context: DaemonRequestContext) -> Response {
        logger.warning("hook refused: \(message.trimmingCharacters(in: .whitespacesAndNewlines))",
                       metadata: ["status": "\(status.code)", "hook": "\(source)", "event": "\(event)",
                                  "repository": "\(named.isEmpty ? "-" : named)", "peer": "\(context.peer)"])
        return textResponse(status, message)
    }

    /// Queues what this replica owns, forwards the rest to the owners, and answers 202 when all of it
    /// is queued somewhere.
    @Sendable func dispatch(_ hook: HookRequest, context: DaemonRequestContext) async -> Response {
        let shard = state.shard
        let forwardedBy = hook.request.headers[forwardedHeader]
        var queued: [String] = [], unknown: [String] = []
        var elsewhere: [Int: [String]] = [:]
        for name in hook.names {
            guard let owner = await state.owner(of: name) else { unknown.append(name); continue }
            if owner == shard.index {
                if await scheduler.trigger(name, by: hook.source) { queued.append(name) } else { unknown.append(name) }
            } else {
                elsewhere[owner, default: []].append(name)
            }
        }
        var lines = queued.isEmpty ? [] : ["sync queued: \(queued.joined(separator: ", "))"]
        var failed: [String] = [], unrouted: [String] = []
        let peers = await state.peers
        for (owner, names) in elsewhere.sorted(by: { $0.key < $1.key }) {
            let list = names.joined(separator: ", ")
            if let forwardedBy {
                // The sender thought this replica owns them; the payload's other repositories are its business.
                if queued.isEmpty {
                    unrouted.append("\(list) belongs to shard \(owner)/\(shard.count), not to this replica (\(shard)), but \(forwardedBy) forwarded it here: the replicas' --shard or daemon.peers disagree")
                }
                continue
            }
            guard owner < peers.count else {
                unrouted.append("\(list) belongs to shard \(owner)/\(shard.count), not to this replica (\(shard)); set daemon.peers so that replicas forward hooks to the owner")
                continue
            }
            let peer = peers[owner]
            switch await forwarder.forward(hook.request, body: hook.body, to: peer, from: shard) {
            case .success(let status) where (200..<300).contains(status):
                lines.append("forwarded to shard \(owner) (\(peer.absoluteString)): \(list)")
                logger.info("hook forwarded to the owning shard",
                            metadata: ["repositories": "\(list)", "shard": "\(owner)", "peer": "\(peer.absoluteString)", "hook": "\(hook.source)"])
            case .success(let status):
                failed.append("shard \(owner) (\(peer.absoluteString)) answered \(status) for \(list)")
            case .failure(let failure):
                failed.append("shard \(owner) could not be reached for \(list): \(failure.message)")
            }
        }
        if !failed.isEmpty {
            // Not 202: the forge shows the delivery as failed and it can be redelivered.
            return refuse(.badGateway, (lines + failed).joined(separator: "\n") + "\n", source: hook.source, event: hook.event,
                          named: hook.names.joined(separator: ","), context: context)
        }
        if !lines.isEmpty {
            if !queued.isEmpty {
                logger.info("sync triggered by \(hook.source == "api" ? "the sync API" : "webhook")",
                            metadata: ["repositories": "\(queued.joined(separator: ","))", "hook": "\(hook.source)", "peer": "\(context.peer)"])
            }
            return textResponse(.accepted, lines.joined(separator: "\n") + "\n")
        }
        let message: String
        if !unrouted.isEmpty {
            message = unrouted.joined(separator: "\n")
        } else if hook.source == "api" {
            message = "no repository named '\(hook.named)'"
        } else {
            message = "no configured repository matches this event (\(hook.named.isEmpty ? "it names no repository URL" : hook.named))"
        }
        return refuse(.notFound, message + "\n", source: hook.source, event: hook.event, named: hook.named, context: context)
    }

    /// The repositories a forge's payload names (or `?repository=NAME`); the JSON is parsed off the pool.
    @Sendable func payloadHook(_ source: String, event: String, request: Request, body: [UInt8]) async -> HookRequest {
        let (urls, label) = await offThePool { (Webhooks.repositoryURLs(in: body), Webhooks.repositoryLabel(in: body) ?? "") }
        if let query = request.uri.query,
           let requested = query.split(separator: "&").first(where: { $0.hasPrefix("repository=") })?.dropFirst("repository=".count) {
            let name = String(requested).removingPercentEncoding ?? String(requested)
            return HookRequest(source: source, event: event, names: [name], named: name, request: request, body: body)
        }
        return HookRequest(source: source, event: event, names: await state.repositories(matching: urls),
                           named: label, request: request, body: body)
    }

    for hook in ForgeHook.all {
        router.post(RouterPath("hooks/\(hook.source)")) { request, context -> Response in
            let event = hook.event(request.headers) ?? "-"
            // The secret is looked up before a body of up to 25 MB is read.
            guard let secret = hook.secret(await state.hookSecrets) else {
                return refuse(.notFound, "\(hook.forge) hooks are not configured (daemon.hooks.\(hook.setting))\n", source: hook.source,
                              event: event, named: "", context: context)
            }
            // A proof in a header (GitLab's token) is checked before the body is read at all.
            if hook.headerOnly, !hook.verify(request.headers, [], secret) {
                return refuse(.unauthorized, "bad \(hook.proof)\n", source: hook.source, event: event, named: "", context: context)
            }
            var request = request
            let body: [UInt8]
            do {
                body = Array(buffer: try await request.collectBody(upTo: Webhooks.maxBodySize))
            } catch {
                return refuse(.contentTooLarge, "a hook's body may hold at most \(Webhooks.maxBodySize >> 20) MB\n", source: hook.source, event: event,
                              named: "", context: context)
            }
            // The signature is checked on the raw bytes, off the threads that answer health checks; a body
            // that fails it is never parsed (not even to name its repository in the log).
            let headers = request.headers
            guard await offThePool({ hook.verify(headers, body, secret) }) else {
                return refuse(.unauthorized, "bad \(hook.proof)\n", source: hook.source, event: event, named: "", context: context)
            }
            let deliveryKeys = Webhooks.deliveryKeys(source: hook.source, id: hook.delivery(headers), body: body)
            if let first = deliveries.seen(deliveryKeys) {
                logger.info("hook already received; not run again", metadata: ["hook": "\(hook.source)", "event": "\(event)",
                                                                               "delivery": "\(first)", "peer": "\(context.peer)"])
                return textResponse(.ok, "already received (delivery \(first)); a delivery is run once\n")
            }
            if event == "ping" { return textResponse(.ok, "pong\n") }
            let parsed = await payloadHook(hook.source, event: event, request: request, body: body)
            let response = await dispatch(parsed, context: context)
            if response.status == .accepted { deliveries.remember(deliveryKeys) }
            return response
        }
    }
    router.post("hooks/sync/:repository") { request, context -> Response in
        let name = context.parameters.get("repository") ?? ""
        guard let secret = await state.hookSecrets.sync else {
            return refuse(.notFound, "the sync API is not configured (daemon.hooks.sync_token_env)\n", source: "api", event: "sync", named: name, context: context)
        }
        guard Webhooks.verifyToken(request.headers[.authorization], secret: secret) else {
            return refuse(.unauthorized, "bad token\n", source: "api", event: "sync", named: name, context: context)
        }
        return await dispatch(HookRequest(source: "api", event: "sync", names: [name], named: name, request: request, body: []), context: context)
    }
    router.post("reload") { request, context -> Response in
        guard let secret = await state.hookSecrets.sync else {
            return refuse(.notFound, "reload over HTTP needs daemon.hooks.sync_token_env\n", source: "api", event: "reload", named: "", context: context)
        }
        guard Webhooks.verifyToken(request.headers[.authorization], secret: secret) else {
            return refuse(.unauthorized, "bad token\n", source: "api", event: "reload", named: "", context: context)
        }
        switch await reload() {
        case .success(let config): return textResponse(.ok, "reloaded: \(config.repositories.count) repositories\n")
        case .failure(let error): return textResponse(.unprocessableContent, "the new configuration was refused; the previous one keeps running:\n\(error)\n")
        }
    }
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
