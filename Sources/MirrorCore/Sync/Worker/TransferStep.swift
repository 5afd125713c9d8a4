import Foundation

/// How far one transfer is: its phase, objects done of how many, bytes and rate. Parsed from git's
/// progress lines (and written by the libgit2 callbacks in the same words), so that every transfer
/// reports alike: `writing objects 47520/105599 (45%), 12.0 MiB, 11.9 MiB/s`.
public struct TransferStep: Sendable, Equatable, CustomStringConvertible {
    public var phase: String
    public var done: Int?
    public var total: Int?
    public var bytes: Int?
    /// Bytes per second.
    public var rate: Int?

    public init(phase: String, done: Int? = nil, total: Int? = nil, bytes: Int? = nil, rate: Int? = nil) {
        self.phase = phase
        self.done = done
        self.total = total
        self.bytes = bytes
        self.rate = rate
    }

    static let phases = ["enumerating objects", "counting objects", "compressing objects", "writing objects",
                         "receiving objects", "resolving deltas", "unpacking objects", "checking connectivity"]

    /// `Writing objects:  45% (47520/105599), 12.01 MiB | 11.99 MiB/s`, or the same after `remote: `.
    public init?(gitLine: String) {
        var line = Substring(gitLine)
        var prefix = ""
        if line.hasPrefix("remote: ") {
            line = line.dropFirst("remote: ".count).drop(while: { $0 == " " })
            prefix = "server "
        }
        guard let colon = line.firstIndex(of: ":") else { return nil }
        let phase = line[..<colon].lowercased()
        guard Self.phases.contains(phase) else { return nil }
        self.init(phase: prefix + phase)
        let rest = line[line.index(after: colon)...]
        if let open = rest.firstIndex(of: "("), let close = rest[open...].firstIndex(of: ")") {
            let counts = rest[rest.index(after: open)..<close].split(separator: "/")
            if counts.count == 2 {
                done = Int(counts[0])
                total = Int(counts[1])
            }
            let after = rest[rest.index(after: close)...].drop(while: { $0 == "," || $0 == " " })
            let parts = after.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            if let first = parts.first { bytes = Self.size(first) }
            if parts.count > 1 { rate = Self.size(parts[1].replacingOccurrences(of: "/s", with: "")) }
        } else if let number = Int(rest.trimmingCharacters(in: .whitespaces).prefix(while: { $0.isNumber })) {
            done = number
        }
    }

    /// `12.01 MiB` → bytes.
    static func size(_ text: String) -> Int? {
        let parts = text.split(separator: " ")
        guard parts.count >= 1, let value = Double(parts[0]) else { return nil }
        let unit = parts.count > 1 ? String(parts[1]) : "bytes"
        let scale: Double = ["bytes": 1, "byte": 1, "KiB": 1024, "MiB": 1024 * 1024, "GiB": 1024 * 1024 * 1024][unit] ?? 1
        return Int(value * scale)
    }

    public static func format(bytes: Int) -> String {
        let value = Double(bytes)
        if value >= 1024 * 1024 * 1024 { return decimal(value / 1024 / 1024 / 1024, places: 2) + " GiB" }
        if value >= 1024 * 1024 { return decimal(value / 1024 / 1024, places: 1) + " MiB" }
        if value >= 1024 { return decimal(value / 1024, places: 1) + " KiB" }
        return "\(bytes) bytes"
    }

    public var description: String {
        var text = phase
        if let done, let total, total > 0 {
            text += " \(done)/\(total) (\(min(100, done * 100 / total))%)"
        } else if let done {
            text += " \(done)"
        }
        if let bytes { text += ", \(Self.format(bytes: bytes))" }
        if let rate { text += ", \(Self.format(bytes: rate))/s" }
        return text
    }
}
