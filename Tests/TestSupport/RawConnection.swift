import Foundation

/// A TCP connection made by hand, from a chosen loopback address: what an attacker's client does
/// (connect and say nothing, or send a byte at a time) without an HTTP library's manners.
public final class RawConnection: @unchecked Sendable {
    public let descriptor: Int32

    /// Connects from `source` (any 127.x address: each is a peer of its own) to 127.0.0.1:`port`; the
    /// connection completes in the background (non-blocking).
    public init(from source: String, to port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw TestError("socket: \(String(cString: strerror(errno)))") }
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, source, &local.sin_addr)
        var remote = sockaddr_in()
        remote.sin_family = sa_family_t(AF_INET)
        remote.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, "127.0.0.1", &remote.sin_addr)
        let bound = withUnsafePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0 else { close(descriptor); throw TestError("bind \(source): \(String(cString: strerror(errno)))") }
        let connected = withUnsafePointer(to: &remote) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard connected == 0 || errno == EINPROGRESS else { close(descriptor); throw TestError("connect: \(String(cString: strerror(errno)))") }
    }

    /// Sends what it can now; false when the peer has closed the connection.
    @discardableResult
    public func send(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } >= 0
    }

    /// True once the server has closed its side (a read returns end of file or a reset); what it sent
    /// before closing (a 400 for junk) is read and dropped.
    public var closedByPeer: Bool {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(descriptor, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            if count > 0 { continue }
            if count == 0 { return true }
            return errno == ECONNRESET || errno == EPIPE || errno == ECONNREFUSED
        }
    }

    deinit { close(descriptor) }

    /// The soft limit on this process's descriptors raised to the hard one (a test that opens a thousand connections).
    public static func raiseDescriptorLimit() {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}

/// Descriptors a process holds now (/proc/PID/fd).
public func openDescriptors(of pid: Int32) -> Int {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
}
