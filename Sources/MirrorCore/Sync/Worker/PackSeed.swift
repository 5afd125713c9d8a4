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
    public var scheme: String
    public var user: String?
    public var host: String?
    public var port: Int?
    public var path: String
    /// The refs the plan would create on it when it is empty.
    public var refs: [String]
}

public struct SeedOutcome: Codable, Sendable, Equatable {
    public var name: String
    /// The refs the secondary accepted (`ok` in its report), with the value sent.
    public var created: [String: ObjectID] = [:]
    /// Why the secondary was not seeded, or not wholly: it is pushed as usual afterwards.
    public var note: String?
    /// From the start of the fetch to the secondary's verdict.
    public var seconds: Double?
}

/// One `receive-pack` session fed with the primary's pack as it arrives.
final class SeedSession: @unchecked Sendable {
    let target: SeedTarget
    private let output: Int32
    private let input: Int32
    private let isSocket: Bool
    private let child: ChildProcess?
    private let keyDescriptor: Int32
    private(set) var advertised: [String] = []
    private(set) var capabilities: Set<String> = []

    private let condition = NSCondition()
    private var chunks: [Data] = []
    private var queued = 0
    private var closed = false
    private var dropped: String?
    private var commands: [String: ObjectID] = [:]
    private var reportLines: [String] = []
    private var errors: [String] = []
    private var lastHeard = Date()
    private var readerDone = false
    private var writerDone = false
    private var sideBand = false
    /// A pipe's end is closed (not shut down) to end the pack; guarded by `condition`.
    private var outputOpen = true
    var progress: (String) -> Void = { _ in }

    /// A secondary that cannot keep up is dropped rather than allowed to slow the fetch or fill memory.
    static let maximumQueued = 32 << 20

    private init(target: SeedTarget, output: Int32, input: Int32, isSocket: Bool, child: ChildProcess?, keyDescriptor: Int32) {
        self.target = target
        self.output = output
        self.input = input
        self.isSocket = isSocket
        self.child = child
        self.keyDescriptor = keyDescriptor
    }

    deinit {
        if outputOpen { close(output) }
        if input != output { close(input) }
        if keyDescriptor >= 0 { close(keyDescriptor) }
    }

    /// Whether this secondary can be seeded at all: a transport this client speaks itself (SSH through
    /// OpenSSH, so not with a key locked by a passphrase, as for git's push).
    static func reaches(_ scheme: String, access: Endpoint) -> Bool {
        ["git", "file", "ssh"].contains(scheme) && GitTransfer.handles(access)
    }

    /// Connects, starts receive-pack and reads what it advertises, within `timeout`.
    static func open(_ target: SeedTarget, timeout: TimeInterval) throws -> SeedSession {
        let session: SeedSession
        switch target.scheme {
        case "git":
            guard let host = target.host else { throw SyncFailure(.config, "no host") }
            let port = target.port ?? 9418
            let descriptor: Int32
            switch Socket.open(host: host, port: port, timeout: timeout) {
            case .success(let opened): descriptor = opened.0
            case .failure(let failure): throw failure
            }
            session = SeedSession(target: target, output: descriptor, input: descriptor, isSocket: true, child: nil, keyDescriptor: -1)
            let hostField = target.port.map { "\(host):\($0)" } ?? host
            session.enqueue(pktLine("git-receive-pack \(target.path)\0host=\(hostField)\0"))
        case "ssh":
            guard let host = target.host else { throw SyncFailure(.config, "no host") }
            var key: Int32 = -1
            if let privateKey = target.access.credential?.sshKey?.privateKey {
                key = try GitTransfer.memoryFile(named: "gitmirror-ssh-key", contents: privateKey)
            }
            let knownHosts = target.access.knownHostsFile ?? (NSHomeDirectory() as NSString).appendingPathComponent(".ssh/known_hosts")
            let user = target.user ?? target.access.credential?.sshKey?.username
            let ssh = GitTransfer.sshCommand(keyPath: key >= 0 ? "/proc/\(getpid())/fd/\(key)" : nil, knownHosts: knownHosts, user: user)
            var arguments = ["/bin/sh", "-c", "exec \(ssh) \"$@\"", "ssh"]
            if let port = target.port { arguments += ["-p", String(port)] }
            arguments += [host, "git-receive-pack \(GitTransfer.quoted(target.path))"]
            session = try spawn(target, arguments, keyDescriptor: key)
        case "file":
            session = try spawn(target, ["git", "receive-pack", target.path], keyDescriptor: -1)
        default:
            throw SyncFailure(.config, "\(target.scheme) secondaries are pushed after the fetch")
        }
        session.startWriter()
        do {
            try session.readAdvertisement(timeout: timeout)
        } catch {
            // Ends the writer thread, which holds the session: otherwise the connection to a server that
            // never answered stayed open (and the thread waiting) for the rest of the pooled worker's life.
            session.drop("it did not advertise its refs")
            throw error
        }
        return session
    }

