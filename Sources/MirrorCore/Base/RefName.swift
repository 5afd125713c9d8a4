/// Whether a ref the primary advertises can be held by the cache (and pushed by name): the primary's
/// pushers choose these names, so one that no git repository on a file system can hold must fail
/// that ref alone, never the repository.
public enum RefName {
    /// A loose ref is a file: each part of its name is a file name, and `.lock` is added while it is written.
    public static let maxPartBytes = 250
    /// libgit2 normalises a ref name in a buffer of 1024 bytes.
    public static let maxBytes = 1000

    /// Why `name` cannot be mirrored, or nil. git's own rules (check-ref-format) and the lengths a
    /// file system and libgit2 hold.
    public static func problem(_ name: String) -> String? {
        let bytes = name.utf8.count
        if bytes > maxBytes { return "its name is \(bytes) bytes long, more than the \(maxBytes) a ref's name may have in the cache" }
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        if let long = parts.first(where: { $0.utf8.count > maxPartBytes }) {
            return "a part of its name is \(long.utf8.count) bytes long, more than the \(maxPartBytes) a file name holds (the cache keeps each ref as a file)"
        }
        if parts.count < 2 || parts.contains(where: \.isEmpty) { return "its name has an empty part" }
        if parts.contains(where: { $0.hasPrefix(".") || $0.hasSuffix(".lock") }) { return "a part of its name starts with '.' or ends with '.lock', which git does not allow" }
        if name.hasSuffix(".") || name.contains("..") || name.contains("@{") || name == "@" {
            return "its name holds '..', '@{' or ends with '.', which git does not allow"
        }
        if name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F || " ~^:?*[\\".unicodeScalars.contains($0) }) {
            return "its name holds a control character, a space or one of ~^:?*[\\, which git does not allow"
        }
        return nil
    }

    /// A ref's name cut for a message (a 1,000-byte name would drown the line), escaped.
    public static func shown(_ name: String) -> String {
        let escaped = Printable.escaped(name)
        return escaped.count > 120 ? String(escaped.prefix(100)) + "…(\(name.utf8.count) bytes)" : escaped
    }
}
