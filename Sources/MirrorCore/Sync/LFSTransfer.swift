import Foundation
import Git

/// Git LFS objects for one secondary, before its refs are pushed: the objects the pushed history
/// points to that the secondary lacks are downloaded from the primary's LFS server (once, into
/// `state_dir/lfs/objects`, shared by every secondary), checked against their SHA-256 and size,
/// and uploaded through the secondary's batch API (https://github.com/git-lfs/git-lfs/blob/main/docs/api/batch.md),
/// verified where the server asks. A secondary never gets a pointer whose object it does not hold:
/// any object that cannot be mirrored fails the secondary before a ref moves.
struct LFSTransfer {
    let context: SyncContext
    let mirror: Mirror
    let say: (String) -> Void

    static let batchSize = 100
    static let mediaType = "application/vnd.git-lfs+json"

    var store: URL { context.config.stateDirectory.appendingPathComponent("lfs/objects") }

    /// The store keeps git-lfs's own layout.
    func stored(_ pointer: LFSPointer) -> URL { Self.objectPath(in: store, pointer) }

    /// Makes sure `secondary` holds every object of `pointers`. Returns how many were uploaded and their bytes.
    func mirror(_ pointers: [LFSPointer], to secondary: RemoteSpec) throws(SyncFailure) -> (objects: Int, bytes: Int) {
        guard !pointers.isEmpty else { return (0, 0) }
        let target = try Side(remote: secondary, context: context)
        var needed: [(pointer: LFSPointer, action: Action?, verify: Action?)] = []
        if let folder = target.localObjects {
            needed = pointers.filter { !FileManager.default.fileExists(atPath: Self.objectPath(in: folder, $0).path) }.map { ($0, nil, nil) }
        } else {
            for batch in stride(from: 0, to: pointers.count, by: Self.batchSize).map({ Array(pointers[$0..<min($0 + Self.batchSize, pointers.count)]) }) {
                for object in try target.batch("upload", batch, doing: "asking secondary '\(secondary.name)' which LFS objects it lacks") {
                    if let error = object.error {
                        throw Self.objectFailure(error, oid: object.pointer.oid, at: "secondary '\(secondary.name)'")
                    }
                    // No upload action: the server has the object already.
                    if let upload = object.actions["upload"] { needed.append((object.pointer, upload, object.actions["verify"])) }
                }
            }
        }
        guard !needed.isEmpty else { return (0, 0) }
        let total = needed.reduce(0) { $0 + $1.pointer.size }
        say("lfs: \(needed.count) object\(needed.count == 1 ? "" : "s") to upload (\(Self.bytes(total)))")
        try fetch(needed.map(\.pointer))
        var sent = 0
        for (index, entry) in needed.enumerated() {
            let file = stored(entry.pointer)
            if let folder = target.localObjects {
                let destination = Self.objectPath(in: folder, entry.pointer)
                do {
                    try FileManager.default.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
                    try? FileManager.default.removeItem(at: destination)
                    try FileManager.default.copyItem(at: file, to: destination)
                } catch {
                    throw SyncFailure(.internal, "secondary '\(secondary.name)': cannot write LFS object \(entry.pointer.oid) (\(error.localizedDescription))")
                }
            } else if let upload = entry.action {
                try target.upload(file, pointer: entry.pointer, action: upload, verify: entry.verify, remote: secondary.name)
            }
            sent += entry.pointer.size
            say("lfs: uploaded \(index + 1)/\(needed.count) objects, \(Self.bytes(sent)) of \(Self.bytes(total))")
        }
        return (needed.count, sent)
    }