    private static func spawn(_ target: SeedTarget, _ command: [String], keyDescriptor: Int32) throws -> SeedSession {
        try ChildProcess.withSpawnLock {
            let stdin = try ChildProcess.makePipe(), stdout = try ChildProcess.makePipe()
            let null = Glibc.open("/dev/null", O_WRONLY | O_CLOEXEC)
            defer {
                close(stdin.read)
                close(stdout.write)
                close(null)
            }
            do {
                let child = try ChildProcess(command, environment: GitTransfer.environment(), stdin: stdin.read, stdout: stdout.write, stderr: null)
                return SeedSession(target: target, output: stdin.write, input: stdout.read, isSocket: false, child: child, keyDescriptor: keyDescriptor)
            } catch {
                close(stdin.write)
                close(stdout.read)
                throw error
            }
        }
    }

    // MARK: the protocol

    static func pktLine(_ text: String) -> Data {
        let payload = Data(text.utf8)
        return Data(String(format: "%04x", payload.count + 4).utf8) + payload
    }

    /// The advertisement: `<id> <ref>\0<capabilities>` (an empty repository advertises
    /// `capabilities^{}`), then a flush.
    private func readAdvertisement(timeout: TimeInterval) throws {
        var buffer = Data()
        var first = true
        while true {
            guard let packet = try readPacket(&buffer, timeout: timeout) else { break }
            var line = String(decoding: packet, as: UTF8.self)
            if line.hasSuffix("\n") { line.removeLast() }
            if first {
                first = false
                if let nul = line.firstIndex(of: "\0") {
                    capabilities = Set(line[line.index(after: nul)...].split(separator: " ").map(String.init))
                    line = String(line[..<nul])
                }
            }
            if line.hasPrefix("ERR ") { throw SyncFailure(.rejected, String(line.dropFirst(4))) }
            let fields = line.split(separator: " ", maxSplits: 1)
            if fields.count == 2, fields[1] != "capabilities^{}" { advertised.append(String(fields[1])) }
        }
        guard buffer.isEmpty else { throw SyncFailure(.internal, "receive-pack sent more than its advertisement") }
    }

