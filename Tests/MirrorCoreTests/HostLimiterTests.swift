import Foundation
import Synchronization
import Testing
import TestSupport
@testable import MirrorCore

/// The limits a pass runs within (DESIGN, "Concurrency"): connections per host and in all, and
/// repositories transferring. Operations here block on a gate the test opens, so what runs at once is
/// observed, not timed.
@Suite(.onTestThreads) struct HostLimiterTests {
    /// Operations started on threads, each holding its slots until its gate opens.
    final class Stage: @unchecked Sendable {
        let limiter: HostLimiter
        let running = Mutex<[String]>([])
        let finished = Mutex<[String]>([])
        let gates = Mutex<[String: DispatchSemaphore]>([:])

        init(_ limiter: HostLimiter) { self.limiter = limiter }

        func start(_ name: String, host: String?, repository: String, transfer: Bool) {
            let gate = DispatchSemaphore(value: 0)
            gates.withLock { $0[name] = gate }
            Thread.detachNewThread {
                self.limiter.withSlot(host: host, repository: repository, transfer: transfer) {
                    self.running.withLock { $0.append(name) }
                    gate.wait()
                    self.running.withLock { $0.removeAll { $0 == name } }
                }
                self.finished.withLock { $0.append(name) }
            }
        }

        var runningNow: Set<String> { Set(running.withLock { $0 }) }
        var finishedNow: Set<String> { Set(finished.withLock { $0 }) }

        /// Lets these operations end, and waits until they have.
        func release(_ names: Set<String>) {
            for name in names { gates.withLock { $0[name] }?.signal() }
            _ = eventually(within: 10, every: 0.005) { self.finishedNow.isSuperset(of: names) }
        }
    }

    @Test func aConnectionThatRidesAlongIsTakenOnlyWhenFreeNow() {
        // Given two connections per host and three in all, with one listing holding one on host a
        let stage = Stage(HostLimiter(perHost: 2, overall: 3, transferring: 8))
        stage.start("held", host: "a", repository: "r", transfer: false)
        #expect(eventually(within: 10, every: 0.005) { stage.runningNow == ["held"] })

        // When connections that ride along are asked for, they come while there is room and are
        // refused at once when the host or the overall limit is full
        let first = stage.limiter.connectionIfFree(to: "a")
        #expect(first != nil)
        #expect(stage.limiter.connectionIfFree(to: "a") == nil)
        let onB = stage.limiter.connectionIfFree(to: "b")
        #expect(onB != nil)
        #expect(stage.limiter.connectionIfFree(to: "b") == nil)

        // And a listing on b waits for the one given back, which counts once however often it is given back
        stage.start("waiting", host: "b", repository: "s", transfer: false)
        #expect(!eventually(within: 0.2, every: 0.005) { stage.runningNow.contains("waiting") })
        onB?.release()
        onB?.release()
        #expect(eventually(within: 10, every: 0.005) { stage.runningNow == ["held", "waiting"] })
        #expect(stage.limiter.connectionIfFree(to: "b") == nil)
        first?.release()
        stage.release(["held", "waiting"])
        let again = stage.limiter.connectionIfFree(to: "a")
        #expect(again != nil)
        again?.release()
    }

    @Test func connectionsStayWithinTheHostsLimitAndTheOverallOne() {
        // Given two connections per host and three in all
        let stage = Stage(HostLimiter(perHost: 2, overall: 3, transferring: 8))

        // When four listings start against host a and three against host b
        for index in 0..<4 { stage.start("a\(index)", host: "a", repository: "r\(index)", transfer: false) }
        #expect(eventually(within: 10, every: 0.005) { stage.runningNow.count == 2 })
        for index in 0..<3 { stage.start("b\(index)", host: "b", repository: "s\(index)", transfer: false) }

        // Then three run: two on a (its limit) and one on b (the overall limit), and the waiting ones of a
        // hold no slot that b could use
        #expect(eventually(within: 10, every: 0.005) { stage.runningNow.count == 3 })
        #expect(stage.runningNow.filter { $0.hasPrefix("a") }.count == 2)
        #expect(stage.runningNow.filter { $0.hasPrefix("b") }.count == 1)

        // And as each ends another starts, never past the limits, until all seven are done
        while stage.finishedNow.count < 7 {
            guard let any = stage.runningNow.first else { break }
            stage.release([any])
            let now = stage.runningNow
            #expect(now.count <= 3 && now.filter { $0.hasPrefix("a") }.count <= 2 && now.filter { $0.hasPrefix("b") }.count <= 2, "\(now)")
        }
    }

    @Test func aRepositoryTakesOneTransferSlotHoweverManyOfItsSecondariesPush() {
        // Given one repository transferring at a time
        let stage = Stage(HostLimiter(perHost: 8, overall: 8, transferring: 1))

        // When repository one pushes to two secondaries at once, and repository two wants to push
        stage.start("one-x", host: "x", repository: "one", transfer: true)
        stage.start("one-y", host: "y", repository: "one", transfer: true)
        #expect(eventually(within: 10, every: 0.005) { stage.runningNow == ["one-x", "one-y"] })
        stage.start("two-x", host: "x", repository: "two", transfer: true)

        // Then both of one's pushes run, and two's waits until both are over
        #expect(!eventually(within: 0.2, every: 0.01) { stage.runningNow.contains("two-x") })
        stage.release(["one-x"])
        #expect(!stage.runningNow.contains("two-x"))
        stage.release(["one-y"])
        #expect(eventually(within: 10, every: 0.005) { stage.runningNow == ["two-x"] })
        stage.release(["two-x"])
    }

