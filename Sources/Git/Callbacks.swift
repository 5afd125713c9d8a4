import CLibgit2
import Foundation

// All of libgit2's C callbacks. Each receives the `TransferHooks` of the
// operation as an unretained payload, lent for the length of one synchronous call.
//
// Threads: every callback runs on the thread that made the call, except one. A push sets
// `pb_parallelism = 0` (one delta-search thread per CPU, as git does), and libgit2 1.5 then calls
// `pack_progress` during delta compression from its own delta threads (pack-objects.c,
// `find_deltas` → `report_delta_progress`). It calls it with the packbuilder's progress mutex
// held, so never two at once, and while the calling thread is blocked in `git_remote_upload`;
// so `TransferHooks` is still touched by one thread at a time. What `progress` does must
// therefore not depend on which thread runs it (it writes a line; it reads no thread-local state
// such as libgit2's error slot).

private func hooks(_ payload: UnsafeMutableRawPointer?) -> TransferHooks? {
    guard let payload else { return nil }
    return Unmanaged<TransferHooks>.fromOpaque(payload).takeUnretainedValue()
}

private func setError(_ errorClass: git_error_t, _ message: String) {
    git_error_set_str(Int32(errorClass.rawValue), message)
}

private let credentialCallback: git_credential_acquire_cb = { out, url, usernameFromURL, allowedTypes, payload in
    guard let hooks = hooks(payload), let out else { return GIT_PASSTHROUGH.rawValue }
    hooks.credentialRequests += 1
    let urlText = url.map { String(cString: $0) } ?? "the remote"
    // libgit2 asks again after every refusal (forever over SSH): answer once.
    guard hooks.credentialRequests == 1 else {
        hooks.failure = .credentialsRefused("the server refused the configured credentials")
        setError(GIT_ERROR_NET, "the server refused the configured credentials")
        return GIT_EUSER.rawValue
    }
    guard let credential = hooks.credentialProvider?() ?? hooks.credential else {
        hooks.failure = .noCredentials("the server asks for authentication but no credentials are configured for \(urlText)")
        setError(GIT_ERROR_NET, "authentication required but no credentials configured")
        return GIT_EUSER.rawValue
    }
    let fromURL = usernameFromURL.map { String(cString: $0) }
    switch credential {
    case let .userPassword(username, password):
        guard allowedTypes & GIT_CREDENTIAL_USERPASS_PLAINTEXT.rawValue != 0 else {
            hooks.failure = .noCredentials("the server does not accept a username and password; configure an SSH key")
            setError(GIT_ERROR_NET, "credential type not accepted")
            return GIT_EUSER.rawValue
        }
        switch hooks.credentialRelease?(username, password) ?? .allow {
        case .allow:
            break
        case .redirected(let message):
            hooks.failure = .redirected(message)
            setError(GIT_ERROR_HTTP, message)
            return GIT_EUSER.rawValue
        case .unconfirmed(let message):
            hooks.failure = .originUnconfirmed(message)
            setError(GIT_ERROR_HTTP, message)
            return GIT_EUSER.rawValue
        case .refused(let message):
            hooks.failure = .credentialsRefused(message)
            setError(GIT_ERROR_HTTP, message)
            return GIT_EUSER.rawValue
        }
        return git_credential_userpass_plaintext_new(out, username, password)
    case let .sshKey(username, privateKey, passphrase):
        if allowedTypes & GIT_CREDENTIAL_USERNAME.rawValue != 0 && allowedTypes & GIT_CREDENTIAL_SSH_KEY.rawValue == 0 {
            hooks.credentialRequests = 0
            return git_credential_username_new(out, username ?? fromURL ?? "git")
        }
        guard allowedTypes & GIT_CREDENTIAL_SSH_MEMORY.rawValue != 0 || allowedTypes & GIT_CREDENTIAL_SSH_KEY.rawValue != 0 else {
            hooks.failure = .noCredentials("the server does not accept an SSH key; configure a token or password")
            setError(GIT_ERROR_NET, "credential type not accepted")
            return GIT_EUSER.rawValue
        }
        return git_credential_ssh_key_memory_new(out, username ?? fromURL ?? "git", nil, privateKey, passphrase)
    }
}

