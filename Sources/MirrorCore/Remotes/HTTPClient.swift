import CCurl
import Foundation

/// A small synchronous HTTP client (libcurl) for AWS APIs and credential endpoints,
/// with a hard deadline — a credential source that hangs must not hang a sync —
/// and an optional CA bundle (AWS_CA_BUNDLE), which FoundationNetworking cannot take on Linux.
public struct HTTPClient: Sendable {
    public struct Response: Sendable {
        public var status: Int
        public var headers: [String: String]
        public var body: Data
        public var text: String { String(decoding: body, as: UTF8.self) }
    }

    public var timeout: TimeInterval
    /// A PEM file of CAs to trust besides the system's.
    public var caBundle: String?
    /// The most a response's body (held in memory) may hold: a larger one is cut off as it arrives and
    /// the request fails as `too_large`, so a broken or hostile server cannot set this process's memory.
    public var maxBodySize: Int

    public init(timeout: TimeInterval = 10, caBundle: String? = nil, maxBodySize: Int = 16 << 20) {
        self.timeout = timeout
        self.caBundle = caBundle
        self.maxBodySize = maxBodySize
    }

    public func send(_ method: String, _ url: URL, headers: [String: String] = [:], body: Data? = nil) throws(SyncFailure) -> Response {
        try perform(method, url, headers: headers, body: body, upload: nil, download: nil)
    }

    /// A GET whose body goes to `file` (created or truncated) as it arrives: an LFS object of any size.
    /// The response's body is empty unless the status is not 200 (then it holds the error's text).
    public func download(_ url: URL, headers: [String: String] = [:], to file: URL) throws(SyncFailure) -> Response {
        guard FileManager.default.createFile(atPath: file.path, contents: nil, attributes: [.posixPermissions: 0o600]),
              let handle = FileHandle(forWritingAtPath: file.path) else {
            throw SyncFailure(.internal, "cannot write \(file.path): \(String(cString: strerror(errno)))")
        }
        defer { try? handle.close() }
        return try perform("GET", url, headers: headers, body: nil, upload: nil, download: handle)
    }

    /// A PUT (or `method`) whose body is read from `file` as it is sent.
    public func upload(_ method: String = "PUT", _ url: URL, headers: [String: String] = [:], from file: URL) throws(SyncFailure) -> Response {
        guard let handle = FileHandle(forReadingAtPath: file.path) else {
            throw SyncFailure(.internal, "cannot read \(file.path): \(String(cString: strerror(errno)))")
        }
        defer { try? handle.close() }
        return try perform(method, url, headers: headers, body: nil, upload: handle, download: nil)
    }

