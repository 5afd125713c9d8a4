import Foundation
import Logging
import Synchronization
import ServiceLifecycleTestKit
import Testing
import TestSupport
@testable import MirrorCore

/// The scheduling policy in process, on a clock the test moves: no test waits for a real interval.
@Suite(.onTestThreads) struct SchedulerTests {
    /// A clock that moves only when told (at a multiple of every interval here), jitter that always
    /// picks the middle of its range (or what the test says), and every repository's slot at phase 0
    /// (unless `phases`): a run that ends at a slot is next due one interval later.
    final class Stage: Sendable {
        let clock = Mutex(Date(timeIntervalSince1970: 1_800_000_000))
        /// How often the scheduler asked the time: a loop that spins asks without end.
        let reads = Mutex(0)
        let picks = Mutex<[Double]>([])
        /// The runs the scheduler started: (repository, trigger).
        let started = Mutex<[(String, String)]>([])
        /// What each run reports: the classes its secondary fails with, nil for success.
        let failures = Mutex<[ErrorClass?]>([])
        let phases: Bool

        init(phases: Bool = false) { self.phases = phases }

        var timing: Scheduler.Timing {
            Scheduler.Timing(now: { self.reads.withLock { $0 += 1 }; return self.clock.withLock { $0 } }, random: { range in
                self.picks.withLock { $0.isEmpty ? (range.lowerBound + range.upperBound) / 2 : $0.removeFirst() }
            }, phase: { [phases] name in phases ? Scheduler.Timing.phase(of: name) : 0 })
        }

        var now: Date { clock.withLock { $0 } }
        func advance(_ seconds: TimeInterval) { clock.withLock { $0 = $0.addingTimeInterval(seconds) } }

        func report(_ mirror: Mirror) -> RepositoryReport {
            let failure = failures.withLock { $0.isEmpty ? nil : $0.removeFirst() }
            let primary = RemoteReport(repository: mirror.name, remote: "primary", role: .primary, url: "git://p/x", result: .upToDate)
            var secondary = RemoteReport(repository: mirror.name, remote: "backup", role: .secondary, url: "git://s/x", result: .upToDate)
            if let failure {
                secondary.result = .failed
                secondary.failure = SyncFailure(failure, "test failure")
            }
            return RepositoryReport(repository: mirror.name, runId: nil, primary: primary, secondaries: [secondary], duration: 0)
        }
    }

    func config(_ daemon: String, repositories: [String] = ["app"]) throws -> Config {
        let list = repositories.map { "  - {name: \($0), primary: 'git://127.0.0.1/\($0).git', secondaries: [{name: backup, url: 'git://127.0.0.2/\($0).git'}]}" }
        return try ConfigLoader().parse("daemon:\n" + daemon + "\nrepositories:\n" + list.joined(separator: "\n") + "\n",
                                        file: URL(fileURLWithPath: "/etc/gitmirror/mirrors.yaml"))
    }

    /// A scheduler whose runs finish when the test says: `release` ends the oldest running one.
    func scheduler(_ config: Config, _ stage: Stage, startNow: Set<String> = [], gate: Gate? = nil) -> Scheduler {
        Scheduler(config: config, logger: Logger(label: "test"), startNow: startNow, timing: stage.timing,
                  runner: { mirror, trigger in
                      stage.started.withLock { $0.append((mirror.name, trigger)) }
                      await gate?.wait()
                      return stage.report(mirror)
                  },
                  onFinished: { _ in }, onSchedule: { _ in })
    }

    /// Holds runs until released, one at a time; a release with nobody waiting lets the next one through.
    actor Gate {
        private var waiting: [CheckedContinuation<Void, Never>] = []
        private var permits = 0
        private var arrivals: [CheckedContinuation<Void, Never>] = []

        func wait() async {
            if permits > 0 {
                permits -= 1
                return
            }
            await withCheckedContinuation {
                waiting.append($0)
                arrivals.forEach { $0.resume() }
                arrivals = []
            }
        }

        /// Until at least one run is held.
        func held() async {
            if waiting.isEmpty { await withCheckedContinuation { arrivals.append($0) } }
        }

        func release() {
            if waiting.isEmpty { permits += 1 } else { waiting.removeFirst().resume() }
        }
    }

    /// Starts what is due and lets each started run finish (the runner does not wait).
    func settle(_ scheduler: Scheduler) async {
        await scheduler.startDueRuns()
        _ = await scheduler.drain(within: nil)
    }