    /// Downloads into the store the objects it does not hold yet, from the primary.
    func fetch(_ pointers: [LFSPointer]) throws(SyncFailure) {
        // One held already is used now: fresh again for `retention.lfs` (FileRetention).
        let missing = pointers.filter { pointer in
            let file = stored(pointer)
            guard FileManager.default.fileExists(atPath: file.path) else { return true }
            FileRetention.touch(file)
            return false
        }
        guard !missing.isEmpty else { return }
        let source = try Side(remote: mirror.primary, context: context)
        try OwnedPath.check(store.deletingLastPathComponent().path, directory: true)
        try OwnedPath.check(store.path, directory: true)
        do {
            try FileManager.default.createDirectory(at: store, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw SyncFailure(.config, "cannot create the LFS object store \(store.path): \(error.localizedDescription)")
        }
        say("lfs: downloading \(missing.count) object\(missing.count == 1 ? "" : "s") from the primary")
        if let folder = source.localObjects {
            for pointer in missing {
                let file = Self.objectPath(in: folder, pointer)
                guard FileManager.default.fileExists(atPath: file.path) else {
                    throw SyncFailure(.notFound, "the primary does not hold LFS object \(pointer.oid) (\(Self.bytes(pointer.size))), which the pushed history points to; no ref was pushed. Push the object to the primary (git lfs push --all)")
                }
                try keep(file, as: pointer, copy: true)
            }
            return
        }
        for batch in stride(from: 0, to: missing.count, by: Self.batchSize).map({ Array(missing[$0..<min($0 + Self.batchSize, missing.count)]) }) {
            let objects: [BatchObject]
            do {
                objects = try source.batch("download", batch, doing: "asking the primary's LFS server for objects")
            } catch where error.errorClass == .notFound {
                // Some servers answer 404 for the whole batch when they hold none of it.
                let list = batch.prefix(5).map { "\($0.oid) (\(Self.bytes($0.size)))" }.joined(separator: ", ")
                throw SyncFailure(.notFound, "the primary's LFS server holds none of the LFS objects \(list)\(batch.count > 5 ? ", …" : ""), which the pushed history points to (\(error.message)); no ref was pushed. Push the objects to the primary (git lfs push --all)")
            }
            for object in objects {
                if let error = object.error { throw Self.objectFailure(error, oid: object.pointer.oid, at: "the primary") }
                guard let download = object.actions["download"] else {
                    throw SyncFailure(.internal, "the primary's LFS server gave no download for object \(object.pointer.oid)")
                }
                let temporary = store.appendingPathComponent(".incoming-\(object.pointer.oid)-\(getpid())")
                defer { try? FileManager.default.removeItem(at: temporary) }
                let response = try source.http.download(download.href, headers: source.headers(for: download), to: temporary)
                guard response.status == 200 else {
                    throw Side.failure(response, doing: "downloading LFS object \(object.pointer.oid) from the primary")
                }
                try keep(temporary, as: object.pointer, copy: false)
            }
        }
    }

    /// Checks a file's size and SHA-256 against its pointer, then moves (or copies) it into the store.
    func keep(_ file: URL, as pointer: LFSPointer, copy: Bool) throws(SyncFailure) {
        guard let digest = Self.sha256(of: file) else {
            throw SyncFailure(.internal, "cannot read LFS object \(pointer.oid) at \(file.path)")
        }
        guard digest.size == pointer.size, digest.hex == pointer.oid else {
            throw SyncFailure(.internal, "LFS object \(pointer.oid) from the primary is not what its pointer says (got \(digest.size) bytes with SHA-256 \(digest.hex.prefix(12))…); nothing was uploaded")
        }
        let destination = stored(pointer)
        do {
            try FileManager.default.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
            try? FileManager.default.removeItem(at: destination)
            if copy { try FileManager.default.copyItem(at: file, to: destination) } else { try FileManager.default.moveItem(at: file, to: destination) }
        } catch {
            throw SyncFailure(.internal, "cannot store LFS object \(pointer.oid) in \(store.path): \(error.localizedDescription)")
        }
    }

    static func sha256(of file: URL) -> (hex: String, size: Int)? {
        guard let handle = FileHandle(forReadingAtPath: file.path) else { return nil }
        defer { try? handle.close() }
        var digest = SHA256.Incremental()
        var size = 0
        while let chunk = try? handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            size += chunk.count
            chunk.withUnsafeBytes { digest.update($0) }
        }
        return (digest.finish().hex, size)
    }

    /// git-lfs's own layout under a repository: `lfs/objects/ab/cd/abcd…`.
    static func objectPath(in folder: URL, _ pointer: LFSPointer) -> URL {
        folder.appendingPathComponent("\(pointer.oid.prefix(2))/\(pointer.oid.dropFirst(2).prefix(2))/\(pointer.oid)")
    }

    static func objectFailure(_ error: ObjectError, oid: String, at place: String) -> SyncFailure {
        let errorClass: ErrorClass
        switch error.code {
        case 401, 403: errorClass = .auth
        case 404, 410: errorClass = .notFound
        case 413: errorClass = .tooLarge
        case 422: errorClass = .rejected
        default: errorClass = .internal
        }
        return SyncFailure(errorClass, "\(place) refused LFS object \(oid): \(error.code) \(error.message); no ref was pushed")
    }

    static func bytes(_ count: Int) -> String {
        count < 1 << 20 ? "\(count / 1024) KiB" : String(format: "%.1f MiB", Double(count) / Double(1 << 20))
    }

    struct Action {
        var href: URL
        var header: [String: String]
    }

    struct ObjectError {
        var code: Int
        var message: String
    }

    struct BatchObject {
        var pointer: LFSPointer
        var actions: [String: Action]
        var error: ObjectError?
    }

    /// One end of the transfer: a remote's LFS endpoint and credentials, or its local object folder.
    struct Side {
        let endpoint: URL?
        let localObjects: URL?
        let authorization: String?
        let http: HTTPClient