    private func perform(_ method: String, _ url: URL, headers: [String: String], body: Data?, upload: FileHandle?,
                         download: FileHandle?) throws(SyncFailure) -> Response {
        var loadError: UnsafePointer<CChar>?
        guard gitmirror_curl_load(&loadError) == 0 else {
            throw SyncFailure(.internal, loadError.map { String(cString: $0) } ?? "libcurl could not be loaded")
        }
        guard let handle = gitmirror_curl_easy_init() else { throw SyncFailure(.internal, "libcurl could not start a request") }
        defer { gitmirror_curl_easy_cleanup(handle) }
        let sink = ResponseSink()
        sink.limit = maxBodySize
        sink.file = download
        sink.source = upload
        var list: UnsafeMutablePointer<curl_slist>?
        defer { gitmirror_curl_slist_free_all(list) }
        for (name, value) in headers where name.lowercased() != "host" {
            list = gitmirror_curl_slist_append(list, "\(name): \(value)")
        }
        // Without a body libcurl would still send "Expect:" on large POSTs; AWS does not need it.
        list = gitmirror_curl_slist_append(list, "Expect:")
        let payload = body ?? Data()
        // An option libcurl refuses (an older libcurl without CURLOPT_PROTOCOLS_STR, say) would leave the
        // request without a limit gitmirror relies on: it is not sent.
        var refused: (option: String, code: CURLcode)?
        func set(_ option: String, _ code: CURLcode) {
            if code != CURLE_OK, refused == nil { refused = (option, code) }
        }
        let code: CURLcode = payload.withUnsafeBytes { bytes in
            url.absoluteString.withCString { address in
                limit(handle, address: address, method: method, headers: list, connecting: min(timeout, 10), set)
                set("CURLOPT_TIMEOUT_MS", gitmirror_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, Int(timeout * 1000)))
                method.withCString { set("CURLOPT_CUSTOMREQUEST", gitmirror_curl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, $0)) }
                if let upload {
                    let size = (try? upload.seekToEnd()) ?? 0
                    try? upload.seek(toOffset: 0)
                    set("CURLOPT_UPLOAD", gitmirror_curl_setopt_long(handle, CURLOPT_UPLOAD, 1))
                    set("CURLOPT_INFILESIZE_LARGE", gitmirror_curl_setopt_long(handle, CURLOPT_INFILESIZE_LARGE, Int(size)))
                    set("CURLOPT_READFUNCTION", gitmirror_curl_setopt_write(handle, CURLOPT_READFUNCTION, readCallback))
                    set("CURLOPT_READDATA", gitmirror_curl_setopt_pointer(handle, CURLOPT_READDATA, Unmanaged.passUnretained(sink).toOpaque()))
                } else if method == "POST" || method == "PUT" || !payload.isEmpty {
                    set("CURLOPT_POST", gitmirror_curl_setopt_long(handle, CURLOPT_POST, 1))
                    set("CURLOPT_POSTFIELDS", gitmirror_curl_setopt_pointer(handle, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!)))
                    set("CURLOPT_POSTFIELDSIZE", gitmirror_curl_setopt_long(handle, CURLOPT_POSTFIELDSIZE, payload.count))
                }
                let sinkPointer = Unmanaged.passUnretained(sink).toOpaque()
                set("CURLOPT_WRITEFUNCTION", gitmirror_curl_setopt_write(handle, CURLOPT_WRITEFUNCTION, bodyCallback))
                set("CURLOPT_WRITEDATA", gitmirror_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, sinkPointer))
                set("CURLOPT_HEADERFUNCTION", gitmirror_curl_setopt_write(handle, CURLOPT_HEADERFUNCTION, headerCallback))
                set("CURLOPT_HEADERDATA", gitmirror_curl_setopt_pointer(handle, CURLOPT_HEADERDATA, sinkPointer))
                if let refused { return refused.code }
                return withExtendedLifetime(sink) { gitmirror_curl_easy_perform(handle) }
            }
        }
        if let refused {
            throw SyncFailure(.internal, "libcurl refused \(refused.option) (\(String(cString: gitmirror_curl_easy_strerror(refused.code)))); the request to \(url.host ?? url.absoluteString) was not sent")
        }
        if sink.overflowed {
            throw SyncFailure(.tooLarge, "\(method) \(url.absoluteString): the answer is larger than \(maxBodySize >> 10) KiB, the most gitmirror reads from one answer; it was cut off and not used")
        }
        guard code == CURLE_OK else {
            throw Self.failure(code, "\(method) \(url.absoluteString)", waited: "did not answer within \(formatDuration(timeout))",
                               tlsHint: "; set AWS_CA_BUNDLE to the CA that signs this endpoint")
        }
        var status = 0
        gitmirror_curl_response_code(handle, &status)
        return Response(status: status, headers: sink.headers, body: sink.body)
    }
}