    @Test func aListingNeverWaitsForATransferSlot() {
        // Given one repository transferring at a time, taken by a fetch
        let stage = Stage(HostLimiter(perHost: 8, overall: 8, transferring: 1))
        stage.start("fetch", host: "x", repository: "busy", transfer: true)
        #expect(eventually(within: 10, every: 0.005) { stage.runningNow == ["fetch"] })

        // When other repositories list, and one reads its cache (no connection, but a transfer)
        stage.start("list-1", host: "x", repository: "idle-1", transfer: false)
        stage.start("list-2", host: "y", repository: "idle-2", transfer: false)
        stage.start("ancestry", host: nil, repository: "other", transfer: true)

        // Then the listings run at once, and the cache job waits for the transfer slot
        #expect(eventually(within: 10, every: 0.005) { stage.runningNow == ["fetch", "list-1", "list-2"] })
        stage.release(["list-1", "list-2"])
        #expect(!stage.finishedNow.contains("ancestry") && !stage.runningNow.contains("ancestry"))
        stage.release(["fetch"])
        #expect(eventually(within: 10, every: 0.005) { stage.runningNow == ["ancestry"] })
        stage.release(["ancestry"])
        #expect(stage.finishedNow == ["fetch", "list-1", "list-2", "ancestry"])
    }

    @Test func aHostStartsWithAFewConnectionsAndGetsMoreWhileItsListingsStayFast() {
        // Given a host allowed sixteen connections, with nothing known of it yet
        let stage = Stage(HostLimiter(perHost: 16, overall: 32, transferring: 4))

        // When eight listings of it start together
        for index in 0..<8 { stage.start("a\(index)", host: "a", repository: "r\(index)", transfer: false) }

        // Then four run at first: a burst of eight overflowed a nearby git daemon's listen backlog
        #expect(eventually(within: 10, every: 0.005) { stage.runningNow.count == 4 })
        #expect(!eventually(within: 0.2, every: 0.01) { stage.runningNow.count > 4 })
        stage.release(Set((0..<8).map { "a\($0)" }))

        // When its listings keep coming back as fast as the fastest (100 ms away, nothing queued)
        let gate = HostGate(ceiling: 16)
        for _ in 0..<40 { gate.adapt(to: 0.100) }

        // Then it gets all sixteen
        #expect(gate.allowed == 16)
    }

    @Test func aHostWhoseConnectionsAreDroppedGetsFewerThenMoreAgain() {
        // Given a host at its sixteen, whose listings took 50 ms
        let gate = HostGate(ceiling: 16)
        for _ in 0..<40 { gate.adapt(to: 0.050) }
        #expect(gate.allowed == 16)

        // When the sixteen listings under way all take a second more (connections dropped by a full
        // backlog, retried by TCP), the limit is halved once for all of them
        let before = ProcessInfo.processInfo.systemUptime - 1.1
        for _ in 0..<16 { gate.adapt(to: 1.050, started: before) }
        #expect(gate.allowed == 8)

        // And each later round of dropped listings halves it again, down to two
        for _ in 0..<5 { gate.adapt(to: 1.050) }
        #expect(gate.allowed == 2)

        // When they are fast again it grows back, one connection per round, to its limit
        for _ in 0..<50 { gate.adapt(to: 0.050) }
        #expect((5...12).contains(gate.allowed), "\(gate.allowed)")
        for _ in 0..<150 { gate.adapt(to: 0.050) }
        #expect(gate.allowed == 16)
    }

    @Test func listingsSlowedByThisMachinesLoadKeepTheLimit() {
        // Given a host 100 ms away at its sixteen
        let gate = HostGate(ceiling: 16)
        for _ in 0..<20 { gate.adapt(to: 0.100) }

        // When this machine is busy and listings take 100 to 400 ms
        for index in 0..<100 { gate.adapt(to: 0.100 + Double(index % 10) * 0.030) }

        // Then the host keeps its sixteen: only a dropped connection's second counts
        #expect(gate.allowed == 16)
    }

    @Test func aNearbyHostGetsAtMostSix() {
        // Given a host whose listings take 3 ms (this machine's CPU, not the network, is what they wait on)
        let gate = HostGate(ceiling: 16)
        for _ in 0..<100 { gate.adapt(to: 0.003) }

        // Then it gets six at once, not its sixteen: what git daemon's accept queue holds
        #expect(gate.allowed == 6)
    }

    @Test func aHostsConnectionsStartSpacedNotInABurst() {
        // Given a host with nothing known of it yet
        let gate = HostGate(ceiling: 16)

        // When four connections are about to open in the same instant
        let first = (0..<4).map { _ in gate.pace(now: 100) }

        // Then they start 2 ms apart, not in the same millisecond
        #expect(zip(first, [0, 0.002, 0.004, 0.006]).allSatisfy { abs($0 - $1) < 1e-9 }, "\(first)")

        // When it is 100 ms away and allowed sixteen at once
        for _ in 0..<40 { gate.adapt(to: 0.100) }
        #expect(gate.allowed == 16)

        // Then a wave of sixteen spreads over half a round trip: 100 ms ÷ (2 × 16) apart
        let wave = (0..<16).map { _ in gate.pace(now: 200) }
        #expect(abs(wave[1] - 0.100 / 32) < 1e-9 && abs(wave[15] - 15 * 0.100 / 32) < 1e-9, "\(wave)")

        // And a connection that comes after the spacing has passed waits for nothing
        #expect(gate.pace(now: 201) == 0)

        // And a nearby host's spacing is half a millisecond: its git daemon's listen backlog stays empty
        let nearby = HostGate(ceiling: 16)
        for _ in 0..<100 { nearby.adapt(to: 0.003) }
        _ = nearby.pace(now: 300)
        #expect(abs(nearby.pace(now: 300) - 0.0005) < 1e-9)
    }
}
