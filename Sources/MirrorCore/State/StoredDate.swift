import Foundation
import GRDB

/// A date in the state database, in the text GRDB stores a `Date` as (`2026-12-04 01:51:33.250`, UTC),
/// written and read by hand. GRDB's own conversions go through a DateFormatter and a Calendar made
/// for the en_US_POSIX locale, which load ICU's locale, calendar, time zone and number-format data:
/// ~3 MiB of pages and a few milliseconds in every process that records a run, for one format that
/// never changes. Databases written before keep working: the text is the same.
public enum StoredDate {
    /// `yyyy-MM-dd HH:mm:ss.SSS` in UTC, to the nearest millisecond as DateFormatter rounds.
    public static func text(_ date: Date) -> String {
        let milliseconds = Int64((min(max(date.timeIntervalSince1970, -62_135_596_800), 253_402_300_799.999) * 1000).rounded())
        let (seconds, fraction) = milliseconds % 1000 < 0 ? (milliseconds / 1000 - 1, milliseconds % 1000 + 1000)
                                                           : (milliseconds / 1000, milliseconds % 1000)
        return UTCTime.text(UTCTime.parts(seconds), "-", " ", "." + UTCTime.digits(Int(fraction), 3))
    }

    /// The date a stored value holds: the text above (GRDB's forms `yyyy-MM-dd`, `… HH:mm`,
    /// `… HH:mm:ss`, `… HH:mm:ss.SSS`, with `T` or a space, a fraction of any length), or a number of
    /// seconds since 1970. Anything else is nil, which GRDB reports as a decoding error.
    public static func date(_ value: DatabaseValue) -> Date? {
        switch value.storage {
        case .int64(let seconds): return Date(timeIntervalSince1970: TimeInterval(seconds))
        case .double(let seconds): return Date(timeIntervalSince1970: seconds)
        case .string(let text): return date(text)
        default: return nil
        }
    }

    public static func date(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        var index = 0
        func number(_ width: Int) -> Int64? {
            guard index + width <= bytes.count else { return nil }
            var value: Int64 = 0
            for byte in bytes[index..<(index + width)] {
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int64(byte - UInt8(ascii: "0"))
            }
            index += width
            return value
        }
        func expect(_ character: Character) -> Bool {
            guard index < bytes.count, bytes[index] == character.asciiValue else { return false }
            index += 1
            return true
        }
        guard let year = number(4), expect("-"), let month = number(2), (1...12).contains(month), expect("-"),
              let day = number(2), (1...31).contains(day) else { return nil }
        var hour: Int64 = 0, minute: Int64 = 0, second: Int64 = 0, fraction: Double = 0
        if index < bytes.count {
            guard expect(" ") || expect("T"), let h = number(2), h < 24, expect(":"), let m = number(2), m < 60 else { return nil }
            (hour, minute) = (h, m)
            if index < bytes.count {
                guard expect(":"), let s = number(2), s < 60 else { return nil }
                second = s
                if index < bytes.count {
                    guard expect("."), index < bytes.count else { return nil }
                    var scale = 0.1
                    while index < bytes.count {
                        let byte = bytes[index]
                        guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                        fraction += Double(byte - UInt8(ascii: "0")) * scale
                        scale /= 10
                        index += 1
                    }
                }
            }
        }
        let seconds = UTCTime.seconds(UTCTime.Parts(year: Int(year), month: Int(month), day: Int(day), hour: Int(hour),
                                                    minute: Int(minute), second: Int(second)))
        return Date(timeIntervalSince1970: Double(seconds) + fraction)
    }
}

/// A record whose dates are stored and read through `StoredDate`. Every record of the state
/// database conforms; a SQL argument or column assignment that is a date passes
/// `StoredDate.text(date)`, never the `Date` (whose GRDB conversion would load ICU).
public protocol StoredDates: FetchableRecord, EncodableRecord {}

extension StoredDates {
    public static func databaseDateEncodingStrategy(for column: String) -> DatabaseDateEncodingStrategy {
        .custom { StoredDate.text($0) }
    }

    public static func databaseDateDecodingStrategy(for column: String) -> DatabaseDateDecodingStrategy {
        .custom { StoredDate.date($0) }
    }
}
