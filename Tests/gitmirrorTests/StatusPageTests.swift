import Foundation
import MirrorCore
import Testing
import TestSupport

/// The daemon's status page (#28), loaded in headless Chromium as a person opens it: repositories in
/// each state, the totals, the filter and the search, a repository's page, hostile text shown as text,
/// the JSON beside it, and who may open it at all.
@Suite(.onTestThreads) struct StatusPageTests {
    /// Five repositories: in step, diverged, failing (no such secondary), failing with a refusal whose
    /// text is HTML, and one whose primary never answers (syncing, its secondary never synced).
    static func fleet(_ name: String, listen: String? = nil, daemon: (Sandbox) throws -> String = { _ in "interval: 10m" })
        throws -> (scenario: Scenario, daemon: DaemonProcess, silent: SilentServer) {
        let scenario = try Scenario(name)
        try scenario.primary.commit("first")
        let primary = scenario.url(scenario.primary)
        let inStep = try scenario.secondary("in-step-copy")
        let diverged = try scenario.secondary("diverged-copy")
        try diverged.commit("only on the secondary")
        let hostile = try scenario.secondary("hostile-copy")
        try hostile.refuse("refs/heads/main", saying: #"<img src=x onerror="document.body.dataset.pwned=1"> no pushes today"#)
        let silent = try SilentServer(sandbox: scenario.sandbox)
        try scenario.configure(repositories: [
            .init("in-step", primary: primary, secondaries: ["{name: copy, url: \"\(scenario.url(inStep))\"}"]),
            .init("diverged", primary: primary, secondaries: ["{name: copy, url: \"\(scenario.url(diverged))\"}"]),
            .init("missing", primary: primary, secondaries: ["{name: copy, url: \"\(scenario.url(inStep).replacingOccurrences(of: "in-step-copy", with: "nowhere"))\"}"]),
            .init("hostile", primary: primary, secondaries: ["{name: copy, url: \"\(scenario.url(hostile))\"}"]),
            .init("hanging", primary: "git://127.0.0.1:\(silent.port)/hanging.git", secondaries: ["{name: copy, url: \"\(scenario.url(inStep).replacingOccurrences(of: "in-step-copy", with: "hanging-copy"))\", stall_timeout: 5m}"]),
        ], daemon: try daemon(scenario.sandbox))
        var arguments: [String] = []
        var port: Int?
        if let listen {
            port = try Network.freePort()
            arguments = ["--listen", "\(listen):\(port!)"]
        }
        let process = try DaemonProcess(sandbox: scenario.sandbox, config: scenario.config, port: port, arguments: arguments)
        try process.waitUntilReady()
        // Four runs end (the fifth hangs on the silent primary, syncing).
        let store = try scenario.store()
        let settled = eventually(within: 60) {
            let states = try store.remoteStates()
            let ended = Set(states.map(\.repository)).intersection(["in-step", "diverged", "missing", "hostile"]).count == 4
                && states.filter { $0.role == .secondary }.count >= 4
            let hanging = try store.progress().contains { $0.repository == "hanging" }
            return ended && hanging
        }
        guard settled else { throw TestError("the daemon's first runs did not settle:\n\(process.logText.suffix(4000))") }
        return (scenario, process, silent)
    }

    @Test func theOverviewShowsEveryStateWorstFirstAndHostileTextAsText() throws {
        let (scenario, daemon, _) = try Self.fleet("status-page")
        let sandbox = scenario.sandbox

        // When a person opens the overview
        let page = try Browser.dom(daemon.url + "/", sandbox: sandbox)

        // Then the totals count each repository by its worst remote
        #expect(page.contains(#"<span class="count">2</span> failing"#), "\(page)")
        #expect(page.contains(#"<span class="count">1</span> diverged"#))
        #expect(page.contains(#"<span class="count">1</span> syncing"#))
        #expect(page.contains(#"<span class="count">1</span> in step"#))
        // and the rows come worst first: the failing ones, then diverged, syncing, in step
        let order = ["hostile", "missing", "diverged", "hanging", "in-step"].map { name in
            page.range(of: "data-repository=\"\(name)\"")?.lowerBound
        }
        let positions = order.compactMap { $0 }
        #expect(positions.count == 5)
        if positions.count == 5 {
            // (the two failing ones in either order: both failed on their first run)
            #expect(max(positions[0], positions[1]) < positions[2] && positions[2] < positions[3] && positions[3] < positions[4])
        }
        // with each failure's class and first line
        #expect(page.contains("not_found"))
        #expect(page.contains("rejected"))
        // and the refusal's HTML shown as text: no element made of it, its handler never ran
        #expect(page.contains("&lt;img src=x onerror="))
        #expect(!page.contains("<img"))
        #expect(!page.contains("data-pwned"))

        // When the person filters by state, and searches by name (links that can be shared)
        let failing = try Browser.dom(daemon.url + "/?state=failing", sandbox: sandbox)
        let searched = try Browser.dom(daemon.url + "/?q=DIVER", sandbox: sandbox)

        // Then only those rows are left
        #expect(failing.contains("data-repository=\"hostile\"") && failing.contains("data-repository=\"missing\""))
        #expect(!failing.contains("data-repository=\"in-step\"") && !failing.contains("data-repository=\"diverged\""))
        #expect(failing.contains("2 of 5 repositories"))
        #expect(searched.contains("data-repository=\"diverged\"") && !searched.contains("data-repository=\"hostile\""))

        // When the person opens the diverged repository's page
        let repository = try Browser.dom(daemon.url + "/repositories/diverged", sandbox: sandbox)

        // Then it shows the remote's URL, the diverged ref and what to do about it, and the run that found it
        #expect(repository.contains("diverged-copy.git"))
        #expect(repository.contains("Diverged refs"))
        #expect(repository.contains("gitmirror accept diverged --remote copy --ref refs/heads/main"))
        #expect(repository.contains("class=\"run result-"))
        #expect(repository.contains("Sync now") == false, "no sync button for an anonymous visitor")

        // And the same data is JSON for scripts
        let json = try daemon.get("/api/v1/repositories")
        #expect(json.status == 200)
        let answer = try JSONSerialization.jsonObject(with: json.body) as? [String: Any]
        let totals = answer?["totals"] as? [String: Int]
        #expect(totals?["failing"] == 2 && totals?["diverged"] == 1 && totals?["syncing"] == 1 && totals?["in_step"] == 1)
        let unknown = try daemon.get("/api/v1/repositories/nope")
        #expect(unknown.status == 404)

        // And every answer forbids scripts and styles from anywhere but the page itself
        #expect(json.headers.contains { $0.key.lowercased() == "content-security-policy" && $0.value.contains("script-src 'self'") })

        // When a run ends while the page is open (a manual sync beside the daemon)
        let synced = try scenario.gitmirror("sync", "in-step")
        #expect(synced.status == 0, "\(synced)")
        let success = try #require(try scenario.store().remoteStates().first { $0.repository == "in-step" && $0.remote == "copy" }?.lastSuccess)
        let stamp = ISO8601DateFormatter().string(from: success)
        // Then the open page's script sees the version move on and puts the new data in place, without a reload
        // (its first answer is the data kept while the new is made; 30 s of the browser's time: six looks)
        let live = try Browser.dom(daemon.url + "/", sandbox: sandbox, milliseconds: 30_000)
        #expect(live.contains("data-refreshed="), "the script never replaced the page")
        #expect(live.contains("datetime=\"\(stamp)\""), "the page does not show the run that ended at \(stamp)")

        // The README's picture is this page (GITMIRROR_SCREENSHOT=path keeps a copy)
        let shot = sandbox.path("status-page.png")
        try Browser.screenshot(daemon.url + "/", to: shot, sandbox: sandbox, height: 760)
        if let keep = ProcessInfo.processInfo.environment["GITMIRROR_SCREENSHOT"] {
            try? FileManager.default.removeItem(atPath: keep)
            try FileManager.default.copyItem(at: shot, to: URL(fileURLWithPath: keep))
        }
    }

    @Test func fromAnotherAddressThePageIsRefusedUnlessSignedIn() throws {
        // Given a daemon listening on every address, its page at the default (loopback only)
        let (scenario, daemon, _) = try Self.fleet("status-page-remote", listen: "0.0.0.0")
        let other = try Network.nonLoopbackAddress()
        let client = HTTPClient(timeout: 10)

        // When a client on another address opens it, in a browser and as a script
        let page = try Browser.dom("http://\(other):\(daemon.port)/", sandbox: scenario.sandbox)
        let answer = try client.send("GET", URL(string: "http://\(other):\(daemon.port)/api/v1/repositories")!)

        // Then neither shows a repository
        #expect(answer.status == 403)
        #expect(page.contains("clients on this machine only"))
        #expect(!page.contains("hostile") && !answer.text.contains("hostile"))
        // and a loopback client coming through a proxy is another address too
        let proxied = try client.send("GET", URL(string: daemon.url + "/")!, headers: ["X-Forwarded-For": "203.0.113.9"])
        #expect(proxied.status == 403)
        // while the hooks and health endpoints answer as before
        #expect(try client.send("GET", URL(string: "http://\(other):\(daemon.port)/healthz")!).status == 200)
    }

    @Test func signedInUsersSeeItFromAnywhereAndOnlyTheyMaySyncWithTheFormsToken() throws {
        // Given access: any with a users file (a bcrypt hash) and a token file
        let hash = try Shell.run(["python3", "-W", "ignore", "-c", "import crypt; print(crypt.crypt('correct horse', crypt.mksalt(crypt.METHOD_BLOWFISH)))"])
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(hash.hasPrefix("$2b$"))
        let (scenario, daemon, _) = try Self.fleet("status-page-users", listen: "0.0.0.0") { sandbox in
            let users = try sandbox.write("ui-users", "ops:\(hash)\n")
            let token = try sandbox.write("ui-token", "page-token-canary-7c1e\n")
            return "interval: 10m\nui:\n  access: any\n  users_file: \(users.path)\n  token_file: \(token.path)"
        }
        let other = try Network.nonLoopbackAddress()
        let base = "http://\(other):\(daemon.port)"
        let client = HTTPClient(timeout: 10)
        let basic = "Basic " + Data("ops:correct horse".utf8).base64EncodedString()

        // When a client comes without credentials, with a wrong password, and with the right one
        let anonymous = try client.send("GET", URL(string: base + "/")!)
        let wrong = try client.send("GET", URL(string: base + "/")!, headers: ["Authorization": "Basic " + Data("ops:nope".utf8).base64EncodedString()])
        let right = try client.send("GET", URL(string: base + "/repositories/in-step")!, headers: ["Authorization": basic])
        let script = try client.send("GET", URL(string: base + "/api/v1/repositories")!, headers: ["Authorization": "Bearer page-token-canary-7c1e"])

        // Then only the signed-in ones see the page, and the browser is asked to sign in
        #expect(anonymous.status == 401 && wrong.status == 401)
        #expect(anonymous.headers.contains { $0.key.lowercased() == "www-authenticate" && $0.value.hasPrefix("Basic") })
        #expect(right.status == 200 && right.text.contains("Sync now"))
        #expect(script.status == 200 && script.text.contains("\"in-step\""))
        #expect(!right.text.contains("correct horse") && !script.text.contains("page-token-canary-7c1e"))

        // When the sync button's form is posted without its token, then with it
        let csrf = try #require(right.text.range(of: #"name="csrf" value=""#).map { right.text[$0.upperBound...].prefix(64) })
        let forged = try client.send("POST", URL(string: base + "/repositories/in-step/sync")!,
                                     headers: ["Authorization": basic, "Content-Type": "application/x-www-form-urlencoded"], body: Data("csrf=0000".utf8))
        let runsBefore = try scenario.store().runs(repository: "in-step").count
        func version() throws -> String {
            let answer = try client.send("GET", URL(string: base + "/api/v1/version")!, headers: ["Authorization": basic])
            return (try JSONSerialization.jsonObject(with: answer.body) as? [String: Any])?["version"] as? String ?? ""
        }
        let versionBefore = try version()
        let pressed = try client.send("POST", URL(string: base + "/repositories/in-step/sync")!,
                                      headers: ["Authorization": basic, "Content-Type": "application/x-www-form-urlencoded"], body: Data("csrf=\(csrf)".utf8))

        // Then the forged one is refused, and the real one runs the repository now, as the page's trigger
        #expect(forged.status == 403)
        #expect(pressed.status == 303)
        #expect(eventually(within: 20) { try scenario.store().runs(repository: "in-step").contains { $0.trigger == "page" } }, "\(runsBefore) runs before")
        // and the version the page's script watches moves on when that run has ended (the page then fetches itself again)
        #expect(eventually(within: 20) { try version() != versionBefore && !versionBefore.isEmpty })
        // and a token (a script) cannot press it: the button is a signed-in person's
        let byToken = try client.send("POST", URL(string: base + "/repositories/in-step/sync")!,
                                      headers: ["Authorization": "Bearer page-token-canary-7c1e"], body: Data("csrf=\(csrf)".utf8))
        #expect(byToken.status == 403)
        // and neither secret reached the daemon's log
        #expect(!daemon.logText.contains("correct horse") && !daemon.logText.contains("page-token-canary-7c1e"))
    }
}