        init(remote: RemoteSpec, context: SyncContext) throws(SyncFailure) {
            let url = remote.url
            let access = try context.credentials.access(for: remote, config: context.config)
            http = HTTPClient(timeout: max(remote.policy.timeout, 30), caBundle: access.caFile)
            if case .password(let username, let password) = access.secret {
                authorization = "Basic " + Data("\(username ?? "git"):\(password)".utf8).base64EncodedString()
            } else {
                authorization = nil
            }
            switch url.scheme {
            case .file:
                let bare = FileManager.default.fileExists(atPath: url.path + "/objects")
                localObjects = URL(fileURLWithPath: url.path).appendingPathComponent(bare ? "lfs/objects" : ".git/lfs/objects")
                endpoint = nil
            case .https, .http:
                // git-lfs's default: the remote's URL with .git, then /info/lfs.
                var base = url.gitURL
                while base.hasSuffix("/") { base.removeLast() }
                if !base.hasSuffix(".git") { base += ".git" }
                guard let endpoint = URL(string: base + "/info/lfs") else {
                    throw SyncFailure(.config, "\(url) has no LFS endpoint gitmirror can derive")
                }
                self.endpoint = endpoint
                localObjects = nil
            default:
                throw SyncFailure(.config, "\(url) is \(url.scheme.rawValue): LFS objects travel over HTTPS; give this remote an https:// address")
            }
        }

        func headers(for action: Action) -> [String: String] {
            var headers = action.header
            // The remote's own credentials go only to its own origin, and only when the action brings none.
            if headers.keys.contains(where: { $0.lowercased() == "authorization" }) == false, let authorization, let endpoint,
               action.href.scheme == endpoint.scheme, action.href.host == endpoint.host, action.href.port == endpoint.port {
                headers["Authorization"] = authorization
            }
            return headers
        }

        func batch(_ operation: String, _ pointers: [LFSPointer], doing what: String) throws(SyncFailure) -> [BatchObject] {
            guard let endpoint else { return [] }
            var headers = ["Accept": LFSTransfer.mediaType, "Content-Type": LFSTransfer.mediaType, "User-Agent": "gitmirror"]
            if let authorization { headers["Authorization"] = authorization }
            let body: [String: Any] = ["operation": operation, "transfers": ["basic"], "hash_algo": "sha256",
                                       "objects": pointers.map { ["oid": $0.oid, "size": $0.size] as [String: Any] }]
            let payload = (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])) ?? Data()
            let response = try http.send("POST", endpoint.appendingPathComponent("objects/batch"), headers: headers, body: payload)
            guard response.status == 200, let object = (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any] else {
                throw Self.failure(response, doing: what)
            }
            let sizes = Dictionary(pointers.map { ($0.oid, $0.size) }, uniquingKeysWith: { a, _ in a })
            return (object["objects"] as? [[String: Any]] ?? []).compactMap { item in
                guard let oid = item["oid"] as? String, let size = sizes[oid] else { return nil }
                var actions: [String: Action] = [:]
                for (name, value) in item["actions"] as? [String: Any] ?? [:] {
                    guard let action = value as? [String: Any], let text = action["href"] as? String, let href = URL(string: text, relativeTo: endpoint)?.absoluteURL,
                          href.scheme == "https" || href.scheme == "http" else { continue }
                    actions[name] = Action(href: href, header: action["header"] as? [String: String] ?? [:])
                }
                let error = (item["error"] as? [String: Any]).map { ObjectError(code: $0["code"] as? Int ?? 0, message: $0["message"] as? String ?? "") }
                return BatchObject(pointer: LFSPointer(oid: oid, size: size), actions: actions, error: error)
            }
        }

        func upload(_ file: URL, pointer: LFSPointer, action: Action, verify: Action?, remote: String) throws(SyncFailure) {
            var headers = self.headers(for: action)
            headers["Content-Type"] = "application/octet-stream"
            let response = try http.upload("PUT", action.href, headers: headers, from: file)
            guard (200...299).contains(response.status) else {
                throw Self.failure(response, doing: "uploading LFS object \(pointer.oid) to secondary '\(remote)'")
            }
            guard let verify else { return }
            var verifyHeaders = self.headers(for: verify)
            verifyHeaders["Accept"] = LFSTransfer.mediaType
            verifyHeaders["Content-Type"] = LFSTransfer.mediaType
            let body = (try? JSONSerialization.data(withJSONObject: ["oid": pointer.oid, "size": pointer.size], options: [.sortedKeys])) ?? Data()
            let answer = try http.send("POST", verify.href, headers: verifyHeaders, body: body)
            guard (200...299).contains(answer.status) else {
                throw Self.failure(answer, doing: "verifying LFS object \(pointer.oid) on secondary '\(remote)'")
            }
        }

        static func failure(_ response: HTTPClient.Response, doing what: String) -> SyncFailure {
            let said = ((try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any])?["message"] as? String
                ?? String(decoding: response.body.prefix(200), as: UTF8.self)
            let errorClass: ErrorClass = response.status == 422 ? .rejected : Classification.forgeAPI(status: response.status)
            return SyncFailure(errorClass, "\(what): HTTP \(response.status)\(said.isEmpty ? "" : " (\(said.trimmingCharacters(in: .whitespacesAndNewlines).prefix(300)))"); no ref was pushed")
        }
    }
}
