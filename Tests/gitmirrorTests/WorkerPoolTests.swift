import Foundation
import Synchronization
import Git
import Testing
import TestSupport
@testable import MirrorCore

/// A worker that finished an operation serves the next one; never one with another trust store.
/// The workers counted are the supervisor's own: other suites run workers of this process meanwhile.
@Suite(.onTestThreads) struct WorkerPoolTests {
    /// The supervisor's idle workers that are this process's running children.
    func workers(of supervisor: Workers) -> Set<Int32> {
        let running = Set(ProcessTable.gitmirrorProcesses().filter { $0.parent == getpid() && $0.argv.contains("__worker") }.map(\.pid))
        return supervisor.keptProcesses.intersection(running)
    }

    let limits = Workers.Limits(timeout: 60, stall: 30)

    /// A served repository with one commit, a supervisor of our own and a listing job.
    func stage(_ name: String) throws -> (scenario: Scenario, head: String, supervisor: Workers, listing: ListJob) {
        let scenario = try Scenario(name)
        let head = try scenario.primary.commit("first")
        return (scenario, head, Workers(executable: Gitmirror.executable), ListJob(remote: Endpoint(url: scenario.url(scenario.primary), host: "127.0.0.1")))
    }

    @Test func aFinishedWorkerServesTheNextOperationButNotAnotherTrustStore() throws {
        // Given a served repository and a supervisor of our own
        let (scenario, head, supervisor, listing) = try stage("worker-pool")
        let before = workers(of: supervisor)

        // When it lists the repository twice
        let first = try supervisor.run(listing, for: "app", limits: limits)
        let afterFirst = workers(of: supervisor).subtracting(before)
        let second = try supervisor.run(listing, for: "app", limits: limits)
        let afterSecond = workers(of: supervisor).subtracting(before)

        // Then both answers are right and one worker process served both
        #expect(first.heads.first { $0.name == "refs/heads/main" }?.id.description == head)
        #expect(second.heads.first { $0.name == "refs/heads/main" }?.id.description == head)
        #expect(afterFirst.count == 1 && afterSecond == afterFirst, "\(afterFirst) then \(afterSecond)")

        // When an operation trusts an extra CA file
        let ca = try scenario.sandbox.write("extra-ca.pem", try String(contentsOfFile: "/etc/ssl/certs/ca-certificates.crt", encoding: .utf8))
        var trusting = listing
        trusting.remote.caFile = ca.path
        _ = try supervisor.run(trusting, for: "app", limits: limits)

        // Then it got a worker of its own, and the plain worker is still there for plain operations
        let afterTrusting = workers(of: supervisor).subtracting(before)
        #expect(afterTrusting.count == 2 && afterTrusting.isSuperset(of: afterFirst), "\(afterTrusting)")
        _ = try supervisor.run(listing, for: "app", limits: limits)
        #expect(workers(of: supervisor).subtracting(before) == afterTrusting)
    }

    @Test func listingsShareAWorkerAndOneThatStallsTakesNoOtherDown() throws {
        // Given a served repository, a server that accepts connections and never answers, and a supervisor of our own
        let (scenario, head, supervisor, listing) = try stage("worker-pool-shared")
        let silent = try SilentServer(sandbox: scenario.sandbox)
        let hung = ListJob(remote: Endpoint(url: "git://127.0.0.1:\(silent.port)/repo.git", host: "127.0.0.1"))
        let before = workers(of: supervisor)

        // When a listing of the silent server that gives up after 3 s starts, then one that gives up after 6 s
        let outcomes = Mutex<[TimeInterval: (Result<Listing, SyncFailure>, TimeInterval)]>([:])
        let done = DispatchSemaphore(value: 0)
        func start(stall: TimeInterval) {
            Thread.detachNewThread {
                let started = Date()
                let outcome = Result { () throws(SyncFailure) in try supervisor.run(hung, for: "hung", limits: .init(timeout: 60, stall: stall)) }
                outcomes.withLock { $0[stall] = (outcome, Date().timeIntervalSince(started)) }
                done.signal()
            }
        }
        start(stall: 3)
        #expect(eventually(within: 10) { !workers(of: supervisor).subtracting(before).isEmpty }, "the first listing's worker")
        start(stall: 6)

        // and, while both wait, the served repository is listed three times
        for _ in 0..<3 {
            let result = Result { () throws(SyncFailure) in try supervisor.run(listing, for: "app", limits: limits) }
            #expect((try? result.get())?.heads.first { $0.name == "refs/heads/main" }?.id.description == head, "\(result)")
        }

        // Then one worker process ran all five listings at once
        let during = workers(of: supervisor).subtracting(before)
        #expect(during.count == 1, "\(during)")

        // and each silent listing failed for its own stall: the 6 s one, whose worker was killed for the
        // 3 s one, ran again on another worker instead of failing with it
        done.wait()
        done.wait()
        let (short, shortTook) = try #require(outcomes.withLock { $0[3] })
        let (long, longTook) = try #require(outcomes.withLock { $0[6] })
        for outcome in [short, long] {
            guard case .failure(let failure) = outcome else {
                Issue.record("a listing of a silent server succeeded: \(outcome)")
                continue
            }
            #expect(failure.errorClass == .timeout && failure.message.contains("stall_timeout"), "\(failure)")
        }
        #expect(shortTook >= 3 && shortTook < 6, "\(shortTook)")
        #expect(longTook >= 6, "\(longTook)")
        #expect(!workers(of: supervisor).contains(during.first!), "the killed worker is not kept")
    }

