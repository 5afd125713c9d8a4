import Foundation
import HTTPTypes
import Hummingbird
import Mustache

/// The status page: `/` (every repository, worst first, filtered by state and name), `/repositories/NAME`
/// (its remotes, runs, ref journal, diverged refs and backups), the same data as JSON under `/api/v1/`,
/// and a sync button for a signed-in user. Read-only otherwise; who may open it is PageAccess's to say.
struct StatusPage: Sendable {
    let state: DaemonState
    let store: StateStore
    let scheduler: Scheduler
    let access: PageAccess
    let snapshots = PageSnapshots()
    let library: MustacheLibrary
    static let perPage = 100
    static let journalPerPage = 50

    init(state: DaemonState, store: StateStore, scheduler: Scheduler, settings: UISettings) {
        self.state = state
        self.store = store
        self.scheduler = scheduler
        access = PageAccess(settings: settings)
        var library = MustacheLibrary()
        // The templates are the program's own: one that does not parse is a bug the tests catch.
        try! library.register(StatusPageTemplates.layout, named: "layout")
        try! library.register(StatusPageTemplates.overview, named: "overview")
        try! library.register(StatusPageTemplates.repository, named: "repository")
        try! library.register(StatusPageTemplates.notFound, named: "notFound")
        self.library = library
    }

    func register(on router: Router<DaemonRequestContext>) {
        guard !access.isOff else { return }
        router.get("/") { request, context in await guarded(request, context) { user in try await overview(request, user: user) } }
        router.get("repositories/:name") { request, context in
            await guarded(request, context) { user in try await repository(request, name: context.parameters.get("name") ?? "", user: user, json: false) }
        }
        router.post("repositories/:name/sync") { request, context in
            await guarded(request, context) { user in try await syncNow(request, name: context.parameters.get("name") ?? "", user: user) }
        }
        router.get("api/v1/repositories") { request, context in await guarded(request, context) { _ in try await overviewJSON(request) } }
        router.get("api/v1/repositories/:name") { request, context in
            await guarded(request, context) { user in try await repository(request, name: context.parameters.get("name") ?? "", user: user, json: true) }
        }
        router.get("api/v1/version") { request, context in
            await guarded(request, context) { _ in
                let snapshot = try await current()
                return Self.json(VersionAnswer(version: snapshot.version, generatedAt: snapshot.generatedAt,
                                               lastPass: snapshot.lastPass?.finishedAt, stale: snapshot.isStale))
            }
        }
        router.get("static/page.css") { _, _ in Self.asset(StatusPageTemplates.stylesheet, type: "text/css; charset=utf-8") }
        router.get("static/page.js") { _, _ in Self.asset(StatusPageTemplates.script, type: "text/javascript; charset=utf-8") }
    }

    private func guarded(_ request: Request, _ context: DaemonRequestContext, _ body: (String?) async throws -> Response) async -> Response {
        switch await access.decide(request, loopback: context.peerIsLoopback) {
        case .refused(let response): return Self.secured(response)
        case .allowed(let user):
            do { return Self.secured(try await body(user)) } catch {
                return Self.secured(textResponse(.internalServerError, "the state database could not be read: \(error)\n"))
            }
        }
    }

    private func current() async throws -> PageSnapshot {
        let config = await state.config
        return try await offThePool { Result { try snapshots.snapshot(config: config, store: store) } }.get()
    }

    // MARK: the overview

    private struct Query {
        var state: PageState?
        var text: String
        var page: Int
    }

    private static func query(_ request: Request) -> Query {
        let parameters = request.uri.queryParameters
        return Query(state: parameters["state"].flatMap { PageState(rawValue: String($0)) }, text: parameters["q"].map(String.init) ?? "",
                     page: parameters["page"].flatMap { Int(String($0)) } ?? 1)
    }

