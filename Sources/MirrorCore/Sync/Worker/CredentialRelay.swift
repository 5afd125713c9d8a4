import Foundation
import Synchronization

/// git asks for credentials through a helper (`credential.helper`). Ours is this binary
/// (`gitmirror __credential <fd> <action>`): it relays git's question over a socket the worker
/// passed down at a fixed descriptor, and the worker answers — only for the configured protocol,
/// host and port, and only once. The secret travels over that socket and git's pipe to the
/// helper, never through argv, the environment or a file.
public final class CredentialRelay: Sendable {
    /// The descriptor number git and its children inherit the socket at.
    static let descriptor: Int32 = 3

    enum Event: Equatable {
        /// git asked for a credential for another origin (a redirect): nothing was given.
        case otherOrigin(String)
        /// git asked a second time, or reported the credential refused.
        case refused
    }

    let workerEnd: Int32
    let childEnd: Int32
    private let origin: Origin?
    private let answer: @Sendable () -> (username: String, password: String)?
    private struct Conversation {
        var asked = 0
        var recorded: [Event] = []
    }
    private let conversation = Mutex(Conversation())
    private let finished = DispatchSemaphore(value: 0)

    /// Call under `ChildProcess.withSpawnLock` (the socket is created close-on-exec there).
    init(url: String, answer: @escaping @Sendable () -> (username: String, password: String)?) throws {
        var pair: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0 else {
            throw SyncFailure(.internal, "socketpair: \(String(cString: strerror(errno)))")
        }
        _ = fcntl(pair[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(pair[1], F_SETFD, FD_CLOEXEC)
        workerEnd = pair[0]
        childEnd = pair[1]
        origin = Origin(url: url)
        self.answer = answer
    }

    var events: [Event] { conversation.withLock { $0.recorded } }

    /// Answers questions until every holder of the child's end is gone (git and its helpers ended).
    func serve() {
        Thread.detachNewThread { [self] in
            var reader = MessageReader(descriptor: workerEnd)
            while let message = reader.next() {
                let reply = respond(to: message)
                guard Self.send(reply, to: workerEnd) else { break }
            }
            close(workerEnd)
            finished.signal()
        }
    }

    /// After git has ended: waits for the relay to see the end of the conversation.
    func finish() { finished.wait() }

    func respond(to question: [String: String]) -> [String: String] {
        conversation.withLock { conversation in
            switch question["action"] {
            case "get":
                if let origin, let asking = Origin(question: question), asking != origin {
                    conversation.recorded.append(.otherOrigin(asking.description))
                    return ["quit": "1"]
                }
                conversation.asked += 1
                guard conversation.asked == 1, let credential = answer() else {
                    if conversation.asked > 1 { conversation.recorded.append(.refused) }
                    return ["quit": "1"]
                }
                return ["username": credential.username, "password": credential.password]
            case "erase":
                conversation.recorded.append(.refused)
                return [:]
            default:
                return [:]
            }
        }
    }

    /// A message: `key=value` lines, then a line `end` (an answer may have no attributes at all).
    static func send(_ attributes: [String: String], to descriptor: Int32) -> Bool {
        let text = attributes.map { "\($0.key)=\($0.value)\n" }.sorted().joined() + "end\n"
        return writeAll(descriptor, Array(text.utf8))
    }

    struct MessageReader {
        let descriptor: Int32
        var pending = Data()

        mutating func next() -> [String: String]? {
            var message: [String: String] = [:]
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                while let newline = pending.firstIndex(of: 0x0A) {
                    let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                    pending.removeSubrange(pending.startIndex...newline)
                    if line == "end" { return message }
                    if let equals = line.firstIndex(of: "=") {
                        message[String(line[..<equals])] = String(line[line.index(after: equals)...])
                    }
                }
                let count = read(descriptor, &buffer, buffer.count)
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { return nil }
                pending.append(contentsOf: buffer[0..<count])
            }
        }
    }

    /// The helper's side, run by `gitmirror __credential <fd> <action>`: git's question from stdin
    /// goes to the worker, the answer to stdout. Returns the exit status.
    public static func helperMain(descriptor: Int32, action: String) -> Int32 {
        let input = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        var question = ["action": action]
        for line in input.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "="), line[..<equals] != "action" else { continue }
            question[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        guard send(question, to: descriptor) else { return 1 }
        var reader = MessageReader(descriptor: descriptor)
        guard let reply = reader.next() else { return 1 }
        let text = reply.map { "\($0.key)=\($0.value)\n" }.sorted().joined() + "\n"
        FileHandle.standardOutput.write(Data(text.utf8))
        return 0
    }
}
