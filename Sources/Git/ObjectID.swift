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
        var bytes = [UInt8]()
        bytes.reserveCapacity(20)
        var pending: UInt8?
        var count = 0
        for character in hex.utf8 {
            count += 1
            guard count <= 40 else { return nil }
            let value: UInt8
            switch character {
            case 48...57: value = character - 48
            case 97...102: value = character - 87
            case 65...70: value = character - 55
            default: return nil
            }
            if let first = pending {
                bytes.append(first << 4 | value)
                pending = nil
            } else {
                pending = value
            }
        }
        guard count == 40 else { return nil }
        self.init(bytes: bytes)
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
