import CLibgit2

/// A git object id (SHA-1), held as its 40-digit lowercase hex form.
public struct ObjectID: Hashable, Sendable, Codable, CustomStringConvertible, Comparable {
    public let hex: String

    public init?(hex: String) {
        let lower = hex.lowercased()
        guard lower.utf8.count == 40, lower.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else {
            return nil
        }
        self.hex = lower
    }

    init(_ oid: git_oid) {
        var copy = oid
        var buffer = [CChar](repeating: 0, count: 41)
        git_oid_tostr(&buffer, 41, &copy)
        self.hex = String(decoding: buffer.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    var raw: git_oid {
        var oid = git_oid()
        _ = git_oid_fromstr(&oid, hex)
        return oid
    }

    public static let zero = ObjectID(hex: String(repeating: "0", count: 40))!
    public var isZero: Bool { self == .zero }
    public var short: String { String(hex.prefix(10)) }
    public var description: String { hex }
    public static func < (a: ObjectID, b: ObjectID) -> Bool { a.hex < b.hex }

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
