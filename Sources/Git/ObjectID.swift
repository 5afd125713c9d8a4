import CLibgit2

/// A git object id (SHA-1): its 20 bytes, held inline (no heap, hashed and compared as three
/// integers; a 20,000-ref repository builds several dictionaries of them per pass). `hex` is
/// its 40-digit lowercase form.
public struct ObjectID: Hashable, Sendable, Codable, CustomStringConvertible, Comparable {
    // Big-endian: comparing (high, middle, low) orders ids as their hex forms order.
    private let high: UInt64
    private let middle: UInt64
    private let low: UInt32

    public init?(hex: String) {
        var hex = hex
        guard let parsed = hex.withUTF8({ ObjectID(hexDigits: UnsafeRawBufferPointer($0)) }) else { return nil }
        self = parsed
    }

    /// From the 40 hex digits (ASCII bytes, either case) of a listing or a ref file, read in place: no
    /// string and no array per id (a packed-refs file of 20,000 refs is read at every run).
    public init?(hexDigits digits: UnsafeRawBufferPointer) {
        guard digits.count == 40 else { return nil }
        var words: (UInt64, UInt64, UInt64) = (0, 0, 0)
        for index in 0..<40 {
            let character = digits[index]
            let value: UInt64
            switch character {
            case 48...57: value = UInt64(character - 48)
            case 97...102: value = UInt64(character - 87)
            case 65...70: value = UInt64(character - 55)
            default: return nil
            }
            switch index {
            case ..<16: words.0 = words.0 << 4 | value
            case ..<32: words.1 = words.1 << 4 | value
            default: words.2 = words.2 << 4 | value
            }
        }
        high = words.0
        middle = words.1
        low = UInt32(words.2)
    }

    private init(bytes: [UInt8]) {
        func integer(_ range: Range<Int>) -> UInt64 { range.reduce(0) { $0 << 8 | UInt64(bytes[$1]) } }
        high = integer(0..<8)
        middle = integer(8..<16)
        low = UInt32(integer(16..<20))
    }

    init(_ oid: git_oid) {
        var copy = oid
        let bytes = withUnsafeBytes(of: &copy.id) { Array($0.prefix(20)) }
        self.init(bytes: bytes)
    }

    var bytes: [UInt8] {
        (0..<8).reversed().map { UInt8(truncatingIfNeeded: high >> ($0 * 8)) }
            + (0..<8).reversed().map { UInt8(truncatingIfNeeded: middle >> ($0 * 8)) }
            + (0..<4).reversed().map { UInt8(truncatingIfNeeded: low >> ($0 * 8)) }
    }

    var raw: git_oid {
        var oid = git_oid()
        let bytes = self.bytes
        withUnsafeMutableBytes(of: &oid.id) { buffer in
            for index in 0..<20 { buffer[index] = bytes[index] }
        }
        return oid
    }

    public var hex: String {
        let digits = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        text.reserveCapacity(40)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 15)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    public static let zero = ObjectID(hex: String(repeating: "0", count: 40))!
    public var isZero: Bool { self == .zero }
    public var short: String { String(hex.prefix(10)) }
    public var description: String { hex }
    public static func < (a: ObjectID, b: ObjectID) -> Bool { (a.high, a.middle, a.low) < (b.high, b.middle, b.low) }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let id = ObjectID(hex: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not an object id: \(text)"))
        }
        self = id
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(hex)
    }
}
