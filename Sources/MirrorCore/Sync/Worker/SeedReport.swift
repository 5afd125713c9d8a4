import Foundation

/// What receive-pack answers a seed, read as it arrives, whichever way it comes (a socket, ssh's
/// output, an HTTP answer's body): the report (side band 1, or the whole answer without side band),
/// progress (2) and errors (3).
struct SeedReportReader {
    let sideBand: Bool
    /// Each line of the report (`unpack ok`, `ok <ref>`, `ng <ref> <why>`).
    let report: (String) -> Void
    /// Each progress line the server writes.
    let progress: (String) -> Void
    /// What the server says on the error band.
    let error: (String) -> Void
    private var outer = Data()
    private var inner = Data()
    private var text = Data()

    init(sideBand: Bool, report: @escaping (String) -> Void, progress: @escaping (String) -> Void, error: @escaping (String) -> Void) {
        self.sideBand = sideBand
        self.report = report
        self.progress = progress
        self.error = error
    }

    /// Takes the next bytes; false once the answer is complete (the flush ending a report without side band).
    mutating func take(_ bytes: UnsafeRawBufferPointer) -> Bool {
        outer.append(contentsOf: bytes)
        while let packet = SeedSession.takePacket(&outer) {
            guard let payload = packet else {
                if !sideBand { return false }
                continue
            }
            guard sideBand else {
                reportLine(payload)
                continue
            }
            guard let band = payload.first else { continue }
            let body = payload.dropFirst()
            switch band {
            case 1:
                inner.append(body)
                while let line = SeedSession.takePacket(&inner) { if let line { reportLine(line) } }
            case 2:
                text.append(body)
                while let end = text.firstIndex(where: { $0 == 0x0A || $0 == 0x0D }) {
                    let line = String(decoding: text[text.startIndex..<end], as: UTF8.self).trimmingCharacters(in: .whitespaces)
                    text.removeSubrange(text.startIndex...end)
                    if !line.isEmpty { progress(TransferStep(gitLine: line).map { "server \($0.description)" } ?? line) }
                }
            default:
                error(String(decoding: body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
            }
        }
        return true
    }

    private func reportLine(_ line: Data) {
        var text = String(decoding: line, as: UTF8.self)
        if text.hasSuffix("\n") { text.removeLast() }
        report(text)
    }
}