    private func overview(_ request: Request, user: String?) async throws -> Response {
        let snapshot = try await current()
        let query = Self.query(request)
        let (rows, matched, pages) = snapshot.select(state: query.state, query: query.text, page: query.page, perPage: Self.perPage)
        let page = min(max(1, query.page), pages)
        func link(state: PageState?, page: Int = 1) -> String {
            var items: [(String, String)] = []
            if let state { items.append(("state", state.rawValue)) }
            if !query.text.isEmpty { items.append(("q", query.text)) }
            if page > 1 { items.append(("page", String(page))) }
            return "/" + (items.isEmpty ? "" : "?" + items.map { "\($0.0)=\(Self.percent($0.1))" }.joined(separator: "&"))
        }
        let view = OverviewView(
            title: Self.summary(snapshot), version: snapshot.version, stale: snapshot.isStale, freshness: Self.freshness(snapshot),
            totals: PageState.allCases.map { state in
                TotalView(state: state.rawValue, label: state.label, count: snapshot.totals[state] ?? 0, href: link(state: query.state == state ? nil : state),
                          current: query.state == state)
            },
            states: [StateOption(value: "", label: "any", selected: query.state == nil)]
                + PageState.allCases.map { StateOption(value: $0.rawValue, label: $0.label, selected: query.state == $0) },
            query: query.text, filtered: query.state != nil || !query.text.isEmpty, matched: matched, total: snapshot.repositories.count,
            paged: pages > 1, page: page, pages: pages,
            previous: page > 1 ? link(state: query.state, page: page - 1) : nil, next: page < pages ? link(state: query.state, page: page + 1) : nil,
            hasRows: !rows.isEmpty,
            rows: rows.map { repository in
                RowView(name: repository.name, href: "/repositories/" + Self.percent(repository.name), state: repository.state.rawValue,
                        label: repository.state.label, remotes: repository.remotes.map { RemoteView($0, now: snapshot.generatedAt) })
            })
        return html(library.render(view, withTemplate: "overview") ?? "")
    }

    private func overviewJSON(_ request: Request) async throws -> Response {
        let snapshot = try await current()
        let query = Self.query(request)
        let (rows, matched, pages) = snapshot.select(state: query.state, query: query.text, page: query.page, perPage: Self.perPage)
        return Self.json(OverviewAnswer(
            version: snapshot.version, generatedAt: snapshot.generatedAt, lastPass: snapshot.lastPass?.finishedAt, stale: snapshot.isStale,
            totals: Dictionary(uniqueKeysWithValues: PageState.allCases.map { ($0.rawValue, snapshot.totals[$0] ?? 0) }),
            matched: matched, page: min(max(1, query.page), pages), pages: pages, repositories: Array(rows)))
    }

    // MARK: one repository

