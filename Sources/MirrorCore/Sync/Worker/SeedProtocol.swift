import Foundation
import Git

/// The receive-pack protocol a seed speaks: pkt-lines, and the verdict in the report-status.
extension SeedSession {
    static func pktLine(_ text: String) -> Data {
        var bytes: [UInt8] = []
        appendPktLine(text, to: &bytes)
        return Data(bytes)
    }

    /// Appends `text` as one pkt-line (its length in four hex digits, then its bytes).
    static func appendPktLine(_ text: String, to bytes: inout [UInt8]) {
        let length = text.utf8.count + 4
        for shift in [12, 8, 4, 0] {
            let digit = UInt8(length >> shift & 15)
            bytes.append(digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10)
        }
        bytes.append(contentsOf: text.utf8)
    }

    /// The next pkt-line from `buffer`: nil when incomplete, `.some(nil)` for a flush.
    static func takePacket(_ buffer: inout Data) -> Data?? {
        guard buffer.count >= 4, let length = Int(String(decoding: buffer.prefix(4), as: UTF8.self), radix: 16) else { return nil }
        if length == 0 {
            buffer.removeFirst(4)
            return .some(nil)
        }
        guard length >= 4, buffer.count >= length else { return nil }
        let payload = buffer.subdata(in: buffer.startIndex + 4..<buffer.startIndex + length)
        buffer.removeFirst(length)
        return .some(payload)
    }

    /// What the secondary accepted (`ok` in its report, with the value sent), and why it was not seeded
    /// wholly: dropped, no report, a pack it could not unpack, refs it refused.
    static func outcome(of name: String, dropped reason: String?, report lines: [String], said: [String], sent: [String: ObjectID]) -> SeedOutcome {
        var outcome = SeedOutcome(name: name)
        if let reason {
            outcome.note = reason
            return outcome
        }
        guard let unpack = lines.first, unpack.hasPrefix("unpack ") else {
            outcome.note = "it sent no report" + (said.isEmpty ? "" : " (\(said.joined(separator: " | ")))")
            return outcome
        }
        if unpack != "unpack ok" {
            outcome.note = "it could not unpack the pack (\(unpack.dropFirst("unpack ".count)))"
            return outcome
        }
        var refused: [String] = []
        outcome.created.reserveCapacity(lines.count)
        for line in lines.dropFirst() {
            if line.hasPrefix("ok "), let id = sent[String(line.dropFirst(3))] {
                outcome.created[String(line.dropFirst(3))] = id
            } else if line.hasPrefix("ng ") {
                refused.append(String(line.dropFirst(3)))
            }
        }
        if !refused.isEmpty {
            // In one transaction, the refs refused for their own sake come first, not those it took along.
            let along = { (line: String) in line.hasSuffix(" atomic push failure") }
            let named = refused.filter { !along($0) } + refused.filter(along)
            outcome.note = "it refused \(refused.count) ref\(refused.count == 1 ? "" : "s") (\(named.prefix(3).joined(separator: "; ")))"
        }
        return outcome
    }
}
