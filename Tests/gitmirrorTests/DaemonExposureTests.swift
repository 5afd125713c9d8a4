import Foundation
import Synchronization
import MirrorCore
import Testing
import TestSupport

/// Any client that reaches the daemon's port — idle floods, clients that send a byte a second, huge
/// unsigned hooks, hostile names, replays — against the daemon as a process: `/healthz` keeps
/// answering, descriptors stay free, the log stays the daemon's, and a delivery runs once.
@Suite(.onTestThreads) struct DaemonExposureTests {
    static let hookSecret = "canary-exposure-hook-secret-31"

    func daemon(_ name: String, http: String = "") throws -> (Scenario, DaemonProcess) {
        let scenario = try Scenario(name)
        try scenario.primary.commit("first")
        let one = try scenario.secondary("one")
        try scenario.configure(secondaries: "- name: one\n  url: \(scenario.url(one))",
                               daemon: "interval: 1h\nhooks:\n  github_secret_env: HOOK_SECRET\nhttp:\n\(http.isEmpty ? "  header_timeout: 3s" : http)")
        return (scenario, try scenario.startDaemon(environment: ["HOOK_SECRET": Self.hookSecret]))
    }

    @Test func elevenHundredIdleConnectionsLeaveDescriptorsFreeAndHealthAnswering() throws {
        // Given a daemon, and one peer (127.0.0.2) that opens 1,100 connections and says nothing
        let (scenario, daemon) = try daemon("exposure-flood")
        defer { withExtendedLifetime(scenario) {} }
        let pid = daemon.process.pid
        let before = openDescriptors(of: pid)
        RawConnection.raiseDescriptorLimit()
        var flood: [RawConnection] = []
        for _ in 0..<1100 { flood.append(try RawConnection(from: "127.0.0.2", to: daemon.port)) }

        // Then /healthz answers another peer all along, and the flooding peer holds at most its cap of connections
        for _ in 0..<5 { #expect(try daemon.get("/healthz").status == 200) }
        #expect(openDescriptors(of: pid) <= before + 64 + 16, "\(openDescriptors(of: pid)) descriptors, \(before) before")
        // and every connection it accepted is closed by its header deadline, giving the descriptors back (connections
        // the kernel's listen queue dropped never reached the daemon: they hold nothing of it)
        #expect(eventually(within: 15) { openDescriptors(of: pid) <= before + 4 }, "\(openDescriptors(of: pid)) descriptors, \(before) before")
        #expect(flood.filter { $0.closedByPeer }.count >= 64)
        #expect(daemon.logText.contains("max_connections_per_peer"), "\(daemon.logText)")
        #expect(try daemon.get("/healthz").status == 200)
    }

    @Test func clientsThatSendHeadersOrABodyOneByteAtATimeAreClosedAtTheirDeadline() throws {
        // Given a daemon whose headers and bodies must arrive within 2 s, and 200 slow clients from four addresses
        let (scenario, daemon) = try daemon("exposure-slow", http: "  header_timeout: 2s\n  body_timeout: 2s")
        defer { withExtendedLifetime(scenario) {} }
        var slowHeaders: [RawConnection] = [], slowBodies: [RawConnection] = []
        for index in 0..<100 { slowHeaders.append(try RawConnection(from: "127.0.0.\(3 + index % 2)", to: daemon.port)) }
        for index in 0..<100 { slowBodies.append(try RawConnection(from: "127.0.0.\(5 + index % 2)", to: daemon.port)) }
        #expect(eventually(within: 5) { slowHeaders.allSatisfy { $0.send("GET /healthz HTTP/1.1\r\nHost: gitmirror\r\nX-Slow: ") } })
        #expect(eventually(within: 5) { slowBodies.allSatisfy { $0.send("POST /hooks/github HTTP/1.1\r\nHost: gitmirror\r\nContent-Length: 100000\r\n\r\n") } })

        // When each sends one more byte every half second
        let started = Date()
        var healthy = true
        while Date().timeIntervalSince(started) < 10, !(slowHeaders + slowBodies).allSatisfy(\.closedByPeer) {
            for connection in slowHeaders { connection.send("a") }
            for connection in slowBodies { connection.send("x") }
            healthy = healthy && ((try? daemon.get("/healthz"))?.status == 200)
            usleep(500_000)
        }

        // Then every one of them was closed, and /healthz answered throughout
        let openHeaders = slowHeaders.filter { !$0.closedByPeer }.count, openBodies = slowBodies.filter { !$0.closedByPeer }.count
        #expect(openHeaders == 0, "\(openHeaders) slow-header clients still open")
        #expect(openBodies == 0, "\(openBodies) slow-body clients still open")
        #expect(healthy)
    }

    @Test func hugeUnsignedHooksAreRefusedUnparsedWhileHealthAnswers() throws {
        // Given six 24 MB hooks with a bad signature, naming acme/app, sent at once
        let (scenario, daemon) = try daemon("exposure-huge")
        defer { withExtendedLifetime(scenario) {} }
        let padding = String(repeating: "x", count: 24 << 20)
        let body = Data(#"{"repository": {"full_name": "acme/app-unparsed-canary"}, "padding": "\#(padding)"}"#.utf8)
        let client = HTTPClient(timeout: 60, maxBodySize: 1 << 20)
        let url = URL(string: daemon.url + "/hooks/github")!
        let statuses = Mutex<[Int]>([])
        let senders = (0..<6).map { _ in
            Thread {
                let status = (try? client.send("POST", url, headers: ["X-Hub-Signature-256": "sha256=" + String(repeating: "0", count: 64),
                                                                      "X-GitHub-Event": "push"], body: body))?.status ?? -1
                statuses.withLock { $0.append(status) }
            }
        }
        senders.forEach { $0.start() }

        // Then /healthz answers within a liveness probe's patience all along
        var slowest: TimeInterval = 0
        while statuses.withLock({ $0.count }) < 6 {
            let asked = Date()
            #expect(try daemon.get("/healthz").status == 200)
            slowest = max(slowest, Date().timeIntervalSince(asked))
            usleep(50_000)
        }
        #expect(slowest < 3, "a health check took \(slowest) s")
        // and each hook was refused, without its body being parsed to name a repository in the log
        #expect(statuses.withLock { $0 } == Array(repeating: 401, count: 6))
        #expect(!daemon.logText.contains("app-unparsed-canary"), "\(daemon.logText.suffix(2000))")
    }

    @Test func aHostileNameInASignedHookCannotWriteALineOfItsOwnInTheTextLog() throws {
        // Given a signed hook (a compromised forge) whose repository name holds a newline and a forged log line
        let (scenario, daemon) = try daemon("exposure-log")
        defer { withExtendedLifetime(scenario) {} }
        let forged = "2026-12-03T00:00:00Z info gitmirror: FORGED-LINE"
        let payload = #"{"repository": {"full_name": "acme/x\n\#(forged)\u001b]0;t\u0007", "clone_url": "https://example.invalid/x.git"}}"#
        let response = try daemon.post("/hooks/github", body: payload,
                                       headers: ["X-Hub-Signature-256": Webhooks.sign(Array(payload.utf8), secret: Self.hookSecret), "X-GitHub-Event": "push"])

        // Then it is refused (no such repository), logged on one line with the name escaped
        #expect(response.status == 404, "\(response.text)")
        let lines = daemon.logText.split(separator: "\n")
        #expect(!lines.contains { $0.hasPrefix("2026-12-03T00:00:00Z") }, "\(daemon.logText)")
        #expect(lines.contains { $0.contains("acme/x\\n2026-12-03T00:00:00Z info gitmirror: FORGED-LINE\\e]0;t\\u{7}") }, "\(daemon.logText)")
        #expect(!daemon.logText.contains("\u{1B}"))
    }

    @Test func aReplayedDeliveryIsAnsweredWithoutASecondRun() throws {
        // Given a signed push delivery that the daemon accepted and ran
        let (scenario, daemon) = try daemon("exposure-replay")
        defer { withExtendedLifetime(scenario) {} }
        try scenario.primary.commit("second")
        let payload = #"{"ref": "refs/heads/main", "after": "1", "repository": {"full_name": "acme/app", "clone_url": "\#(scenario.url(scenario.primary))"}}"#
        let signature = Webhooks.sign(Array(payload.utf8), secret: Self.hookSecret)
        let first = try daemon.post("/hooks/github", body: payload,
                                    headers: ["X-Hub-Signature-256": signature, "X-GitHub-Event": "push", "X-GitHub-Delivery": "delivery-1"])
        #expect(first.status == 202, "\(first.text)")
        #expect(eventually(within: 30) { try scenario.store().runs(repository: "app").contains { $0.trigger == "github" && $0.finishedAt != nil } })

        // When it is replayed 30 times, with its own delivery id and with new ones
        var replies: [Int] = []
        for attempt in 0..<30 {
            replies.append(try daemon.post("/hooks/github", body: payload, headers: ["X-Hub-Signature-256": signature, "X-GitHub-Event": "push",
                                                                                     "X-GitHub-Delivery": attempt % 2 == 0 ? "delivery-1" : "new-\(attempt)"]).status)
        }

        // Then each is answered 200 without a run: one run in all came from the hook
        #expect(replies == Array(repeating: 200, count: 30))
        #expect(try scenario.store().runs(repository: "app").filter { $0.trigger == "github" }.count == 1)
        #expect(daemon.logText.components(separatedBy: "sync triggered by webhook").count == 2, "\(daemon.logText)")
    }
}