    @Test func firstRunsSpreadOverStartSpreadAndInterruptedOnesRunAtOnce() async throws {
        let stage = Stage()
        // Default: a tenth of the interval, at most 30 s (the middle of 0..<30 is 15)
        let defaulted = scheduler(try config("  interval: 1h", repositories: ["app", "web"]), stage, startNow: ["web"])
        #expect(await defaulted.nextRun(of: "app") == stage.now.addingTimeInterval(15))
        #expect(await defaulted.nextRun(of: "web") == stage.now)
        let short = scheduler(try config("  interval: 20s"), stage)
        #expect(await short.nextRun(of: "app") == stage.now.addingTimeInterval(1))
        // start_spread: 0s starts at once; a chosen spread is honoured
        #expect(await scheduler(try config("  interval: 1h\n  start_spread: 0s"), stage).nextRun(of: "app") == stage.now)
        #expect(await scheduler(try config("  interval: 1h\n  start_spread: 2m"), stage).nextRun(of: "app") == stage.now.addingTimeInterval(60))
    }

    @Test func aFleetDueAllAtOnceIsSpreadEvenlyAcrossTheIntervalAndStaysSpread() async throws {
        // Given 200 repositories all due at once (a start with no spread), each at its own slot
        let stage = Stage(phases: true)
        let names = (0..<200).map { "repo-\($0)" }
        let scheduler = scheduler(try config("  interval: 5m\n  start_spread: 0s\n  max_connections: 200", repositories: names), stage)

        // When they have all run
        await settle(scheduler)
        #expect(stage.started.withLock { $0.count } == 200)

        // Then their next runs fall across one whole interval, half an interval on at the earliest,
        // and every tenth of it holds about a tenth of them (none empty, none a burst)
        var next: [String: Date] = [:]
        for name in names { next[name] = await scheduler.nextRun(of: name) }
        #expect(next.count == names.count, "every repository has its next run")
        let start = stage.now.addingTimeInterval(150)
        #expect(next.values.allSatisfy { $0 >= start && $0 < start.addingTimeInterval(300) })
        var buckets = [Int](repeating: 0, count: 10)
        for date in next.values { buckets[Int((date.timeIntervalSince(start) / 30).rounded(.down))] += 1 }
        #expect(buckets.allSatisfy { (8...32).contains($0) }, "\(buckets)")

        // And when each has run at its slot, the next comes exactly one interval later: the spread holds
        for (name, date) in next.sorted(by: { $0.value < $1.value }) {
            stage.advance(date.timeIntervalSince(stage.now))
            await settle(scheduler)
            #expect(await scheduler.nextRun(of: name) == date.addingTimeInterval(300))
        }
        #expect(stage.started.withLock { $0.count } == 400)
    }

    @Test func aPassEndsWhenEveryRepositoryRanAndWaitingRunsCountAsOverdue() async throws {
        // Given three repositories, one connection, and what the scheduler reports
        let stage = Stage()
        let passes = Mutex<[PassRecord]>([])
        let overdue = Mutex<[Int]>([])
        let gate = Gate()
        let scheduler = Scheduler(config: try config("  interval: 10m\n  start_spread: 0s\n  max_connections: 1", repositories: ["a", "b", "c"]),
                                  logger: Logger(label: "test"), timing: stage.timing,
                                  runner: { mirror, _ in await gate.wait(); return stage.report(mirror) },
                                  onFinished: { _ in }, onSchedule: { _ in },
                                  onPass: { pass in passes.withLock { $0.append(pass) } }, onOverdue: { count in overdue.withLock { $0.append(count) } })

        // When the first runs and the others wait past a tenth of the interval (60 s)
        await scheduler.startDueRuns()
        await gate.held()
        stage.advance(61)
        await scheduler.startDueRuns()

        // Then the two waiting are overdue, and no pass is over
        #expect(overdue.withLock { $0 } == [2])
        #expect(await scheduler.overdueCount == 2)
        #expect(passes.withLock { $0 }.isEmpty)

        // When all three have run, one after the other, 10 s each
        for index in 0..<3 {
            stage.advance(10)
            await gate.release()
            _ = await scheduler.drain(within: nil)
            await scheduler.startDueRuns()
            if index < 2 { await gate.held() }
        }

        // Then one pass is recorded, from the start to the end of the last run, and nothing is overdue any more
        let recorded = passes.withLock { $0 }
        #expect(recorded.count == 1 && recorded.first?.repositories == 3, "\(recorded)")
        #expect(recorded.first.map { $0.duration } == 91, "\(recorded)")
        #expect(overdue.withLock { $0 } == [2, 1, 0])
        #expect(await scheduler.overdueCount == 0)
    }

    @Test func aRunAHookStartedNearItsSlotDoesNotRunAgainAtOnce() async throws {
        // Given a repository whose slot is the top of the hour, triggered by a hook ten minutes before it
        let stage = Stage()
        let scheduler = scheduler(try config("  interval: 1h\n  start_spread: 0s"), stage)
        await settle(scheduler)
        stage.advance(3000)
        #expect(await scheduler.trigger("app", by: "github"))
        await settle(scheduler)

        // Then its next run is the slot after (less than half an interval away is too soon)
        #expect(await scheduler.nextRun(of: "app") == stage.now.addingTimeInterval(600 + 3600))
    }

