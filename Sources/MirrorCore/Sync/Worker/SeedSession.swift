import Foundation
import Git

/// One `receive-pack` session fed with the primary's pack as it arrives.
final class SeedSession: Sendable {
    let target: SeedTarget
    private let output: Int32
    private let input: Int32
    private let isSocket: Bool
    private let child: ChildProcess?
    private let keyDescriptor: Int32
    /// A secondary reached over HTTP(S): where the receive-pack POST goes (no descriptor of its own).
    private let web: SeedWeb?

    /// What the session's threads (the feeder, the writer, the reader) share.
    private struct State {
        var advertised: [String] = []
        var capabilities: Set<String> = []
        var chunks: [Data] = []
        var queued = 0
        var closed = false
        var dropped: String?
        var commands: [String: ObjectID] = [:]
        var reportLines: [String] = []
        var errors: [String] = []
        var lastHeard = Date()
        var readerDone = false
        var writerDone = false
        var sideBand = false
        /// A pipe's end is closed (not shut down) to end the pack.
        var outputOpen = true
        var progress: @Sendable (String) -> Void = { _ in }
    }
    private let state = Guarded(State())

    var advertised: [String] { state.withLock { $0.advertised } }
    var capabilities: Set<String> { state.withLock { $0.capabilities } }
    /// Where the server's progress lines go.
    func report(progress: @escaping @Sendable (String) -> Void) { state.withLock { $0.progress = progress } }

    /// A secondary that cannot keep up is dropped rather than allowed to slow the fetch or fill memory.
    static let maximumQueued = 32 << 20
    /// A seed of this many refs or more asks for one transaction (`atomic`) where the server offers it.
    static let oneTransactionFrom = 1000

    private init(target: SeedTarget, output: Int32, input: Int32, isSocket: Bool, child: ChildProcess?, keyDescriptor: Int32,
                 web: SeedWeb? = nil) {
        self.target = target
        self.web = web
        self.output = output
        self.input = input
        self.isSocket = isSocket
        self.child = child
        self.keyDescriptor = keyDescriptor
    }

    deinit {
        if output >= 0, state.withLock({ $0.outputOpen }) { close(output) }
        if input >= 0, input != output { close(input) }
        if keyDescriptor >= 0 { close(keyDescriptor) }
    }

    /// Whether this secondary can be seeded at all: a transport this client speaks itself (SSH through
    /// OpenSSH, so not with a key locked by a passphrase, as for git's push).
    static func reaches(_ access: Endpoint) -> Bool {
        GitTransfer.handles(access)
    }