    /// One pkt-line's payload, or nil for a flush.
    private func readPacket(_ buffer: inout Data, timeout: TimeInterval) throws -> Data? {
        while true {
            if let packet = Self.takePacket(&buffer) { return packet }
            if buffer.count >= 4, Int(String(decoding: buffer.prefix(4), as: UTF8.self), radix: 16).map({ $0 != 0 && $0 < 4 }) != false {
                throw SyncFailure(.internal, "not a git server (\(String(decoding: buffer.prefix(4), as: UTF8.self).debugDescription))")
            }
            var poller = pollfd(fd: input, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(timeout * 1000))
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { throw SyncFailure(.timeout, "no answer within \(formatDuration(timeout))") }
            var bytes = [UInt8](repeating: 0, count: 65536)
            let count = read(input, &bytes, bytes.count)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw SyncFailure(.network, "the server hung up before it advertised its refs") }
            buffer.append(contentsOf: bytes[0..<count])
        }
    }

    /// Queues the update commands (every old value zero: create only) ahead of the pack. Returns false
    /// when none is left to send, and the session should be closed instead.
    func begin(_ creations: [(ref: String, id: ObjectID)]) -> Bool {
        guard !creations.isEmpty else { return false }
        sideBand = capabilities.contains("side-band-64k")
        var wanted = ["report-status"]
        if sideBand { wanted.append("side-band-64k") }
        wanted.append("agent=gitmirror")
        var data = Data()
        for (index, creation) in creations.enumerated() {
            let command = "\(ObjectID.zero.hex) \(creation.id.hex) \(creation.ref)"
            data += Self.pktLine(index == 0 ? command + "\0" + wanted.joined(separator: " ") : command)
        }
        data += Data("0000".utf8)
        condition.withLock { commands = Dictionary(creations.map { ($0.ref, $0.id) }, uniquingKeysWith: { a, _ in a }) }
        enqueue(data)
        startReader()
        return true
    }

    /// Hands pack bytes over; never blocks. A secondary this far behind is dropped.
    func feed(_ data: Data) {
        condition.lock()
        defer { condition.unlock() }
        guard dropped == nil, !closed else { return }
        if queued + data.count > Self.maximumQueued {
            dropLocked("it received the pack more slowly than the primary sent it (over \(Self.maximumQueued >> 20) MiB behind)")
            return
        }
        chunks.append(data)
        queued += data.count
        condition.signal()
    }

    private func enqueue(_ data: Data) {
        condition.withLock {
            chunks.append(data)
            queued += data.count
            condition.signal()
        }
    }

    /// Stops feeding this secondary: receive-pack then sees a truncated pack and updates no ref.
    func drop(_ reason: String) { condition.withLock { dropLocked(reason) } }

    private func dropLocked(_ reason: String) {
        guard dropped == nil else { return }
        dropped = reason
        chunks = []
        queued = 0
        closed = true
        if isSocket { Glibc.shutdown(output, Int32(SHUT_RDWR)) }
        // A pipe's ends wake up when receive-pack (or ssh) is gone.
        child?.signal(SIGKILL)
        condition.broadcast()
    }

    private func startWriter() {
        Thread.detachNewThread { [self] in
            while true {
                condition.lock()
                while chunks.isEmpty && !closed { condition.wait() }
                if chunks.isEmpty {
                    condition.unlock()
                    break
                }
                let chunk = chunks.removeFirst()
                queued -= chunk.count
                condition.unlock()
                guard Self.write(output, chunk) else {
                    drop("it hung up while receiving the pack (\(String(cString: strerror(errno))))")
                    break
                }
                condition.withLock { lastHeard = Date() }
            }
            // The end of the pack: the socket's sending half shuts, or the pipe closes.
            condition.withLock {
                if isSocket {
                    Glibc.shutdown(output, Int32(SHUT_WR))
                } else if outputOpen {
                    close(output)
                    outputOpen = false
                }
                writerDone = true
                condition.broadcast()
            }
        }
    }

    static func write(_ descriptor: Int32, _ data: Data) -> Bool {
        data.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let count = Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { return false }
                offset += count
            }
            return true
        }
    }

    /// Reads the report (side band 1), progress (2) and errors (3) until receive-pack hangs up.
    private func startReader() {
        Thread.detachNewThread { [self] in
            var outer = Data()
            var inner = Data()
            var text = Data()
            var bytes = [UInt8](repeating: 0, count: 65536)
            reading: while true {
                let count = read(input, &bytes, bytes.count)
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { break }
                condition.withLock { lastHeard = Date() }
                outer.append(contentsOf: bytes[0..<count])
                while let packet = Self.takePacket(&outer) {
                    guard let payload = packet else {
                        if !sideBand { break reading }
                        continue
                    }
                    guard sideBand else {
                        report(payload)
                        continue
                    }
                    guard let band = payload.first else { continue }
                    let body = payload.dropFirst()
                    switch band {
                    case 1:
                        inner.append(body)
                        while let line = Self.takePacket(&inner) { if let line { report(line) } }
                    case 2:
                        text.append(body)
                        while let end = text.firstIndex(where: { $0 == 0x0A || $0 == 0x0D }) {
                            let line = String(decoding: text[text.startIndex..<end], as: UTF8.self).trimmingCharacters(in: .whitespaces)
                            text.removeSubrange(text.startIndex...end)
                            if !line.isEmpty { progress(TransferStep(gitLine: line).map { "server \($0.description)" } ?? line) }
                        }
                    default:
                        let message = String(decoding: body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                        condition.withLock { errors.append(message) }
                    }
                }
            }
            condition.withLock {
                readerDone = true
                condition.broadcast()
            }
        }
    }

    private func report(_ line: Data) {
        var text = String(decoding: line, as: UTF8.self)
        if text.hasSuffix("\n") { text.removeLast() }
        condition.withLock { reportLines.append(text) }
    }

    /// The next pkt-line from `buffer`: nil when incomplete, `.some(nil)` for a flush.
    static func takePacket(_ buffer: inout Data) -> Data?? {
        guard buffer.count >= 4, let length = Int(String(decoding: buffer.prefix(4), as: UTF8.self), radix: 16) else { return nil }
        if length == 0 {
            buffer.removeFirst(4)
            return .some(nil)
        }
        guard length >= 4, buffer.count >= length else { return nil }
        let payload = buffer.subdata(in: buffer.startIndex + 4..<buffer.startIndex + length)
        buffer.removeFirst(length)
        return .some(payload)
    }

    /// Ends the pack and waits for the verdict, for as long as the secondary keeps talking (silence
    /// past `stall` drops it). What it accepted, and why it was not seeded wholly.
    func finish(stall: TimeInterval) -> SeedOutcome {
        condition.lock()
        closed = true
        lastHeard = max(lastHeard, Date())
        condition.broadcast()
        while !(readerDone && writerDone) {
            if dropped == nil, Date().timeIntervalSince(lastHeard) > stall {
                dropLocked("it said nothing for \(formatDuration(stall)) after the pack")
            }
            _ = condition.wait(until: Date().addingTimeInterval(0.5))
        }
        let lines = reportLines, reason = dropped, said = errors
        let sent = commands
        condition.unlock()
        if let child { _ = child.wait() }
        var outcome = SeedOutcome(name: target.name)
        if let reason {
            outcome.note = reason
            return outcome
        }
        guard let unpack = lines.first, unpack.hasPrefix("unpack ") else {
            outcome.note = "it sent no report" + (said.isEmpty ? "" : " (\(said.joined(separator: " | ")))")
            return outcome
        }
        if unpack != "unpack ok" {
            outcome.note = "it could not unpack the pack (\(unpack.dropFirst("unpack ".count)))"
            return outcome
        }
        var refused: [String] = []
        for line in lines.dropFirst() {
            if line.hasPrefix("ok "), let id = sent[String(line.dropFirst(3))] {
                outcome.created[String(line.dropFirst(3))] = id
            } else if line.hasPrefix("ng ") {
                refused.append(String(line.dropFirst(3)))
            }
        }
        if !refused.isEmpty {
            outcome.note = "it refused \(refused.count) ref\(refused.count == 1 ? "" : "s") (\(refused.prefix(3).joined(separator: "; ")))"
        }
        return outcome
    }
}

/// The seeding side of one fetch: opens the sessions, decides what each may create from the fetch's
/// own advertisement, feeds them the pack, and collects their outcomes.
final class PackSeeder: @unchecked Sendable {
    let targets: [SeedTarget]
    let stall: TimeInterval
    let progress: (String, String) -> Void
    private var sessions: [SeedSession] = []
    private var outcomes: [String: SeedOutcome] = [:]
    private let started = Date()

    init(targets: [SeedTarget], stall: TimeInterval, progress: @escaping (String, String) -> Void) {
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
                    session.progress = { [progress] line in progress(name, line) }
                    sessions.append(session)
                } else {
                    session.drop("it does not take the primary's pack as it is (no report-status or ofs-delta)")
                    outcomes[name] = SeedOutcome(name: name, note: "its receive-pack lacks report-status or ofs-delta")
                }
            case .success(let session)?:
                session.drop("not empty")
                outcomes[name] = SeedOutcome(name: name, note: "it is not empty (\(session.advertised.count) refs)")
            case .failure(let failure)?:
                outcomes[name] = SeedOutcome(name: name, note: failure.message)
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
            let creations = session.target.refs.sorted().compactMap { ref in advertised[ref].map { (ref: ref, id: $0) } }
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
