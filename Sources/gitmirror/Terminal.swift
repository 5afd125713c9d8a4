import Foundation
import MirrorCore

/// Where output goes: results on stdout, progress and errors on stderr.
enum Terminal {
    static let stderrIsTerminal = isatty(STDERR_FILENO) == 1
    static let stdoutIsTerminal = isatty(STDOUT_FILENO) == 1
    private static let lock = NSLock()

    static func error(_ text: String) {
        lock.lock()
        defer { lock.unlock() }
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    static var interactive: Bool { stderrIsTerminal && stdoutIsTerminal }
    nonisolated(unsafe) private static var drawn = 0
    nonisolated(unsafe) private static var lastDraw = Date.distantPast

    /// Progress for a person watching: one line per working remote, redrawn in place (at most ten times a second).
    static func draw(_ entries: [ProgressBoard.Entry], force: Bool = false) {
        guard interactive else { return }
        lock.lock()
        defer { lock.unlock() }
        let now = Date()
        guard force || now.timeIntervalSince(lastDraw) >= 0.1 else { return }
        lastDraw = now
        var text = "\r" + String(repeating: "\u{1B}[1A\u{1B}[2K", count: drawn)
        let width = 110
        for entry in entries.suffix(12) {
            let line = "\(entry.name): \(entry.line)"
            text += (line.count > width ? String(line.prefix(width - 1)) + "…" : line) + "\n"
        }
        drawn = min(entries.count, 12)
        FileHandle.standardError.write(Data(text.utf8))
    }

    /// For cron, CI and journald: a line per remote still working, with the time.
    static func heartbeat(_ entries: [ProgressBoard.Entry]) {
        guard !interactive else { return }
        let now = rfc3339(Date(), separator: "T")
        let lines = entries.map { entry in
            "\(now) \(entry.name): \(entry.line) (\(formatDuration(Date().timeIntervalSince(entry.started))) so far)\n"
        }
        lock.lock()
        defer { lock.unlock() }
        FileHandle.standardError.write(Data(lines.joined().utf8))
    }

    static func clearProgress() {
        guard interactive else { return }
        lock.lock()
        defer { lock.unlock() }
        FileHandle.standardError.write(Data(("\r" + String(repeating: "\u{1B}[1A\u{1B}[2K", count: drawn)).utf8))
        drawn = 0
    }

    /// Every command's JSON: snake_case keys (`run_id`, `new_oid`, `error_class`) and RFC 3339 times
    /// with this machine's offset, as in the tables.
    static func printJSON<T: Encodable>(_ value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(rfc3339(date, separator: "T"))
        }
        print(String(decoding: try encoder.encode(value), as: UTF8.self))
    }

    /// `2026-11-23T14:05:09+01:00`: RFC 3339, local time with its offset (a space for `separator` in tables,
    /// which RFC 3339 allows for readability).
    static func rfc3339(_ date: Date, separator: String) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone.current
        formatter.dateFormat = "yyyy-MM-dd'\(separator)'HH:mm:ssxxxxx"
        return formatter.string(from: date)
    }

    /// Columns padded to their widest cell.
    /// The columns of the terminal on stdout (COLUMNS, else the terminal's own), or nil when stdout is not a terminal.
    static var stdoutColumns: Int? {
        guard stdoutIsTerminal else { return nil }
        if let columns = ProcessInfo.processInfo.environment["COLUMNS"].flatMap(Int.init), columns > 0 { return columns }
        var size = winsize()
        return ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0 && size.ws_col > 0 ? Int(size.ws_col) : nil
    }

    /// A table, a line per row. A cell is one line of plain text: a message's lines are joined with
    /// " | ", and names and messages from outside (a forge API, a server) cannot move the cursor. With
    /// `cutLastColumn`, the last column (a message) is cut with "…" to fit the terminal, or to that many
    /// characters when stdout is not one; `--json` has it whole.
    static func table(_ header: [String], _ rows: [[String]], cutLastColumn: Int? = nil) -> String {
        let folded = rows.map { $0.map { cell in
            guard cell.contains(where: \.isNewline) else { return Printable.escaped(cell) }
            return Printable.escaped(cell.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " | "))
        } }
        var widths = header.map(\.count)
        for row in folded {
            for (index, cell) in row.enumerated() where index < widths.count - 1 { widths[index] = max(widths[index], cell.count) }
        }
        let used = widths.dropLast().reduce(0) { $0 + $1 + 2 }
        let limit = cutLastColumn.map { fallback in stdoutColumns.map { max(40, $0 - used) } ?? fallback } ?? Int.max
        let rows = folded.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 && cell.count > limit ? String(cell.prefix(limit - 1)) + "…" : cell
            }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }

    static func time(_ date: Date?) -> String {
        guard let date else { return "-" }
        return rfc3339(date, separator: " ")
    }
}