extension HTTPClient {
    /// What every request of gitmirror's is held to, and where it goes: no signal, no redirect
    /// followed, http and https only, `caBundle` trusted besides the system's CAs (the hashed
    /// directory), as for git traffic. `set` is told each option's result.
    func limit(_ handle: UnsafeMutableRawPointer, address: UnsafePointer<CChar>, method: String, headers: UnsafeMutablePointer<curl_slist>?,
               connecting: TimeInterval, _ set: (String, CURLcode) -> Void) {
        set("CURLOPT_URL", gitmirror_curl_setopt_string(handle, CURLOPT_URL, address))
        set("CURLOPT_NOSIGNAL", gitmirror_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1))
        set("CURLOPT_CONNECTTIMEOUT_MS", gitmirror_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, Int(connecting * 1000)))
        set("CURLOPT_FOLLOWLOCATION", gitmirror_curl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0))
        set("CURLOPT_PROTOCOLS_STR", gitmirror_curl_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https"))
        set("CURLOPT_HTTPHEADER", gitmirror_curl_setopt_pointer(handle, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(headers)))
        if let caBundle {
            caBundle.withCString { set("CURLOPT_CAINFO", gitmirror_curl_setopt_string(handle, CURLOPT_CAINFO, $0)) }
            set("CURLOPT_CAPATH", gitmirror_curl_setopt_string(handle, CURLOPT_CAPATH, "/etc/ssl/certs"))
        }
        method.withCString { set("CURLOPT_CUSTOMREQUEST", gitmirror_curl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, $0)) }
    }

    /// What a request that libcurl ended with `code` failed of. `request`: the method and what it asked.
    static func failure(_ code: CURLcode, _ request: String, waited: String, tlsHint: String = "") -> SyncFailure {
        let reason = String(cString: gitmirror_curl_easy_strerror(code))
        switch code {
        case CURLE_OPERATION_TIMEDOUT:
            return SyncFailure(.timeout, "\(request) \(waited)")
        case CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CONNECT_ERROR, CURLE_SSL_CACERT_BADFILE:
            return SyncFailure(.tls, "\(request): \(reason)\(tlsHint)")
        default:
            return SyncFailure(.network, "\(request) failed: \(reason)")
        }
    }
}

/// The answer's status and headers, as libcurl hands their lines over (headerCallback).
class HeaderSink {
    var headers: [String: String] = [:]
    var status = 0
}

private final class ResponseSink: HeaderSink {
    var body = Data()
    /// The most `body` may hold; past it the transfer is stopped and `overflowed` set.
    var limit = Int.max
    var overflowed = false
    /// Where a 200's body goes instead of `body`.
    var file: FileHandle?
    /// Where an upload's body comes from.
    var source: FileHandle?
}

private let bodyCallback: gitmirror_curl_write_callback = { data, size, count, userdata in
    guard let data, let userdata else { return 0 }
    let sink = Unmanaged<ResponseSink>.fromOpaque(userdata).takeUnretainedValue()
    let bytes = UnsafeRawBufferPointer(start: data, count: size * count)
    if let file = sink.file, sink.status == 200 {
        do { try file.write(contentsOf: bytes) } catch { return 0 }
    } else if sink.file == nil {
        guard sink.body.count + bytes.count <= sink.limit else {
            sink.overflowed = true
            return 0
        }
        sink.body.append(contentsOf: bytes)
    } else if sink.body.count < 1 << 20 {
        sink.body.append(contentsOf: bytes)
    }
    return size * count
}

private let readCallback: gitmirror_curl_write_callback = { buffer, size, count, userdata in
    guard let buffer, let userdata else { return 0 }
    let sink = Unmanaged<ResponseSink>.fromOpaque(userdata).takeUnretainedValue()
    guard let chunk = try? sink.source?.read(upToCount: size * count), !chunk.isEmpty else { return 0 }
    chunk.copyBytes(to: UnsafeMutableRawBufferPointer(start: buffer, count: chunk.count))
    return chunk.count
}

/// Fills a HeaderSink (whatever its subclass) from the answer's header lines.
let headerCallback: gitmirror_curl_write_callback = { data, size, count, userdata in
    guard let data, let userdata else { return 0 }
    let sink = Unmanaged<HeaderSink>.fromOpaque(userdata).takeUnretainedValue()
    let line = String(decoding: UnsafeRawBufferPointer(start: data, count: size * count), as: UTF8.self)
    if line.hasPrefix("HTTP/") {
        // A new response (after a redirect or 100 Continue): its status decides where its body goes.
        sink.headers = [:]
        sink.status = Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }
    if let colon = line.firstIndex(of: ":") {
        sink.headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
    }
    return size * count
}
