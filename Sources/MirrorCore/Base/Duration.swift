import Foundation

/// Parses "30m", "2m30s", "10s", "1h", "500ms" or a bare number of seconds.
public func parseDuration(_ text: String) -> TimeInterval? {
    let trimmed = text.trimmingCharacters(in: .whitespaces)
    if let seconds = Double(trimmed) { return seconds }
    var total: TimeInterval = 0
    var number = ""
    var unit = ""
    var sawAny = false
    func flush() -> Bool {
        guard let value = Double(number) else { return false }
        let factor: Double
        switch unit {
        case "ms": factor = 0.001
        case "s": factor = 1
        case "m": factor = 60
        case "h": factor = 3600
        case "d": factor = 86400
        default: return false
        }
        total += value * factor
        number = ""
        unit = ""
        sawAny = true
        return true
    }
    for character in trimmed {
        if character.isNumber || character == "." {
            if !unit.isEmpty { guard flush() else { return nil } }
            number.append(character)
        } else if character.isLetter {
            guard !number.isEmpty else { return nil }
            unit.append(character)
        } else {
            return nil
        }
    }
    guard !number.isEmpty, flush(), sawAny else { return nil }
    return total
}

/// "30m", "2m", "45s": the inverse of parseDuration for display.
public func formatDuration(_ seconds: TimeInterval) -> String {
    if seconds < 1 { return "\(Int((seconds * 1000).rounded()))ms" }
    if seconds < 60 { return String(format: seconds < 10 ? "%.1fs" : "%.0fs", seconds) }
    let whole = Int(seconds.rounded())
    if whole < 3600 { return whole % 60 == 0 ? "\(whole / 60)m" : "\(whole / 60)m\(whole % 60)s" }
    if whole >= 86400, whole % 86400 == 0 { return "\(whole / 86400)d" }
    return whole % 3600 == 0 ? "\(whole / 3600)h" : "\(whole / 3600)h\((whole % 3600) / 60)m"
}