    @Test func failuresBackOffExponentiallyPerRemoteAndASuccessResetsToTheInterval() async throws {
        // Given a secondary that fails with network errors three times, then recovers
        let stage = Stage()
        stage.failures.withLock { $0 = [.network, .network, .network, nil] }
        let scheduler = scheduler(try config("  interval: 1h\n  start_spread: 0s\n  retry_base: 10s\n  retry_cap: 1m"), stage)
        var delays: [TimeInterval] = []
        var notes: [String] = []
        for _ in 0..<4 {
            await settle(scheduler)
            let next = try #require(await scheduler.nextRun(of: "app"))
            delays.append(next.timeIntervalSince(stage.now))
            notes.append(await scheduler.note(of: "app") ?? "")
            stage.advance(delays.last!)
        }
        // Then the retries come after 10 s, 20 s, 40 s, and a success goes back to the repository's slot (the top of the hour)
        #expect(delays == [10, 20, 40, 3530], "\(delays)")
        #expect(notes[2] == "backing off after 3 failures of backup (network)")
        #expect(notes[3] == "")
        #expect(stage.started.withLock { $0.count } == 4)
    }

    @Test func failuresRetryingCannotHealWaitForTheCap() async throws {
        let stage = Stage()
        for lasting in [ErrorClass.auth, .hostKey, .config, .notFound, .readOnly] {
            stage.failures.withLock { $0 = [lasting] }
            let scheduler = scheduler(try config("  start_spread: 0s\n  retry_base: 10s\n  retry_cap: 30m"), stage)
            await settle(scheduler)
            #expect(await scheduler.nextRun(of: "app") == stage.now.addingTimeInterval(1800), "\(lasting)")
            #expect(await scheduler.note(of: "app")?.contains("which retrying will not fix") == true)
        }
        // A diverged ref is reported, not retried sooner: the next run is the regular one
        stage.failures.withLock { $0 = [.diverged] }
        let diverged = scheduler(try config("  interval: 10m\n  start_spread: 0s\n  retry_base: 10s"), stage)
        await settle(diverged)
        #expect(await diverged.nextRun(of: "app") == stage.now.addingTimeInterval(600))
    }

