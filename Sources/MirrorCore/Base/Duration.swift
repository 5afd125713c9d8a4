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
    if seconds < 60 { return decimal(seconds, places: seconds < 10 ? 1 : 0) + "s" }
    let whole = Int(seconds.rounded())
    if whole < 3600 { return whole % 60 == 0 ? "\(whole / 60)m" : "\(whole / 60)m\(whole % 60)s" }
    if whole >= 86400, whole % 86400 == 0 { return "\(whole / 86400)d" }
    return whole % 3600 == 0 ? "\(whole / 3600)h" : "\(whole / 3600)h\((whole % 3600) / 60)m"
}

/// `value` (not negative) with `places` decimals, as `%.{places}f` prints it but for an exact tie,
/// which printf rounds to even and this away from zero: what
/// `String(format:)` did on the sync's path, without Foundation's format machinery (its CVarArg casts
/// and CFString formatting, a few hundred KiB of pages in every process).
public func decimal(_ value: Double, places: Int) -> String {
    guard value.isFinite else { return "\(value)" }
    var scale = 1.0
    for _ in 0..<places { scale *= 10 }
    let scaled = (abs(value) * scale).rounded()
    guard scaled < 9e15 else { return "\(value)" }
    let units = Int64(scaled)
    let sign = value < 0 && units != 0 ? "-" : ""
    guard places > 0 else { return sign + String(units) }
    let factor = Int64(scale)
    let fraction = String(units % factor)
    return sign + String(units / factor) + "." + String(repeating: "0", count: places - fraction.count) + fraction
}

/// `value` as 16 lowercase hex digits (`%016llx`).
public func hex16(_ value: UInt64) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: 16 - digits.count) + digits
}