    /// Connects, starts receive-pack and reads what it advertises, within `timeout`.
    static func open(_ target: SeedTarget, timeout: TimeInterval) throws -> SeedSession {
        let session: SeedSession
        switch target.transport {
        case .git:
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
        case .ssh:
            guard let host = target.host else { throw SyncFailure(.config, "no host") }
            let (ssh, key) = try GitTransfer.openSSH(target.access, user: target.user ?? target.access.credential?.sshKey?.username)
            var arguments = ["/bin/sh", "-c", "exec \(ssh) \"$@\"", "ssh"]
            if let port = target.port { arguments += ["-p", String(port)] }
            arguments += [host, "git-receive-pack \(GitTransfer.quoted(target.path))"]
            session = try spawn(target, arguments, keyDescriptor: key)
        case .file:
            session = try spawn(target, ["git", "receive-pack", target.path], keyDescriptor: -1)
        case .http:
            // The advertisement is the answer to one GET; the commands and the pack go in one POST (begin).
            let (web, advertisement) = try SeedWeb.open(target, timeout: timeout)
            session = SeedSession(target: target, output: -1, input: -1, isSocket: false, child: nil, keyDescriptor: -1, web: web)
            var buffer = advertisement
            try session.readAdvertisement(&buffer, timeout: timeout)
            return session
        }
        session.startWriter()
        do {
            var buffer = Data()
            try session.readAdvertisement(&buffer, timeout: timeout)
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

    /// The advertisement: `<id> <ref>\0<capabilities>` (an empty repository advertises
    /// `capabilities^{}`), then a flush.
    private func readAdvertisement(_ buffer: inout Data, timeout: TimeInterval) throws {
        var first = true
        while true {
            guard let packet = try readPacket(&buffer, timeout: timeout) else { break }
            var line = String(decoding: packet, as: UTF8.self)
            if line.hasSuffix("\n") { line.removeLast() }
            if first {
                first = false
                if let nul = line.firstIndex(of: "\0") {
                    let offered = Set(line[line.index(after: nul)...].split(separator: " ").map(String.init))
                    state.withLock { $0.capabilities = offered }
                    line = String(line[..<nul])
                }
            }
            if line.hasPrefix("ERR ") { throw SyncFailure(.rejected, String(line.dropFirst(4))) }
            let fields = line.split(separator: " ", maxSplits: 1)
            if fields.count == 2, fields[1] != "capabilities^{}" { state.withLock { $0.advertised.append(String(fields[1])) } }
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
            guard input >= 0 else { throw SyncFailure(.network, "the server's advertisement of its refs ended early") }
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
        let sideBand = state.withLock { state in
            state.sideBand = state.capabilities.contains("side-band-64k")
            return state.sideBand
        }
        var wanted = ["report-status"]
        if sideBand { wanted.append("side-band-64k") }
        // Many refs in one transaction: receive-pack writes 20,000 refs ~15 % faster than in one
        // transaction each. All or none: a secondary that refuses any of them gets none from the seed,
        // and all are pushed as usual afterwards (each refusal then reported on its own).
        if creations.count >= Self.oneTransactionFrom, capabilities.contains("atomic") { wanted.append("atomic") }
        wanted.append("agent=gitmirror")
        var bytes: [UInt8] = []
        bytes.reserveCapacity(creations.reduce(4) { $0 + 4 + 83 + $1.ref.utf8.count } + 200)
        let zero = ObjectID.zero.hex
        var commands: [String: ObjectID] = [:]
        commands.reserveCapacity(creations.count)
        for (index, creation) in creations.enumerated() {
            let command = zero + " " + creation.id.hex + " " + creation.ref
            Self.appendPktLine(index == 0 ? command + "\0" + wanted.joined(separator: " ") : command, to: &bytes)
            if commands[creation.ref] == nil { commands[creation.ref] = creation.id }
        }
        bytes += Array("0000".utf8)
        state.withLock { $0.commands = commands }
        enqueue(Data(bytes))
        if let web { startPost(web) } else { startReader() }
        return true
    }

    /// Hands pack bytes over; never blocks. A secondary this far behind is dropped.
    func feed(_ data: Data) {
        state.withLock(wake: true) { state in
            guard state.dropped == nil, !state.closed else { return }
            if state.queued + data.count > Self.maximumQueued {
                dropLocked(&state, "it received the pack more slowly than the primary sent it (over \(Self.maximumQueued >> 20) MiB behind)")
                return
            }
            state.chunks.append(data)
            state.queued += data.count
        }
    }

    private func enqueue(_ data: Data) {
        state.withLock(wake: true) { state in
            state.chunks.append(data)
            state.queued += data.count
        }
    }

    /// Stops feeding this secondary: receive-pack then sees a truncated pack and updates no ref.
    func drop(_ reason: String) { state.withLock(wake: true) { dropLocked(&$0, reason) } }

    private func dropLocked(_ state: inout State, _ reason: String) {
        guard state.dropped == nil else { return }
        state.dropped = reason
        state.chunks = []
        state.queued = 0
        state.closed = true
        if isSocket { Glibc.shutdown(output, Int32(SHUT_RDWR)) }
        // A pipe's ends wake up when receive-pack (or ssh) is gone.
        child?.signal(SIGKILL)
    }

    private func startWriter() {
        Thread.detachNewThread { [self] in
            while true {
                let next = state.wait(for: { !$0.chunks.isEmpty || $0.closed }) { state, _ -> Data? in
                    guard !state.chunks.isEmpty else { return nil }
                    let chunk = state.chunks.removeFirst()
                    state.queued -= chunk.count
                    return chunk
                }
                guard let chunk = next else { break }
                guard Self.write(output, chunk) else {
                    drop("it hung up while receiving the pack (\(String(cString: strerror(errno))))")
                    break
                }
                state.withLock { $0.lastHeard = Date() }
            }
            // The end of the pack: the socket's sending half shuts, or the pipe closes.
            state.withLock(wake: true) { state in
                if isSocket {
                    Glibc.shutdown(output, Int32(SHUT_WR))
                } else if state.outputOpen {
                    close(output)
                    state.outputOpen = false
                }
                state.writerDone = true
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
            var reader = makeReportReader()
            var bytes = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = read(input, &bytes, bytes.count)
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { break }
                state.withLock { $0.lastHeard = Date() }
                guard bytes.withUnsafeBytes({ reader.take(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }) else { break }
            }
            state.withLock(wake: true) { $0.readerDone = true }
        }
    }

    func makeReportReader() -> SeedReportReader {
        let (sideBand, progress) = state.withLock { ($0.sideBand, $0.progress) }
        return SeedReportReader(sideBand: sideBand, report: { [state] line in state.withLock { $0.reportLines.append(line) } },
                                progress: progress, error: { [state] message in state.withLock { $0.errors.append(message) } })
    }

    /// Over HTTP(S) the commands and the pack are the body of one POST, sent as chunks while the pack
    /// arrives; its answer is the report. One thread writes and reads.
    private func startPost(_ web: SeedWeb) {
        Thread.detachNewThread { [self] in
            var reader = makeReportReader()
            var pending = Data()
            var offset = 0
            enum Next { case bytes(Data), end, abort }
            // Each call fills curl's buffer with what is queued (waiting only while nothing is): one HTTP
            // chunk per piece the fetch hands over would make many small chunks.
            let stream = HTTPStream(produce: { [state] buffer in
                var filled = 0
                while filled < buffer.count {
                    if offset >= pending.count {
                        let next = state.wait(for: { !$0.chunks.isEmpty || $0.closed || filled > 0 }) { state, _ -> Next in
                            guard state.dropped == nil else { return .abort }
                            guard !state.chunks.isEmpty else { return .end }
                            let chunk = state.chunks.removeFirst()
                            state.queued -= chunk.count
                            return .bytes(chunk)
                        }
                        switch next {
                        case .abort: return nil
                        case .end: return filled
                        case .bytes(let chunk): (pending, offset) = (chunk, 0)
                        }
                    }
                    let count = min(buffer.count - filled, pending.count - offset)
                    pending.withUnsafeBytes {
                        UnsafeMutableRawBufferPointer(rebasing: buffer[filled..<filled + count])
                            .copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[offset..<offset + count]))
                    }
                    offset += count
                    filled += count
                }
                state.withLock { $0.lastHeard = Date() }
                return filled
            }, consume: { [state] bytes in
                state.withLock { $0.lastHeard = Date() }
                _ = reader.take(bytes)
                return true
            }, cancelled: { [state] in state.withLock { $0.dropped != nil } })
            do {
                let answer = try web.client.stream("POST", web.post, headers: web.headers(posting: true), stream)
                if answer.status != 200 { drop(SeedWeb.refusal(answer, to: "its receive-pack POST")) }
            } catch {
                drop("the POST of its pack failed: \((error as? SyncFailure)?.message ?? "\(error)")")
            }
            state.withLock(wake: true) { state in
                state.writerDone = true
                state.readerDone = true
            }
        }
    }

    /// Ends the pack and waits for the verdict, for as long as the secondary keeps talking (silence
    /// past `stall` drops it). What it accepted, and why it was not seeded wholly.
    func finish(stall: TimeInterval) -> SeedOutcome {
        state.withLock(wake: true) { state in
            state.closed = true
            state.lastHeard = max(state.lastHeard, Date())
        }
        // Woken when a thread ends; a secondary silent past `stall` (from what it last said) is dropped.
        var done = false
        while !done {
            let heard = state.withLock { $0.lastHeard }
            done = state.wait(until: heard.addingTimeInterval(stall + 0.01), for: { $0.readerDone && $0.writerDone }) { state, ended in
                if !ended, state.dropped == nil, Date().timeIntervalSince(state.lastHeard) > stall {
                    dropLocked(&state, "it said nothing for \(formatDuration(stall)) after the pack")
                }
                return ended
            }
            // A drop ends the threads; wake whoever waits on the queue as well.
            if !done { state.withLock(wake: true) { _ in } }
        }
        let (lines, reason, said, sent) = state.withLock { ($0.reportLines, $0.dropped, $0.errors, $0.commands) }
        if let child { _ = child.wait() }
        return Self.outcome(of: target.name, dropped: reason, report: lines, said: said, sent: sent)
    }
}