private let certificateCallback: git_transport_certificate_check_cb = { cert, valid, host, payload in
    guard let hooks = hooks(payload), let cert else { return GIT_PASSTHROUGH.rawValue }
    let hostName = host.map { String(cString: $0) } ?? ""
    let certificate: HostCertificate
    if cert.pointee.cert_type == GIT_CERT_HOSTKEY_LIBSSH2 {
        let hostKey = UnsafeRawPointer(cert).assumingMemoryBound(to: git_cert_hostkey.self).pointee
        var digest: [UInt8] = []
        if hostKey.type.rawValue & GIT_CERT_SSH_SHA256.rawValue != 0 {
            digest = withUnsafeBytes(of: hostKey.hash_sha256) { Array($0) }
        }
        var raw: [UInt8]?
        var keyType: String?
        if hostKey.type.rawValue & GIT_CERT_SSH_RAW.rawValue != 0, let bytes = hostKey.hostkey {
            raw = Array(UnsafeRawBufferPointer(start: bytes, count: hostKey.hostkey_len))
            switch hostKey.raw_type {
            case GIT_CERT_SSH_RAW_TYPE_RSA: keyType = "ssh-rsa"
            case GIT_CERT_SSH_RAW_TYPE_DSS: keyType = "ssh-dss"
            case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_256: keyType = "ecdsa-sha2-nistp256"
            case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_384: keyType = "ecdsa-sha2-nistp384"
            case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_521: keyType = "ecdsa-sha2-nistp521"
            case GIT_CERT_SSH_RAW_TYPE_KEY_ED25519: keyType = "ssh-ed25519"
            default: keyType = nil
            }
        }
        certificate = .sshHostKey(host: hostName, sha256: digest, rawKey: raw, keyType: keyType)
    } else {
        certificate = .x509(host: hostName, valid: valid != 0)
    }
    switch hooks.certificateCheck(certificate) {
    case .passthrough:
        if case .x509(_, false) = certificate {
            hooks.failure = .certificate("the TLS certificate of \(hostName) is not trusted (unknown issuer, wrong host name or expired); add its CA with ca_file")
        }
        return GIT_PASSTHROUGH.rawValue
    case .accept:
        return 0
    case .reject(let message):
        if case .sshHostKey = certificate {
            hooks.failure = .hostKey(message)
        } else {
            hooks.failure = .certificate(message)
        }
        setError(GIT_ERROR_SSH, message)
        return GIT_ECERTIFICATE.rawValue
    }
}

/// The words git prints, so that every transfer reports alike: `writing objects 10/20 (50%), 1.2 MiB`.
func progressLine(_ phase: String, _ done: Int, _ total: Int, _ bytes: Int?) -> String {
    var text = phase + (total > 0 ? " \(done)/\(total) (\(min(100, done * 100 / total))%)" : " \(done)")
    if let bytes {
        text += bytes >= 1024 * 1024 ? String(format: ", %.1f MiB", Double(bytes) / 1024 / 1024)
            : bytes >= 1024 ? String(format: ", %.1f KiB", Double(bytes) / 1024) : ", \(bytes) bytes"
    }
    return text
}

private let transferProgressCallback: git_indexer_progress_cb = { stats, payload in
    guard let hooks = hooks(payload), let stats else { return 0 }
    hooks.receivedBytes = Int(stats.pointee.received_bytes)
    let total = Int(stats.pointee.total_objects)
    // A line at most every 20 ms (and the last one): enough for the stall clock and for people.
    let now = DispatchTime.now().uptimeNanoseconds
    let last = stats.pointee.received_objects == stats.pointee.total_objects && stats.pointee.indexed_deltas == stats.pointee.total_deltas
    if !last && now &- hooks.lastIndexerLine < 20_000_000 { return 0 }
    hooks.lastIndexerLine = now
    if total > 0 && stats.pointee.received_objects == stats.pointee.total_objects && stats.pointee.total_deltas > 0 {
        hooks.progress(progressLine("resolving deltas", Int(stats.pointee.indexed_deltas), Int(stats.pointee.total_deltas), nil))
    } else {
        hooks.progress(progressLine("receiving objects", Int(stats.pointee.received_objects), total, Int(stats.pointee.received_bytes)))
    }
    return 0
}