    @Test func aWorkerKilledWhileIdleIsReplacedWithoutAnError() throws {
        // Given a worker waiting in the pool
        let (scenario, head, supervisor, listing) = try stage("worker-pool-killed")
        defer { withExtendedLifetime(scenario) {} }   // its git daemon serves until the end
        let before = workers(of: supervisor)
        _ = try supervisor.run(listing, for: "app", limits: limits)
        let idle = try #require(workers(of: supervisor).subtracting(before).first)

        // When it dies (OOM killer, an admin) before the next operation
        kill(idle, SIGKILL)
        usleep(200_000)

        // Then the next operation still succeeds, on a new worker
        let result = Result { () throws(SyncFailure) in try supervisor.run(listing, for: "app", limits: limits) }
        #expect((try? result.get())?.heads.first { $0.name == "refs/heads/main" }?.id.description == head, "\(result)")
        #expect(!workers(of: supervisor).contains(idle))
    }
}

/// The lease (DESIGN, "One sync of one repository", step 5): a push carries what the plan saw on
/// the secondary, and a ref that moved on the server since is left alone, with that reason, by
/// either transfer. Driven at the worker, where the moment between plan and push can be staged.
@Suite(.onTestThreads) struct LeaseTests {
    @Test(arguments: [TransferKind.libgit2, .git])
    func aRefThatMovedOnTheServerSinceThePlanIsLeftAlone(transfer: TransferKind) throws {
        // Given a plan made when the secondary's main was A, to move it to B
        let scenario = try Scenario("lease-\(transfer.rawValue)")
        let a = try scenario.primary.commit("first")
        let b = try scenario.primary.commit("second")
        let backup = try scenario.secondary("backup")
        // When someone else pushes C there before gitmirror's push
        let c = try backup.commit("someone else's work")
        let push = PushJob(remote: Endpoint(url: scenario.url(backup), host: "127.0.0.1"), cache: scenario.primary.path,
                           updates: [WireUpdate(ref: "refs/heads/main", expectedOld: ObjectID(hex: a)!, new: ObjectID(hex: b)!, force: false)],
                           transfer: transfer)
        let result = Result { () throws(SyncFailure) in try Workers(executable: Gitmirror.executable).run(push, for: "app", limits: .init(timeout: 60, stall: 30)) }

        // Then the ref is refused as moved (so said, and so marked), and the secondary still holds C
        let outcome = try #require((try? result.get())?.outcomes.first { $0.ref == "refs/heads/main" }, "\(result)")
        #expect(!outcome.accepted && outcome.reason == .moved)
        #expect(outcome.message?.contains("moved on the server since it was planned") == true, "\(outcome)")
        #expect(try backup.refs()["refs/heads/main"] == c)
    }

    @Test func inAPushOfManyRefsAMovedRefIsLeftAloneAndTheOthersGo() throws {
        // Given a plan to move main from A to B and to create 80 branches (pushed by object id from a
        // repository without refs, PushScratch), made when the secondary's main was A
        let scenario = try Scenario("lease-many")
        let a = try scenario.primary.commit("first")
        let b = try scenario.primary.commit("second")
        let backup = try scenario.secondary("backup")
        let c = try backup.commit("someone else's work")
        var updates = [WireUpdate(ref: "refs/heads/main", expectedOld: ObjectID(hex: a)!, new: ObjectID(hex: b)!, force: false)]
        for index in 0..<80 { updates.append(WireUpdate(ref: "refs/heads/b\(index)", expectedOld: nil, new: ObjectID(hex: b)!, force: false)) }
        let push = PushJob(remote: Endpoint(url: scenario.url(backup), host: "127.0.0.1"), cache: scenario.primary.path, updates: updates, transfer: .git)

        // When it is pushed after someone else moved main to C
        let result = try Workers(executable: Gitmirror.executable).run(push, for: "app", limits: .init(timeout: 60, stall: 30))

        // Then main is left alone as moved, and the 80 branches are created
        let main = try #require(result.outcomes.first { $0.ref == "refs/heads/main" })
        #expect(!main.accepted && main.reason == .moved, "\(main)")
        #expect(try backup.refs()["refs/heads/main"] == c)
        #expect(result.outcomes.filter(\.accepted).count == 80)
        #expect(try backup.refs()["refs/heads/b79"] == b)
        #expect(!FileManager.default.fileExists(atPath: scenario.primary.path + "/gitmirror-push-\(getpid())"))
    }
}
