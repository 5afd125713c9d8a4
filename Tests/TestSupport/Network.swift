import Foundation
import Synchronization
import MirrorCore

public enum Network {
    /// Ports handed out in this process: tests run side by side, and a port one test was given
    /// but has not bound yet must not be given to another.
    private static let handedOut = Mutex<Set<Int>>([])

    /// The ports the kernel picks for outgoing connections (and for bind to port 0): ours come from
    /// below them, so that a connection another test opens meanwhile cannot take a port we handed out
    /// before its server bound it.
    static let ephemeral: ClosedRange<Int> = {
        let fields = ((try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? "")
            .split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
        return fields.count == 2 && fields[0] <= fields[1] ? fields[0]...fields[1] : 32768...60999
    }()

    /// A TCP port nobody listens on right now, never handed out before in this process, and outside
    /// the ephemeral range when there is room below it.
    public static func freePort(host: String = "127.0.0.1") throws -> Int {
        let below = 20000..<max(ephemeral.lowerBound, 20001)
        for attempt in 0..<200 {
            let candidate = attempt < 150 && below.count > 1000 ? Int.random(in: below) : 0
            guard let port = try bindable(host: host, port: candidate) else { continue }
            if handedOut.withLock({ $0.insert(port).inserted }) { return port }
        }
        throw TestError("no free port on \(host) that was not handed out already")
    }

    /// The port, once bound and released (0: the kernel's choice); nil when it is taken.
    private static func bindable(host: String, port: Int) throws -> Int? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = Self.address(host: host, port: port)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0 else {
            if port != 0 && errno == EADDRINUSE { return nil }
            throw TestError("cannot bind \(host):\(port): \(String(cString: strerror(errno)))")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// An IPv4 socket address.
    static func address(host: String, port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr(host)
        return address
    }

    public static func canConnect(host: String = "127.0.0.1", port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = Self.address(host: host, port: port)
        return withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } } == 0
    }

    /// Waits until something accepts connections on the port, or fails with the server's log.
    public static func waitForPort(host: String = "127.0.0.1", port: Int, process: ChildProcess?, log: URL, seconds: Double = 15) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if canConnect(host: host, port: port) { return }
            if let process, !process.isRunning { break }
            usleep(50_000)
        }
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        throw TestError("the server on \(host):\(port) did not start:\n\(text)")
    }
}

extension Network {
    /// Starts a server on a free port (`fixed`: on that one), waiting until it accepts connections.
    /// A port another process bound between being picked and the server binding it costs one more
    /// try on another port, up to five, rather than the test.
    public static func serve(host: String = "127.0.0.1", port fixed: Int? = nil, seconds: Double = 15,
                             _ start: (Int) throws -> (process: ChildProcess, log: URL)) throws -> (port: Int, process: ChildProcess, log: URL) {
        var attempt = 1
        while true {
            let port = try fixed ?? freePort(host: host)
            let (process, log) = try start(port)
            do {
                try waitForPort(host: host, port: port, process: process, log: log, seconds: seconds)
                return (port, process, log)
            } catch {
                terminate(process)
                let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
                let taken = ["Address already in use", "address already in use", "Errno 98"].contains { text.contains($0) }
                guard taken, fixed == nil, attempt < 5 else { throw error }
                attempt += 1
            }
        }
    }
}

public struct TestError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Stops a process: SIGTERM, then SIGKILL if it lingers.
/// Stops a server started by `Shell.start` and everything it forked (its process group).
func terminate(_ process: ChildProcess) {
    if process.isRunning {
        process.signalGroup(SIGTERM)
        let deadline = Date().addingTimeInterval(3)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { process.signalGroup(SIGKILL) }
        process.wait()
    }
    // Children left behind by the group's leader (git daemon's git-daemon, fcgiwrap's preforks).
    process.signalGroup(SIGKILL)
}

extension Network {
    /// Client-side TCP connections to a loopback port that are established right now (from /proc/net/tcp).
    /// `heldBy`: only the sockets these processes hold. The tests run side by side, and a port one
    /// test's server holds now may be the "nothing listens here" port another test picked a moment
    /// before (freePort), whose gitmirror then connects to it.
    public static func establishedConnections(toPort port: Int, heldBy processes: Set<Int32>? = nil) -> Int {
        establishedConnectionHolders(toPort: port, heldBy: processes).count
    }

    /// Each established connection to `port` (held by one of `processes`, when given) as one line: its
    /// local port, socket inode, and the processes holding it with their command lines — read in the
    /// same pass that counts them, for a failure's message.
    public static func establishedConnectionHolders(toPort port: Int, heldBy processes: Set<Int32>? = nil) -> [String] {
        // /proc files report size 0: read to the end, not by the size (which gets one page at most).
        guard let file = FileHandle(forReadingAtPath: "/proc/net/tcp") else { return [] }
        defer { try? file.close() }
        let table = String(decoding: file.readDataToEndOfFile(), as: UTF8.self)
        let remote = String(format: ":%04X", port)
        // inode → the processes holding it.
        let holders: [String: [Int32]]? = processes.map { pids in
            var holders: [String: [Int32]] = [:]
            for pid in pids {
                for fd in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? [] {
                    guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)"),
                          target.hasPrefix("socket:[") else { continue }
                    holders[String(target.dropFirst("socket:[".count).dropLast()), default: []].append(pid)
                }
            }
            return holders
        }
        return table.split(separator: "\n").dropFirst().compactMap { line -> String? in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 9, fields[2].hasSuffix(remote), fields[3] == "01" else { return nil }
            let inode = String(fields[9])
            guard let holders else { return "\(fields[1]) inode \(inode)" }
            guard let pids = holders[inode] else { return nil }
            let who = pids.map { pid in
                let argv = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline")))
                    .map { String(decoding: $0.map { $0 == 0 ? 32 : $0 }, as: UTF8.self) } ?? "?"
                return "\(pid) \(argv.prefix(120))"
            }
            return "\(fields[1]) inode \(inode) held by \(who.joined(separator: "; "))"
        }
    }
}
