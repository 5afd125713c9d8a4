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
        // primary's refs (20,000 in a large one) for each secondary. Nearly every name is fine: one
        // pass without a copy says so; the rest are looked at again to say what is wrong.
        var text = name
        if text.withUTF8(isClean) { return nil }
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

    /// Whether `problem` has nothing to say about these bytes, in one pass: no forbidden byte, no `..`
    /// or `@{`, at least two parts, each of 1 to maxPartBytes bytes, none starting with `.` or ending
    /// with `.lock`, no `.` at the end, at most maxBytes in all. False sends the name to the checks above.
    private static func isClean(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard bytes.count <= maxBytes else { return false }
        var partStart = 0
        var parts = 0
        var previous: UInt8 = 0
        func partIsClean(_ end: Int) -> Bool {
            let length = end - partStart
            guard length > 0, length <= maxPartBytes, bytes[partStart] != UInt8(ascii: ".") else { return false }
            guard length >= 5 else { return true }
            return !(bytes[end - 5] == UInt8(ascii: ".") && bytes[end - 4] == UInt8(ascii: "l") && bytes[end - 3] == UInt8(ascii: "o")
                     && bytes[end - 2] == UInt8(ascii: "c") && bytes[end - 1] == UInt8(ascii: "k"))
        }
        for index in 0..<bytes.count {
            let byte = bytes[index]
            switch byte {
            case 0..<0x20, 0x7F, UInt8(ascii: " "), UInt8(ascii: "~"), UInt8(ascii: "^"), UInt8(ascii: ":"), UInt8(ascii: "?"),
                 UInt8(ascii: "*"), UInt8(ascii: "["), UInt8(ascii: "\\"):
                return false
            case UInt8(ascii: ".") where previous == UInt8(ascii: "."), UInt8(ascii: "{") where previous == UInt8(ascii: "@"):
                return false
            case UInt8(ascii: "/"):
                guard partIsClean(index) else { return false }
                parts += 1
                partStart = index + 1
            default:
                break
            }
            previous = byte
        }
        return partIsClean(bytes.count) && parts >= 1 && previous != UInt8(ascii: ".")
    }

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

    /// `names` in git's order: as they are when they are in it already (a server advertises its refs
    /// so), sorted otherwise. Checking is one pass; sorting 20,000 names is a good part of a pass.
    public static func ordered(_ names: [String]) -> [String] {
        var index = names.startIndex
        while index + 1 < names.endIndex {
            guard precedes(names[index], names[index + 1]) else { return names.sorted(by: precedes) }
            index += 1
        }
        return names
    }

    /// A ref's name cut for a message (a 1,000-byte name would drown the line), escaped.
    public static func shown(_ name: String) -> String {
        let escaped = Printable.escaped(name)
        return escaped.count > 120 ? String(escaped.prefix(100)) + "…(\(name.utf8.count) bytes)" : escaped
    }
}
