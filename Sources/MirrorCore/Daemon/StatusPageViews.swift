import Foundation
import HTTPTypes
import Hummingbird
import Mustache

// What the templates render (Mustache reads these by reflection: plain values, already formatted) and
// what `/api/v1/` answers (snake_case keys, ISO 8601 times).

struct TotalView { var state, label: String; var count: Int; var href: String; var current: Bool }
struct StateOption { var value, label: String; var selected: Bool }
struct TimeView { var iso, text: String }

struct RemoteView {
    var name, role, url, state, label: String
    var outOfStepFor: String?
    var lastSuccess, lastAttempt: TimeView?
    var errorClass, errorLine, error, advice, progress: String?

    init(_ remote: PageRemote, now: Date) {
        name = remote.name
        role = remote.role
        url = remote.url
        state = remote.state.rawValue
        label = remote.state.label
        outOfStepFor = remote.outOfStepSince.map { formatDuration(max(0, now.timeIntervalSince($0))) }
        lastSuccess = remote.lastSuccess.map { TimeView(iso: StatusPage.iso($0), text: StatusPage.shown($0)) }
        lastAttempt = remote.lastAttempt.map { TimeView(iso: StatusPage.iso($0), text: StatusPage.shown($0)) }
        errorClass = remote.errorClass
        errorLine = remote.errorLine
        error = remote.error
        advice = remote.advice
        progress = remote.progress
    }
}

struct RowView { var name, href, state, label: String; var remotes: [RemoteView] }

struct OverviewView {
    var title, version: String
    var stale: Bool
    var freshness: String
    var totals: [TotalView]
    var states: [StateOption]
    var query: String
    var filtered: Bool
    var matched, total: Int
    var paged: Bool
    var page, pages: Int
    var previous, next: String?
    var hasRows: Bool
    var rows: [RowView]
}

struct DivergedView { var repository, remote, ref, old, new: String }
struct RunView { var iso, started, trigger, result, duration: String; var width: Int; var summary: String? }
struct JournalView { var iso, when, remote, ref, old, new, action, outcome: String; var message: String? }
struct BackupView { var backup, remote, ref, old, iso, when, cache, url: String }

struct RepositoryView {
    var title, version: String
    var stale: Bool
    var freshness, name, state, label: String
    var queued, canSync: Bool
    var syncAction, csrf: String
    var remotes: [RemoteView]
    var hasDiverged: Bool
    var diverged: [DivergedView]
    var hasRuns: Bool
    var runs: [RunView]
    var hasJournal: Bool
    var journal: [JournalView]
    var newer, older: String?
    var hasBackups: Bool
    var backups: [BackupView]
}

struct NotFoundView { var title, version: String; var stale: Bool; var freshness, message: String }

struct RepositoryDetail: Sendable {
    var runs: [SyncRun]
    var journal: [RefUpdate]
    var more: Bool
    var backups: [RefUpdate]
    var diverged: [RefUpdate]
}

struct VersionAnswer: Encodable { var version: String; var generatedAt: Date; var lastPass: Date?; var stale: Bool }
struct ErrorAnswer: Encodable { var error: String }

struct OverviewAnswer: Encodable {
    var version: String
    var generatedAt: Date
    var lastPass: Date?
    var stale: Bool
    var totals: [String: Int]
    var matched, page, pages: Int
    var repositories: [PageRepository]
}

struct RunAnswer: Encodable {
    var id: Int64?
    var trigger, result: String
    var startedAt: Date
    var finishedAt: Date?
    var summary: String?

    init(_ run: SyncRun) {
        id = run.id
        trigger = run.trigger
        result = run.result.rawValue
        startedAt = run.startedAt
        finishedAt = run.finishedAt
        summary = run.summary
    }
}

struct RefAnswer: Encodable {
    var runId: Int64
    var remote, ref, action, outcome: String
    var old, new, message, backupRef: String?
    var recordedAt: Date

    init(_ row: RefUpdate) {
        runId = row.runId
        remote = row.remote
        ref = row.ref
        action = row.action.rawValue
        outcome = row.outcome.rawValue
        old = row.oldOid
        new = row.newOid
        message = row.message
        backupRef = row.backupRef
        recordedAt = row.recordedAt
    }
}

struct RepositoryAnswer: Encodable {
    var repository: PageRepository
    var runs: [RunAnswer]
    var journal: [RefAnswer]
    var journalOffset: Int
    var journalMore: Bool
    var diverged: [RefAnswer]
    var backups: [RefAnswer]
}

extension StatusPage {
    // Formatted from gmtime (UTCTime): a page shows hundreds of times, and a DateFormatter (or
    // Date.formatted) each took longer than the rest of the page together.
    static func iso(_ date: Date) -> String { UTCTime.iso8601(date) }

    static func shown(_ date: Date) -> String { UTCTime.readable(date) }

    static func short(_ oid: String?) -> String { oid.map { String($0.prefix(12)) } ?? "—" }

    static func percent(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }

    static func summary(_ snapshot: PageSnapshot) -> String {
        let bad = (snapshot.totals[.failing] ?? 0) + (snapshot.totals[.diverged] ?? 0)
        return bad == 0 ? "all \(snapshot.repositories.count) in step or on their way" : "\(bad) out of step"
    }

    static func freshness(_ snapshot: PageSnapshot) -> String {
        let now = "As of \(shown(snapshot.generatedAt))"
        guard let pass = snapshot.lastPass else { return now + "; no full pass has ended yet." }
        let ago = formatDuration(max(0, snapshot.generatedAt.timeIntervalSince(pass.finishedAt)))
        return now + "; last full pass ended \(ago) ago" + (snapshot.isStale ? ": stale, the daemon is behind its schedule." : ".")
    }

    /// Every answer of the page: no script or style but its own, no framing, no referrer, no caching.
    static func secured(_ response: Response) -> Response {
        var response = response
        response.headers[HTTPField.Name("Content-Security-Policy")!] =
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        response.headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        response.headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        response.headers[.cacheControl] = "no-store"
        return response
    }

    func html(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) -> Response {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func asset(_ text: String, type: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = type
        return secured(Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text))))
    }
}

// The overview renders thousands of these per page: they answer Mustache's lookups directly, where
// reflection (Mirror) made a page of 100 repositories take ~150 ms.
extension RemoteView: MustacheParent {
    func child(named key: String) -> Any? {
        switch key {
        case "name": name
        case "role": role
        case "url": url
        case "state": state
        case "label": label
        case "outOfStepFor": outOfStepFor
        case "lastSuccess": lastSuccess
        case "lastAttempt": lastAttempt
        case "errorClass": errorClass
        case "errorLine": errorLine
        case "error": error
        case "advice": advice
        case "progress": progress
        default: nil
        }
    }
}

extension RowView: MustacheParent {
    func child(named key: String) -> Any? {
        switch key {
        case "name": name
        case "href": href
        case "state": state
        case "label": label
        case "remotes": remotes
        default: nil
        }
    }
}

extension TimeView: MustacheParent {
    func child(named key: String) -> Any? {
        switch key {
        case "iso": iso
        case "text": text
        default: nil
        }
    }
}