private let sidebandCallback: git_transport_message_cb = { text, length, payload in
    guard let hooks = hooks(payload), let text, length > 0 else { return 0 }
    let message = String(decoding: UnsafeRawBufferPointer(start: text, count: Int(length)), as: UTF8.self)
    hooks.appendServerMessage(message)
    hooks.progress("remote: \(message.prefix(200))")
    return 0
}

/// Runs on libgit2's delta threads during a push's delta compression (see the top of this file).
private let packProgressCallback: git_packbuilder_progress = { stage, current, total, payload in
    // Stage 0 adds objects (no total is known yet); stage 1 computes their deltas.
    if stage == Int32(GIT_PACKBUILDER_ADDING_OBJECTS.rawValue) {
        hooks(payload)?.progress(progressLine("counting objects", Int(current), 0, nil))
    } else {
        hooks(payload)?.progress(progressLine("compressing objects", Int(current), Int(total), nil))
    }
    return 0
}

private let pushTransferProgressCallback: git_push_transfer_progress_cb = { current, total, bytes, payload in
    guard let hooks = hooks(payload) else { return 0 }
    hooks.pushedBytes = bytes
    hooks.progress(progressLine("writing objects", Int(current), Int(total), bytes))
    return 0
}

private let pushUpdateReferenceCallback: git_push_update_reference_cb = { refname, status, payload in
    guard let hooks = hooks(payload), let refname else { return 0 }
    hooks.pushStatuses[String(cString: refname)] = .some(status.map { String(cString: $0) })
    return 0
}

private let pushNegotiationCallback: git_push_negotiation = { updates, count, payload in
    guard let hooks = hooks(payload) else { return 0 }
    var list: [PushUpdate] = []
    if let updates {
        for index in 0..<count {
            guard let update = updates[index]?.pointee else { continue }
            list.append(PushUpdate(
                sourceRef: update.src_refname.map { String(cString: $0) } ?? "",
                destinationRef: update.dst_refname.map { String(cString: $0) } ?? "",
                remoteOld: ObjectID(update.src),
                new: ObjectID(update.dst)))
        }
    }
    if let message = hooks.pushNegotiation(list) {
        hooks.failure = .negotiation(message)
        setError(GIT_ERROR_NET, message)
        return GIT_EUSER.rawValue
    }
    return 0
}

let objectIDCallback: git_odb_foreach_cb = { id, payload in
    guard let id, let payload else { return 0 }
    Unmanaged<ObjectIDCollector>.fromOpaque(payload).takeUnretainedValue().ids.append(ObjectID(id.pointee))
    return 0
}

/// The callback table for one operation; `payload` must outlive the operation.
func makeCallbacks(_ payload: UnsafeMutableRawPointer) -> git_remote_callbacks {
    var callbacks = git_remote_callbacks()
    git_remote_init_callbacks(&callbacks, UInt32(GIT_REMOTE_CALLBACKS_VERSION))
    callbacks.credentials = credentialCallback
    callbacks.certificate_check = certificateCallback
    callbacks.transfer_progress = transferProgressCallback
    callbacks.sideband_progress = sidebandCallback
    callbacks.pack_progress = packProgressCallback
    callbacks.push_transfer_progress = pushTransferProgressCallback
    callbacks.push_update_reference = pushUpdateReferenceCallback
    callbacks.push_negotiation = pushNegotiationCallback
    callbacks.payload = payload
    return callbacks
}
