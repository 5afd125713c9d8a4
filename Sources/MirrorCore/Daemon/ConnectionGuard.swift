import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes
import Synchronization

/// The soft limit on open descriptors raised to the hard one (systemd's default soft limit is 1024,
/// its hard one far higher); returns the limit now in force.
public func raiseDescriptorLimit() -> Int {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
    if limit.rlim_cur < limit.rlim_max {
        var raised = limit
        raised.rlim_cur = limit.rlim_max
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
    }
    return limit.rlim_cur > rlim_t(Int32.max) ? Int(Int32.max) : Int(limit.rlim_cur)
}

/// Open connections per peer address, shared by every connection's guard.
final class PeerConnections: Sendable {
    private let counts = Mutex<[String: Int]>([:])
    private let refusedCount = Mutex<Int>(0)

    /// Counts a new connection from `peer`, or says no when it already holds `limit`.
    func open(_ peer: String, limit: Int) -> Bool {
        let admitted = counts.withLock { counts -> Bool in
            let open = counts[peer, default: 0]
            guard open < limit else { return false }
            counts[peer] = open + 1
            return true
        }
        if !admitted { refusedCount.withLock { $0 += 1 } }
        return admitted
    }

    func close(_ peer: String) {
        counts.withLock { counts in
            let open = counts[peer, default: 1] - 1
            counts[peer] = open > 0 ? open : nil
        }
    }

    var open: Int { counts.withLock { $0.values.reduce(0, +) } }
    var refused: Int { refusedCount.withLock { $0 } }
}

/// Sits after the HTTP decoder of every connection: admits it under its peer's cap, and closes it when
/// a request's headers or body, or the wait for the next request, take longer than their deadline —
/// a deadline, not an idle timer, so a client that sends one byte a second is closed all the same.
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private enum Phase { case awaitingHead, readingBody, responding }

    private let limits: HTTPLimits
    private let peers: PeerConnections
    private let logger: Logger
    private var phase = Phase.awaitingHead
    private var deadline: Scheduled<Void>?
    private var peer: String?

    init(limits: HTTPLimits, peers: PeerConnections, logger: Logger) {
        self.limits = limits
        self.peers = peers
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let address = context.channel.remoteAddress?.ipAddress ?? "unknown"
        guard peers.open(address, limit: limits.maxConnectionsPerPeer) else {
            // Logged at most once per hundred, so that a flood does not become a flood of log lines.
            if peers.refused % 100 == 1 {
                logger.warning("connection refused: the peer already holds daemon.http.max_connections_per_peer connections",
                               metadata: ["peer": "\(Printable.escaped(address))", "limit": "\(limits.maxConnectionsPerPeer)",
                                          "refused_so_far": "\(peers.refused)"])
            }
            context.close(promise: nil)
            return
        }
        peer = address
        arm(context, after: limits.headerTimeout)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        if let peer { peers.close(peer) }
        peer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            phase = .readingBody
            arm(context, after: limits.bodyTimeout)
        case .body:
            break
        case .end:
            // The response may take as long as the work behind it (a reload, a forwarded hook).
            phase = .responding
            deadline?.cancel()
            deadline = nil
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data), phase == .responding {
            phase = .awaitingHead
            arm(context, after: limits.idleTimeout)
        }
        context.write(data, promise: promise)
    }

    private func arm(_ context: ChannelHandlerContext, after seconds: TimeInterval) {
        deadline?.cancel()
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        deadline = context.eventLoop.scheduleTask(in: .milliseconds(Int64(seconds * 1000))) {
            bound.value.close(promise: nil)
        }
    }
}

/// The HTTP/1 server with the guard on every connection, and the total cap on accepted connections.
func guardedServer(limits: HTTPLimits, peers: PeerConnections, logger: Logger) -> HTTPServerBuilder {
    .http1(configuration: .init(additionalChannelHandlers: [ConnectionGuard(limits: limits, peers: peers, logger: logger)]))
}
