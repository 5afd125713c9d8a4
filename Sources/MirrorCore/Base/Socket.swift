import Foundation

/// A TCP connection opened with a deadline (libgit2 1.5 has none; doctor and the first seed need one).
enum Socket {
    /// Resolves and connects with a deadline; the address it reached.
    static func probe(host: String, port: Int, timeout: TimeInterval) -> Result<String, SyncFailure> {
        open(host: host, port: port, timeout: timeout).map { descriptor, address in
            close(descriptor)
            return address
        }
    }

    /// Resolves and connects with a deadline: the connected socket (blocking again) and the address it reached.
    static func open(host: String, port: Int, timeout: TimeInterval) -> Result<(Int32, String), SyncFailure> {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let trimmedHost = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        let status = getaddrinfo(trimmedHost, String(port), &hints, &list)
        guard status == 0, let first = list else {
            return .failure(SyncFailure(.network, "cannot resolve \(host): \(String(cString: gai_strerror(status)))"))
        }
        defer { freeaddrinfo(list) }
        var lastError = "no address"
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let current = entry {
            defer { entry = current.pointee.ai_next }
            let fd = socket(current.pointee.ai_family, current.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), current.pointee.ai_protocol)
            guard fd >= 0 else { continue }
            var connected = false
            defer { if !connected { close(fd) } }
            let flags = fcntl(fd, F_GETFL)
            _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
            var result = Glibc.connect(fd, current.pointee.ai_addr, current.pointee.ai_addrlen)
            if result != 0 && errno == EINPROGRESS {
                var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                if poll(&poller, 1, Int32(timeout * 1000)) == 1 {
                    var error: Int32 = 0
                    var length = socklen_t(MemoryLayout<Int32>.size)
                    getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
                    result = error == 0 ? 0 : -1
                    if error != 0 { lastError = String(cString: strerror(error)) }
                } else {
                    lastError = "no answer within \(formatDuration(timeout))"
                    result = -1
                }
            } else if result != 0 {
                lastError = String(cString: strerror(errno))
            }
            if result == 0 {
                var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
                getnameinfo(current.pointee.ai_addr, current.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST)
                let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
                _ = fcntl(fd, F_SETFL, flags)
                connected = true
                return .success((fd, String(decoding: bytes, as: UTF8.self)))
            }
        }
        return .failure(SyncFailure(.network, "cannot connect to \(host):\(port): \(lastError)"))
    }
}
