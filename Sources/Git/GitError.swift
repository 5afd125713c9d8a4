import CLibgit2

/// A failed libgit2 call: the C function that failed, libgit2's code and class,
/// and the message libgit2 left in its thread-local error slot.
public struct GitError: Error, CustomStringConvertible, Sendable {
    public let function: String
    public let code: Int32
    public let errorClass: Int32
    public let message: String

    public var description: String { "\(function): \(message)" }

    /// A failure of the wrapper's own around libgit2 (a file it writes or moves): no libgit2 code or class.
    public init(function: String, code: Int32 = -1, errorClass: Int32 = 0, message: String) {
        self.function = function
        self.code = code
        self.errorClass = errorClass
        self.message = message
    }

    public var isNotFound: Bool { code == GIT_ENOTFOUND.rawValue }
    public var isAuth: Bool { code == GIT_EAUTH.rawValue }
    public var isCertificate: Bool { code == GIT_ECERTIFICATE.rawValue || errorClass == Int32(GIT_ERROR_SSL.rawValue) }
    public var isNetwork: Bool {
        errorClass == Int32(GIT_ERROR_NET.rawValue) || errorClass == Int32(GIT_ERROR_OS.rawValue)
            || errorClass == Int32(GIT_ERROR_SSH.rawValue) || errorClass == Int32(GIT_ERROR_HTTP.rawValue)
    }
    public var isSSH: Bool { errorClass == Int32(GIT_ERROR_SSH.rawValue) }
    /// Reading or inflating an object failed: on the local side, a damaged object database.
    public var isObjectDatabase: Bool {
        errorClass == Int32(GIT_ERROR_ODB.rawValue) || errorClass == Int32(GIT_ERROR_ZLIB.rawValue)
    }
    public var isUserAbort: Bool { code == GIT_EUSER.rawValue }
    public var isNonFastForward: Bool { code == GIT_ENONFASTFORWARD.rawValue }
}

/// Every libgit2 call goes through here: the error slot is thread-local and
/// overwritten by the next call, so it is read at once, on the same thread, then cleared: a later
/// failure that sets no message of its own must not be reported with this one's.
@discardableResult
func check(_ function: String, _ result: Int32) throws(GitError) -> Int32 {
    guard result < 0 else { return result }
    var message = "unknown error"
    var errorClass: Int32 = 0
    if let last = git_error_last() {
        errorClass = last.pointee.klass
        if let text = last.pointee.message { message = String(cString: text) }
    }
    git_error_clear()
    throw GitError(function: function, code: result, errorClass: errorClass, message: message)
}
