import Foundation
// On Linux `tm`, `gmtime_r` and `timegm` reach Swift through Dispatch's C module, which MemberImportVisibility wants named.
#if canImport(CDispatch)
import CDispatch
#endif

/// UTC timestamps written from gmtime_r and read with timegm: Foundation's formatters and Calendar
/// load ICU (its engine, locale and time zone data: ~3 MiB of a process's memory and a few
/// milliseconds), and a page, a log or the state database writes the same few formats every time.
public enum UTCTime {
    public struct Parts: Equatable, Sendable {
        public var year, month, day, hour, minute, second: Int
    }

    /// The calendar fields of a whole number of seconds since 1970, within years 1 to 9999 (the four
    /// digits every format here has room for).
    public static func parts(_ seconds: Int64) -> Parts {
        var time = time_t(min(max(seconds, -62_135_596_800), 253_402_300_799))
        var fields = tm()
        gmtime_r(&time, &fields)
        return Parts(year: Int(fields.tm_year) + 1900, month: Int(fields.tm_mon) + 1, day: Int(fields.tm_mday),
                     hour: Int(fields.tm_hour), minute: Int(fields.tm_min), second: Int(fields.tm_sec))
    }

    public static func parts(_ date: Date) -> Parts { parts(Int64(date.timeIntervalSince1970.rounded(.down))) }

    /// Seconds since 1970 of calendar fields in UTC.
    public static func seconds(_ parts: Parts) -> Int64 {
        var fields = tm()
        fields.tm_year = Int32(parts.year - 1900)
        fields.tm_mon = Int32(parts.month - 1)
        fields.tm_mday = Int32(parts.day)
        fields.tm_hour = Int32(parts.hour)
        fields.tm_min = Int32(parts.minute)
        fields.tm_sec = Int32(parts.second)
        return Int64(timegm(&fields))
    }

    /// `2026-12-04T03:52:53Z`, as ISO8601DateFormatter's default writes it (seconds, cut).
    public static func iso8601(_ date: Date) -> String { text(parts(date), "-", "T", "Z") }

    /// `2026-12-04 03:52:53 UTC`.
    public static func readable(_ date: Date) -> String { text(parts(date), "-", " ", " UTC") }

    /// `20261204T035253Z`.
    public static func compact(_ date: Date) -> String { text(parts(date), "", "T", "Z", timeSeparator: "") }

    /// The fields as `YYYY<d>MM<d>DD<between>hh<t>mm<t>ss<end>`.
    public static func text(_ parts: Parts, _ dateSeparator: String, _ between: String, _ end: String,
                            timeSeparator: String = ":") -> String {
        digits(parts.year, 4) + dateSeparator + digits(parts.month, 2) + dateSeparator + digits(parts.day, 2) + between
            + digits(parts.hour, 2) + timeSeparator + digits(parts.minute, 2) + timeSeparator + digits(parts.second, 2) + end
    }

    public static func digits(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }
}
