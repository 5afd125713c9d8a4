/// Text that came from outside the configuration (a forge API's names, a request's fields, a server's
/// message), made safe to print on a terminal or in a line of a text log: control characters
/// (ESC, OSC's BEL, NUL, CR, LF, …) and the invisible format characters that reorder text
/// (U+202E and friends) are written as escapes, so they can neither move the cursor, retitle the
/// window nor start a line of their own.
public enum Printable {
    public static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var result = ""
        result.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            guard needsEscape(scalar) else { result.unicodeScalars.append(scalar); continue }
            switch scalar {
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case "\u{1B}": result += "\\e"
            default: result += "\\u{\(String(scalar.value, radix: 16))}"
            }
        }
        return result
    }

    /// Escaped, quoted and cut to `limit` characters: how a refusal names a value it would not use.
    public static func quoted(_ text: String, limit: Int = 120) -> String {
        let escaped = escaped(text)
        return "'\(escaped.count > limit ? String(escaped.prefix(limit)) + "…" : escaped)'"
    }

    static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) { return true }
        switch scalar.properties.generalCategory {
        case .format, .lineSeparator, .paragraphSeparator, .surrogate, .privateUse, .unassigned: return true
        default: return false
        }
    }
}
