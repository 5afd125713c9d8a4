import Foundation

/// Calendar arithmetic for UTC timestamps, by hand: Foundation's formatters and Calendar load ICU
/// (its engine, locale and time zone data: ~3 MiB of a process's memory and a few milliseconds),
/// for formats that never change.
public enum UTCTime {
    /// `2026-12-04T03:52:53Z`, as ISO8601DateFormatter's default writes it (seconds, cut).
    public static func iso8601(_ date: Date) -> String {
        let seconds = Int64(clamped(date.timeIntervalSince1970).rounded(.down))
        let (days, inDay) = floorDivision(seconds, 86_400)
        let (year, month, day) = civil(fromDays: days)
        return digits(year, 4) + "-" + digits(month, 2) + "-" + digits(day, 2) + "T" + digits(inDay / 3600, 2) + ":"
            + digits(inDay / 60 % 60, 2) + ":" + digits(inDay % 60, 2) + "Z"
    }

    /// Seconds since 1970 kept within years 1 to 9999, the four digits a timestamp has room for.
    static func clamped(_ seconds: TimeInterval) -> TimeInterval {
        min(max(seconds, -62_135_596_800), 253_402_300_799.999)
    }

    static func digits(_ value: Int64, _ width: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }

    static func floorDivision(_ value: Int64, _ divisor: Int64) -> (Int64, Int64) {
        let remainder = value % divisor
        return remainder < 0 ? (value / divisor - 1, remainder + divisor) : (value / divisor, remainder)
    }

    /// Howard Hinnant's days-from-civil and its inverse: the proleptic Gregorian calendar, day 0 =
    /// 1970-01-01.
    static func days(fromCivil year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func civil(fromDays days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
