import CCurl
import Foundation

/// One HTTP/1.1 request whose body is written while it is sent (chunked) and whose answer is read as
/// it arrives: a git `receive-pack` POST fed with a pack that is still arriving (PackSeed).
///
/// The same limits as every request of gitmirror's: no redirect followed, http and https only, the
/// configured CA besides the system's. There is no overall deadline — a pack takes as long as it takes —
/// so the caller decides when the request has gone silent for too long, and ends it through `cancelled`.
public struct HTTPStream {
    /// Fills the buffer with the next bytes of the body, waiting until there are some: how many it
    /// wrote, 0 at the end of the body, nil to abort the request (the server then sees a body cut short).
    public var produce: (UnsafeMutableRawBufferPointer) -> Int?
    /// The body of a 200 answer, as it arrives; false aborts the request.
    public var consume: (UnsafeRawBufferPointer) -> Bool
    /// Asked at least once a second while the request waits on the network: true aborts it.
    public var cancelled: () -> Bool

    public init(produce: @escaping (UnsafeMutableRawBufferPointer) -> Int?, consume: @escaping (UnsafeRawBufferPointer) -> Bool,
                cancelled: @escaping () -> Bool) {
        self.produce = produce
        self.consume = consume
        self.cancelled = cancelled
    }
}

extension HTTPClient {
    /// POSTs (or `method`s) a body `stream` produces; `timeout` bounds the connection's setup only.
    /// The answer's status and headers; its body is `stream.consume`'s when the status is 200, and
    /// otherwise in `body` (its first 64 KiB), where an error's text is.
    public func stream(_ method: String = "POST", _ url: URL, headers: [String: String], _ stream: HTTPStream) throws(SyncFailure) -> Response {
        var loadError: UnsafePointer<CChar>?
        guard gitmirror_curl_load(&loadError) == 0 else {
            throw SyncFailure(.internal, loadError.map { String(cString: $0) } ?? "libcurl could not be loaded")
        }
        guard let handle = gitmirror_curl_easy_init() else { throw SyncFailure(.internal, "libcurl could not start a request") }
        defer { gitmirror_curl_easy_cleanup(handle) }
        let sink = StreamSink(stream)
        var list: UnsafeMutablePointer<curl_slist>?
        defer { gitmirror_curl_slist_free_all(list) }
        for (name, value) in headers where !["host", "expect", "transfer-encoding", "content-length"].contains(name.lowercased()) {
            list = gitmirror_curl_slist_append(list, "\(name): \(value)")
        }
        // No "Expect: 100-continue" round trip: the caller asked the same server with the same credential first.
        list = gitmirror_curl_slist_append(list, "Expect:")
        list = gitmirror_curl_slist_append(list, "Transfer-Encoding: chunked")
        var refused: (option: String, code: CURLcode)?
        func set(_ option: String, _ code: CURLcode) {
            if code != CURLE_OK, refused == nil { refused = (option, code) }
        }
        let pointer = Unmanaged.passUnretained(sink).toOpaque()
        let code: CURLcode = url.absoluteString.withCString { address in
            // No overall deadline: only the connection's setup has one.
            limit(handle, address: address, method: method, headers: list, connecting: min(timeout, 30), set)
            set("CURLOPT_HTTP_VERSION", gitmirror_curl_setopt_long(handle, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1))
            set("CURLOPT_POST", gitmirror_curl_setopt_long(handle, CURLOPT_POST, 1))
            // Larger pieces of the body per call (libcurl's default is 64 KiB): fewer, larger HTTP chunks.
            set("CURLOPT_UPLOAD_BUFFERSIZE", gitmirror_curl_setopt_long(handle, CURLOPT_UPLOAD_BUFFERSIZE, 512 << 10))
            set("CURLOPT_READFUNCTION", gitmirror_curl_setopt_write(handle, CURLOPT_READFUNCTION, streamRead))
            set("CURLOPT_READDATA", gitmirror_curl_setopt_pointer(handle, CURLOPT_READDATA, pointer))
            set("CURLOPT_WRITEFUNCTION", gitmirror_curl_setopt_write(handle, CURLOPT_WRITEFUNCTION, streamWrite))
            set("CURLOPT_WRITEDATA", gitmirror_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, pointer))
            set("CURLOPT_HEADERFUNCTION", gitmirror_curl_setopt_write(handle, CURLOPT_HEADERFUNCTION, headerCallback))
            set("CURLOPT_HEADERDATA", gitmirror_curl_setopt_pointer(handle, CURLOPT_HEADERDATA, pointer))
            set("CURLOPT_NOPROGRESS", gitmirror_curl_setopt_long(handle, CURLOPT_NOPROGRESS, 0))
            set("CURLOPT_XFERINFOFUNCTION", gitmirror_curl_setopt_xferinfo(handle, streamProgress))
            set("CURLOPT_XFERINFODATA", gitmirror_curl_setopt_pointer(handle, CURLOPT_XFERINFODATA, pointer))
            if let refused { return refused.code }
            return withExtendedLifetime(sink) { gitmirror_curl_easy_perform(handle) }
        }
        if let refused {
            throw SyncFailure(.internal, "libcurl refused \(refused.option) (\(String(cString: gitmirror_curl_easy_strerror(refused.code)))); the request to \(url.host ?? "the server") was not sent")
        }
        guard code == CURLE_OK else {
            if [CURLE_ABORTED_BY_CALLBACK, CURLE_WRITE_ERROR, CURLE_READ_ERROR].contains(code) {
                throw SyncFailure(.internal, "the request was ended before its answer came")
            }
            throw Self.failure(code, "\(method) \(url.path)", waited: "found no connection within \(formatDuration(min(timeout, 30)))")
        }
        var status = 0
        gitmirror_curl_response_code(handle, &status)
        return Response(status: status, headers: sink.headers, body: sink.errorBody)
    }
}

private final class StreamSink: HeaderSink {
    let stream: HTTPStream
    var errorBody = Data()
    init(_ stream: HTTPStream) { self.stream = stream }
}

private let streamRead: gitmirror_curl_write_callback = { buffer, size, count, userdata in
    guard let buffer, let userdata else { return Int(CURL_READFUNC_ABORT) }
    let sink = Unmanaged<StreamSink>.fromOpaque(userdata).takeUnretainedValue()
    guard let written = sink.stream.produce(UnsafeMutableRawBufferPointer(start: buffer, count: size * count)) else {
        return Int(CURL_READFUNC_ABORT)
    }
    return written
}

private let streamWrite: gitmirror_curl_write_callback = { data, size, count, userdata in
    guard let data, let userdata else { return 0 }
    let sink = Unmanaged<StreamSink>.fromOpaque(userdata).takeUnretainedValue()
    let bytes = UnsafeRawBufferPointer(start: data, count: size * count)
    if sink.status == 200 {
        return sink.stream.consume(bytes) ? size * count : 0
    }
    if sink.errorBody.count < 64 << 10 { sink.errorBody.append(contentsOf: bytes.prefix((64 << 10) - sink.errorBody.count)) }
    return size * count
}

private let streamProgress: gitmirror_curl_xferinfo_callback = { userdata, _, _, _, _ in
    guard let userdata else { return 1 }
    return Unmanaged<StreamSink>.fromOpaque(userdata).takeUnretainedValue().stream.cancelled() ? 1 : 0
}