    private func repository(_ request: Request, name: String, user: String?, json: Bool) async throws -> Response {
        let snapshot = try await current()
        guard let repository = snapshot.repositories.first(where: { $0.name == name }) else {
            let message = "No repository is named \(name) in this daemon's configuration."
            if json { return Self.json(ErrorAnswer(error: message), status: .notFound) }
            return html(library.render(NotFoundView(title: "Not found", version: snapshot.version, stale: snapshot.isStale,
                                                    freshness: Self.freshness(snapshot), message: message), withTemplate: "notFound") ?? "",
                        status: .notFound)
        }
        let offset = max(0, (request.uri.queryParameters["journal"].flatMap { Int(String($0)) } ?? 0))
        let config = await state.config
        let cache = Cache(name: name, stateDirectory: config.stateDirectory).path
        let detail = try await offThePool {
            Result { () throws -> RepositoryDetail in
                let runs = try store.runs(repository: name, limit: 30)
                let journal = try store.journalPage(repository: name, offset: offset, limit: Self.journalPerPage)
                let backups = try store.backups(repository: name)
                var diverged: [RefUpdate] = []
                for remote in repository.remotes where remote.state == .diverged {
                    if let run = remote.lastRunId { diverged += try store.divergedRefs(repository: name, remote: remote.name, runId: run) }
                }
                return RepositoryDetail(runs: runs, journal: journal.rows, more: journal.more, backups: backups, diverged: diverged)
            }
        }.get()
        if json {
            return Self.json(RepositoryAnswer(repository: repository, runs: detail.runs.map(RunAnswer.init), journal: detail.journal.map(RefAnswer.init),
                                              journalOffset: offset, journalMore: detail.more, diverged: detail.diverged.map(RefAnswer.init),
                                              backups: detail.backups.map(RefAnswer.init)))
        }
        let urls = Dictionary(repository.remotes.map { ($0.name, $0.url) }, uniquingKeysWith: { a, _ in a })
        let longest = detail.runs.compactMap { run in run.finishedAt.map { $0.timeIntervalSince(run.startedAt) } }.max() ?? 1
        let base = "/repositories/" + Self.percent(name)
        let view = RepositoryView(
            title: name, version: snapshot.version, stale: snapshot.isStale, freshness: Self.freshness(snapshot),
            name: name, state: repository.state.rawValue, label: repository.state.label,
            queued: request.uri.queryParameters["queued"] != nil,
            canSync: user != nil, syncAction: base + "/sync", csrf: user.map { access.csrfToken(for: $0) } ?? "",
            remotes: repository.remotes.map { RemoteView($0, now: snapshot.generatedAt) },
            hasDiverged: !detail.diverged.isEmpty,
            diverged: detail.diverged.map { DivergedView(repository: name, remote: $0.remote, ref: $0.ref, old: Self.short($0.oldOid), new: Self.short($0.newOid)) },
            hasRuns: !detail.runs.isEmpty,
            runs: detail.runs.map { run in
                let took = run.finishedAt.map { $0.timeIntervalSince(run.startedAt) }
                return RunView(iso: Self.iso(run.startedAt), started: Self.shown(run.startedAt), trigger: run.trigger, result: run.result.rawValue,
                               duration: took.map(formatDuration) ?? "running", width: took.map { Int(($0 / max(longest, 0.001) * 100).rounded()) } ?? 100,
                               summary: run.summary)
            },
            hasJournal: !detail.journal.isEmpty,
            journal: detail.journal.map { row in
                JournalView(iso: Self.iso(row.recordedAt), when: Self.shown(row.recordedAt), remote: row.remote, ref: row.ref, old: Self.short(row.oldOid),
                            new: Self.short(row.newOid), action: row.action.rawValue, outcome: row.outcome.rawValue, message: row.message)
            },
            newer: offset > 0 ? base + (offset - Self.journalPerPage > 0 ? "?journal=\(offset - Self.journalPerPage)" : "") : nil,
            older: detail.more ? base + "?journal=\(offset + Self.journalPerPage)" : nil,
            hasBackups: !detail.backups.isEmpty,
            backups: detail.backups.compactMap { row in
                row.backupRef.map { BackupView(backup: $0, remote: row.remote, ref: row.ref, old: Self.short(row.oldOid), iso: Self.iso(row.recordedAt),
                                               when: Self.shown(row.recordedAt), cache: cache, url: urls[row.remote] ?? row.remote) }
            })
        return html(library.render(view, withTemplate: "repository") ?? "")
    }

    /// The sync button: a signed-in user, the form's CSRF token, and a request from this page's own origin.
    private func syncNow(_ request: Request, name: String, user: String?) async throws -> Response {
        guard let user else {
            return textResponse(.forbidden, "the sync button needs a signed-in user: set daemon.ui.users_file\n")
        }
        if let site = request.headers[HTTPField.Name("Sec-Fetch-Site")!], site != "same-origin" {
            return textResponse(.forbidden, "a sync is asked for from the status page itself\n")
        }
        var body = try await request.body.collect(upTo: 4096)
        let form = body.readString(length: body.readableBytes) ?? ""
        let fields = Dictionary(form.split(separator: "&").map { pair -> (String, String) in
            let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" }
            return (parts.first ?? "", parts.count > 1 ? parts[1] : "")
        }, uniquingKeysWith: { a, _ in a })
        guard access.checkCSRF(fields["csrf"], user: user) else {
            return textResponse(.forbidden, "the form's token is missing or stale: reload the page and press the button again\n")
        }
        guard await scheduler.trigger(name, by: "page") else {
            return textResponse(.notFound, "no repository is named \(name) in this daemon's configuration\n")
        }
        var headers = HTTPFields()
        headers[.location] = "/repositories/" + Self.percent(name) + "?queued=1"
        return Response(status: .seeOther, headers: headers)
    }
}