    @Test func triggersDuringARunCoalesceIntoOneFollowUp() async throws {
        // Given a running sync held open
        let stage = Stage()
        let gate = Gate()
        let scheduler = scheduler(try config("  interval: 1h\n  start_spread: 0s"), stage, gate: gate)
        await scheduler.startDueRuns()
        await gate.held()

        // When twenty hooks arrive during it, and one names a repository the file does not have
        for _ in 0..<20 { #expect(await scheduler.trigger("app", by: "github")) }
        #expect(await scheduler.trigger("nope", by: "github") == false)
        await scheduler.startDueRuns()

        // Then nothing else starts while it runs, and exactly one follow-up runs after it, for the hooks
        #expect(stage.started.withLock { $0.count } == 1)
        await gate.release()
        _ = await scheduler.drain(within: nil)
        #expect(await scheduler.note(of: "app") == "queued by a trigger during the last run")
        await scheduler.startDueRuns()
        await gate.held()
        await gate.release()
        _ = await scheduler.drain(within: nil)
        await scheduler.startDueRuns()
        #expect(stage.started.withLock { $0.map(\.1) } == ["schedule", "github"])
        #expect(await scheduler.nextRun(of: "app") == stage.now.addingTimeInterval(3600))
    }

    @Test func noMoreThanMaxConnectionsRunAtOnce() async throws {
        let stage = Stage()
        let gate = Gate()
        let scheduler = scheduler(try config("  start_spread: 0s\n  max_connections: 2\n  max_parallel_repositories: 1", repositories: ["a", "b", "c"]), stage, gate: gate)
        await scheduler.startDueRuns()
        #expect(await scheduler.runningCount == 2)
        await gate.held()
        await gate.release()
        // The third starts once one of the first two is done, and never a fourth at once
        while stage.started.withLock({ $0.count }) < 3 {
            await Task.yield()
            await scheduler.startDueRuns()
            #expect(await scheduler.runningCount <= 2)
        }
        #expect(stage.started.withLock { Set($0.map(\.0)) } == ["a", "b", "c"])
        for _ in 0..<2 { await gate.release() }
        _ = await scheduler.drain(within: nil)
    }

    @Test func dueRepositoriesWaitingForASlotDoNotSpinTheLoop() async throws {
        // Given one slot, taken by a held sync, and a second repository due
        let stage = Stage()
        let gate = Gate()
        let scheduler = scheduler(try config("  start_spread: 0s\n  max_connections: 1", repositories: ["a", "b"]), stage, gate: gate)
        let loop = Task { await scheduler.run() }
        await gate.held()

        // Then the loop sleeps until the slot frees (a spinning loop would read the clock hundreds of times here)
        let before = stage.reads.withLock { $0 }
        try await Task.sleep(for: .milliseconds(200))
        #expect(stage.reads.withLock { $0 } - before < 5)

        // And the freed slot goes to the waiting repository at once
        await gate.release()
        while stage.started.withLock({ $0.count }) < 2 { await Task.yield() }
        await scheduler.stop()
        await gate.release()
        await loop.value
        _ = await scheduler.drain(within: nil)
    }

    @Test func aReloadSchedulesNewRepositoriesAndForgetsRemovedOnes() async throws {
        let stage = Stage()
        let scheduler = scheduler(try config("  start_spread: 0s", repositories: ["app", "old"]), stage)
        await scheduler.update(try config("  start_spread: 10s", repositories: ["app", "new"]))
        #expect(await scheduler.repositoryNames == ["app", "new"])
        #expect(await scheduler.nextRun(of: "new") == stage.now.addingTimeInterval(5))
        #expect(await scheduler.nextRun(of: "old") == nil)
    }

    @Test func stopLetsRunningSyncsFinishWithinTheGraceAndStartsNothingNew() async throws {
        // Given a run in progress under the real run loop
        let stage = Stage()
        let gate = Gate()
        let scheduler = scheduler(try config("  start_spread: 0s", repositories: ["app", "web"]), stage, gate: gate)
        let loop = Task { await scheduler.run() }
        await gate.held()

        // When the daemon stops: the grace runs out while the sync still runs, then it finishes
        await scheduler.stop()
        await loop.value
        #expect(await scheduler.drain(within: 0.05) == false)
        for _ in 0..<2 { await gate.release() }
        #expect(await scheduler.drain(within: 30))
        #expect(await scheduler.runningCount == 0)

        // Then nothing new starts after the stop, even when due
        _ = await scheduler.trigger("app", by: "api")
        await scheduler.startDueRuns()
        #expect(await scheduler.runningCount == 0)
    }
}

/// The daemon's scheduler service under a graceful shutdown (ServiceLifecycleTestKit), with a sync the test holds open.
@Suite(.onTestThreads) struct SchedulerShutdownTests {
    typealias Stage = SchedulerTests.Stage
    typealias Gate = SchedulerTests.Gate

    func service(grace: TimeInterval) throws -> (SchedulerService, Scheduler, WorkerRegistry, Stage, Gate) {
        let stage = Stage(), gate = Gate()
        let scheduler = SchedulerTests().scheduler(try SchedulerTests().config("  start_spread: 0s"), stage, gate: gate)
        let registry = WorkerRegistry()
        let binding = ServerBinding()
        binding.bound("127.0.0.1:9150")
        return (SchedulerService(scheduler: scheduler, registry: registry, grace: { grace }, binding: binding, logger: Logger(label: "test")),
                scheduler, registry, stage, gate)
    }

    /// Until `condition` holds, letting other tasks run (no clock involved).
    func until(_ condition: () async -> Bool) async {
        while await !condition() { await Task.yield() }
    }

    @Test func aShutdownWaitsForTheRunningSyncWithinTheGraceAndStartsNothingNew() async throws {
        let (service, scheduler, registry, stage, gate) = try service(grace: 60)
        final class Order: Sendable { let list = Mutex<[String]>([]) }
        let order = Order()
        try await testGracefulShutdown { trigger in
            let running = Task {
                try await service.run()
                order.list.withLock { $0.append("service returned") }
            }
            await gate.held()
            trigger.triggerGracefulShutdown()
            await until { await scheduler.isStopping }
            order.list.withLock { $0.append("sync released") }
            await gate.release()
            try await running.value
        }
        #expect(order.list.withLock { $0 } == ["sync released", "service returned"])
        #expect(!registry.isStopping, "within the grace, no worker is stopped")
        #expect(stage.started.withLock { $0.count } == 1)
    }

    @Test func aShutdownPastTheGraceStopsTheWorkersThenWaitsForTheRunToEnd() async throws {
        let (service, _, registry, _, gate) = try service(grace: 0)
        try await testGracefulShutdown { trigger in
            let running = Task { try await service.run() }
            await gate.held()
            trigger.triggerGracefulShutdown()
            // The grace is over at once: the workers are told to stop (a real worker then dies, and its sync ends)
            await until { registry.isStopping }
            await gate.release()
            try await running.value
        }
        #expect(registry.isStopping)
    }
}
