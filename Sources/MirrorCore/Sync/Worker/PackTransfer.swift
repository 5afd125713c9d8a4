import Foundation
import Git

/// How pack bytes travel to one secondary, below planning and the safety rules (DESIGN.md,
/// "Transfer"): ref updates, each with its lease, go in; the server's verdict per ref comes out.
/// Planning, backups, verification and what is recorded never depend on which one ran.
protocol PackTransfer {
    func send(_ updates: [WireUpdate], from cache: String) throws -> TransferResult
}

struct TransferResult {
    var outcomes: [PushOutcome] = []
    var serverMessages: [String] = []
    var bytes = 0
}

/// Which transfer a push uses. git's reuses the deltas the cache stores and is the default;
/// libgit2's computes every delta again, and remains for what git cannot carry (an SSH key
/// locked with a passphrase) and for those who ask for it.
public enum TransferKind: String, Codable, Sendable {
    case git
    case libgit2
}

/// libgit2's push: the lease is checked against the server's advertisement before anything is
/// sent, and once more in the negotiation callback, against what libgit2 is about to send.
struct Libgit2Transfer: PackTransfer {
    let endpoint: Endpoint
    let hooks: TransferHooks

    func send(_ updates: [WireUpdate], from cache: String) throws -> TransferResult {
        let repository = try Repository.openBare(at: cache)
        let remote = try Remote(url: endpoint.url, in: repository, hooks: hooks)
        try remote.connect(.push)
        defer { remote.disconnect() }
        let current = Dictionary(try remote.advertisedHeads().map { ($0.name, $0.id) }, uniquingKeysWith: { a, _ in a })
        var result = TransferResult()
        var sending: [WireUpdate] = []
        for update in updates {
            if current[update.ref] != update.expectedOld {
                let now = current[update.ref].map { "now \($0.short)" } ?? "now absent"
                result.outcomes.append(.moved(update.ref, now: now))
            } else {
                sending.append(update)
            }
        }
        guard !sending.isEmpty else { return result }
        let leases = Dictionary(sending.map { ($0.ref, $0.expectedOld ?? .zero) }, uniquingKeysWith: { a, _ in a })
        hooks.pushNegotiation = { updates in
            for update in updates where leases[update.destinationRef] != nil && leases[update.destinationRef] != update.remoteOld {
                return "\(update.destinationRef) moved on the server since it was planned; nothing was pushed"
            }
            return nil
        }
        let refspecs = sending.map { update -> String in
            guard update.new != nil else { return ":\(update.ref)" }
            return (update.force ? "+" : "") + "\(update.source ?? update.ref):\(update.ref)"
        }
        try remote.upload(refspecs: refspecs)
        for update in sending {
            switch hooks.pushStatuses[update.ref] {
            case .some(.none):
                result.outcomes.append(PushOutcome(ref: update.ref, accepted: true))
            case .some(.some(let reason)):
                result.outcomes.append(PushOutcome(ref: update.ref, accepted: false, message: reason))
            case .none:
                // No report-status for this ref: the final listing decides.
                result.outcomes.append(PushOutcome(ref: update.ref, accepted: true, message: "no status reported by the server"))
            }
        }
        result.bytes = hooks.pushedBytes
        result.serverMessages = hooks.serverMessages
        return result
    }
}
