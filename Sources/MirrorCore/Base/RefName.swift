import Foundation

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
        // On the name's bytes: git's rules are about bytes, and every pass checks each of a
        // primary's refs (20,000 in a large one) for each secondary.
        let name = Array(name.utf8)
        let bytes = name.count
        if bytes > maxBytes { return "its name is \(bytes) bytes long, more than the \(maxBytes) a ref's name may have in the cache" }
        let parts = name.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        if let long = parts.first(where: { $0.count > maxPartBytes }) {
            return "a part of its name is \(long.count) bytes long, more than the \(maxPartBytes) a file name holds (the cache keeps each ref as a file)"
        }
        if parts.count < 2 || parts.contains(where: \.isEmpty) { return "its name has an empty part" }
        let lock = Array(".lock".utf8)
        if parts.contains(where: { $0.first == UInt8(ascii: ".") || ($0.count >= lock.count && $0.suffix(lock.count).elementsEqual(lock)) }) {
            return "a part of its name starts with '.' or ends with '.lock', which git does not allow"
        }
        var previous: UInt8 = 0
        var forbidden = false
        for byte in name {
            if (previous == UInt8(ascii: ".") && byte == UInt8(ascii: ".")) || (previous == UInt8(ascii: "@") && byte == UInt8(ascii: "{")) {
                return "its name holds '..', '@{' or ends with '.', which git does not allow"
            }
            if byte < 0x20 || byte == 0x7F || Self.forbidden.contains(byte) { forbidden = true }
            previous = byte
        }
        if name.last == UInt8(ascii: ".") || name == [UInt8(ascii: "@")] {
            return "its name holds '..', '@{' or ends with '.', which git does not allow"
        }
        if forbidden {
            return "its name holds a control character, a space or one of ~^:?*[\\, which git does not allow"
        }
        return nil
    }

    private static let forbidden = Set(" ~^:?*[\\".utf8)

    /// git's order of ref names (their bytes, as `for-each-ref` sorts them), and several times faster
    /// than String's (which compares grapheme clusters): a pass sorts a 20,000-ref primary's names.
    public static func precedes(_ a: String, _ b: String) -> Bool {
        var a = a, b = b
        return a.withUTF8 { x in
            b.withUTF8 { y in
                let common = min(x.count, y.count)
                if common > 0, let p = x.baseAddress, let q = y.baseAddress {
                    let order = memcmp(p, q, common)
                    if order != 0 { return order < 0 }
                }
                return x.count < y.count
            }
        }
    }

    /// A ref's name cut for a message (a 1,000-byte name would drown the line), escaped.
    public static func shown(_ name: String) -> String {
        let escaped = Printable.escaped(name)
        return escaped.count > 120 ? String(escaped.prefix(100)) + "…(\(name.utf8.count) bytes)" : escaped
    }
}
