import Foundation
import Git

/// One pack for many secondaries (first seed). When the cache is empty, the primary's pack holds every
/// object of every ref, deltas and all; an empty secondary can take exactly those bytes. So while the
/// worker's fetch writes the pack into the cache, the same bytes stream to the `receive-pack` of every
/// empty secondary that git://, SSH (OpenSSH) or a local path reaches: nothing is packed again, and
/// the secondaries index while the cache does.
///
/// It only ever creates refs (each command's old value is zero: receive-pack refuses it if the ref
/// exists), only on a secondary that advertised no ref at all, and only refs the plan would create
/// there. Whatever it achieves, the secondary's usual work follows (list → plan → push → verify):
/// a secondary that fell behind, refused a ref or was dropped is then pushed as usual, and the
/// final listing is what counts.
public struct SeedTarget: Codable, Sendable {
    /// The secondary's name in mirrors.yaml.
    public var name: String
    /// Its URL, credential and known_hosts, as for a push.
    public var access: Endpoint
    /// How this client reaches its receive-pack itself.
    public var transport: Transport
    public var user: String?
    public var host: String?
    public var port: Int?
    public var path: String
    /// The refs the plan would create on it when it is empty.
    public var refs: [String]
}

extension SeedTarget {
    /// The transports a seed speaks: `git://`, SSH through OpenSSH, a local path, and git's smart
    /// HTTP(S) (one POST streamed as the pack arrives, SeedWeb).
    public enum Transport: String, Codable, Sendable {
        case git, ssh, file, http
    }
}

public struct SeedOutcome: Codable, Sendable, Equatable {
    public var name: String
    /// The refs the secondary accepted (`ok` in its report), with the value sent.
    public var created: [String: ObjectID] = [:]
    /// Why the secondary was not seeded, or not wholly: it is pushed as usual afterwards.
    public var note: String?
    /// From the start of the fetch to the secondary's verdict.
    public var seconds: Double?
    /// The secondary refused the configured credential (HTTP 401 or 403 to the same request a push
    /// makes first): the push would be refused too, so it is not asked again with it this run.
    public var refusal: SyncFailure?

    public init(name: String, created: [String: ObjectID] = [:], note: String? = nil, seconds: Double? = nil, refusal: SyncFailure? = nil) {
        (self.name, self.created, self.note, self.seconds, self.refusal) = (name, created, note, seconds, refusal)
    }

    private enum CodingKeys: String, CodingKey { case name, created, createdRefs, note, seconds, refusal }

    /// `created` travels as one string (CompactRefs): a first seed's 20,000 refs as a JSON object took
    /// the supervisor a tenth of a second to decode.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        if let text = CompactRefs.text(created.lazy.map { ($0.key, $0.value) }) {
            try container.encode(text, forKey: .createdRefs)
        } else {
            try container.encode(created, forKey: .created)
        }
        try container.encodeIfPresent(note, forKey: .note)
        try container.encodeIfPresent(seconds, forKey: .seconds)
        try container.encodeIfPresent(refusal, forKey: .refusal)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        if let text = try container.decodeIfPresent(String.self, forKey: .createdRefs) {
            var created: [String: ObjectID] = [:]
            try CompactRefs.read(text, forKey: .createdRefs, in: container) { created[$0] = $1 }
            self.created = created
        } else {
            created = try container.decodeIfPresent([String: ObjectID].self, forKey: .created) ?? [:]
        }
        note = try container.decodeIfPresent(String.self, forKey: .note)
        seconds = try container.decodeIfPresent(Double.self, forKey: .seconds)
        refusal = try container.decodeIfPresent(SyncFailure.self, forKey: .refusal)
    }
}

/// The seeding side of one fetch: opens the sessions, decides what each may create from the fetch's
/// own advertisement, feeds them the pack, and collects their outcomes.
final class PackSeeder {
    let targets: [SeedTarget]
    let stall: TimeInterval
    let progress: @Sendable (String, String) -> Void
    private var sessions: [SeedSession] = []
    private var outcomes: [String: SeedOutcome] = [:]
    private let started = Date()

    init(targets: [SeedTarget], stall: TimeInterval, progress: @escaping @Sendable (String, String) -> Void) {
        self.targets = targets
        self.stall = stall
        self.progress = progress
    }

    /// Opens every target in parallel; keeps those that advertise no ref.
    func open() {
        let opened = concurrently(targets.count) { [targets, stall] index -> Result<SeedSession, SyncFailure>? in
            do {
                return .success(try SeedSession.open(targets[index], timeout: min(stall, 30)))
            } catch {
                return .failure(error as? SyncFailure ?? SyncFailure(.internal, "\(error)"))
            }
        }
        for (index, result) in opened.enumerated() {
            let name = targets[index].name
            switch result {
            case .success(let session)? where session.advertised.isEmpty:
                if session.capabilities.contains("report-status") && session.capabilities.contains("ofs-delta") {
                    session.report { [progress] line in progress(name, line) }
                    sessions.append(session)
                } else {
                    session.drop("it does not take the primary's pack as it is (no report-status or ofs-delta)")
                    outcomes[name] = SeedOutcome(name: name, note: "its receive-pack lacks report-status or ofs-delta")
                }
            case .success(let session)?:
                session.drop("not empty")
                outcomes[name] = SeedOutcome(name: name, note: "it is not empty (\(session.advertised.count) refs)")
            case .failure(let failure)?:
                outcomes[name] = SeedOutcome(name: name, note: failure.message, refusal: failure.errorClass == .auth ? failure : nil)
            case nil:
                outcomes[name] = SeedOutcome(name: name, note: "not opened")
            }
        }
    }

    var isEmpty: Bool { sessions.isEmpty }

    /// Sends each session its commands: the refs it may create, at the values this fetch advertises.
    func begin(_ heads: [RemoteHead]) {
        let advertised = Dictionary(heads.map { ($0.name, $0.id) }, uniquingKeysWith: { a, _ in a })
        sessions = sessions.filter { session in
            // In git's order (the plan's already: checked in one pass, not sorted again).
            let creations = RefName.ordered(session.target.refs).compactMap { ref in advertised[ref].map { (ref: ref, id: $0) } }
            if session.begin(creations) {
                progress(session.target.name, "receiving the primary's pack as it arrives (\(creations.count) refs)")
                return true
            }
            session.drop("nothing to create")
            outcomes[session.target.name] = SeedOutcome(name: session.target.name, note: "none of its refs is in the fetch")
            return false
        }
    }

    func feed(_ bytes: UnsafeRawBufferPointer) {
        guard !sessions.isEmpty else { return }
        let data = Data(bytes)
        for session in sessions { session.feed(data) }
    }

    /// The fetch failed: every session is cut off before its pack is complete, so no ref is created.
    func abandon(_ reason: String) {
        for session in sessions {
            session.drop(reason)
            outcomes[session.target.name] = SeedOutcome(name: session.target.name, note: reason)
        }
        sessions = []
    }

    /// The fetch succeeded: waits for every verdict (in parallel); past `deadline`, the rest are dropped.
    func finish(deadline: Date? = nil) -> [SeedOutcome] {
        let sessions = self.sessions
        let finished = concurrently(sessions.count, deadline: deadline, atDeadline: {
            for session in sessions { session.drop("it was still busy when the time for the primary's fetch ran out") }
        }) { [stall, started] index in
            var outcome = sessions[index].finish(stall: stall)
            outcome.seconds = Date().timeIntervalSince(started)
            return outcome
        }
        for outcome in finished { outcomes[outcome.name] = outcome }
        return targets.compactMap { outcomes[$0.name] }
    }
}
