import Foundation
import Hummingbird
import HTTPTypes
import Logging

/// What the daemon does with a hook: checks its proof, runs a delivery once, queues the repositories
/// this replica owns and forwards the others to their owners; and the sync and reload API. Every
/// refusal is logged with what the hook named and who sent it.
struct HookDispatcher: Sendable {
    let state: DaemonState
    let scheduler: Scheduler
    let reload: @Sendable () async -> Result<Config, any Error>
    let logger: Logger
    let forwarder = PeerForwarder()
    let deliveries = DeliveryLedger()

    /// Logs a hook that is answered with an error, with what it named and who sent it.
    func refuse(_ status: HTTPResponse.Status, _ message: String, source: String, event: String, named: String,
                          context: DaemonRequestContext) -> Response {
        logger.warning("hook refused: \(message.trimmingCharacters(in: .whitespacesAndNewlines))",
                       metadata: ["status": "\(status.code)", "hook": "\(source)", "event": "\(event)",
                                  "repository": "\(named.isEmpty ? "-" : named)", "peer": "\(context.peer)"])
        return textResponse(status, message)
    }

    /// Queues what this replica owns, forwards the rest to the owners, and answers 202 when all of it
    /// is queued somewhere.
    func dispatch(_ hook: HookRequest, context: DaemonRequestContext) async -> Response {
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
    func payloadHook(_ source: String, event: String, request: Request, body: [UInt8]) async -> HookRequest {
        let (urls, label) = await offThePool { (Webhooks.repositoryURLs(in: body), Webhooks.repositoryLabel(in: body) ?? "") }
        if let query = request.uri.query,
           let requested = query.split(separator: "&").first(where: { $0.hasPrefix("repository=") })?.dropFirst("repository=".count) {
            let name = String(requested).removingPercentEncoding ?? String(requested)
            return HookRequest(source: source, event: event, names: [name], named: name, request: request, body: body)
        }
        return HookRequest(source: source, event: event, names: await state.repositories(matching: urls),
                           named: label, request: request, body: body)
    }

    /// A forge's hook: its secret, its proof, its delivery id, then the repositories it names.
    func receive(_ hook: ForgeHook, _ request: Request, _ context: DaemonRequestContext) async -> Response {
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

    /// `POST /hooks/sync/NAME` with the sync token: the repository runs now.
    func sync(_ request: Request, _ context: DaemonRequestContext) async -> Response {
        let name = context.parameters.get("repository") ?? ""
        guard let secret = await state.hookSecrets.sync else {
            return refuse(.notFound, "the sync API is not configured (daemon.hooks.sync_token_env)\n", source: "api", event: "sync", named: name, context: context)
        }
        guard Webhooks.verifyToken(request.headers[.authorization], secret: secret) else {
            return refuse(.unauthorized, "bad token\n", source: "api", event: "sync", named: name, context: context)
        }
        return await dispatch(HookRequest(source: "api", event: "sync", names: [name], named: name, request: request, body: []), context: context)
    }

    /// `POST /reload` with the sync token: the configuration is read again.
    func reloadNow(_ request: Request, _ context: DaemonRequestContext) async -> Response {
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
}
