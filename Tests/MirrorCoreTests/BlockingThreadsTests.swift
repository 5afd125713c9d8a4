import Foundation
import Synchronization
import Testing
import TestSupport
@testable import MirrorCore

/// The threads blocking work runs on (`concurrently`, a worker's listings): reused, never queued.
@Suite(.onTestThreads) struct BlockingThreadsTests {
    @Test func workThatWaitsForOtherWorkNeverWaitsForAThread() {
        // Given sixteen pieces of work that each wait until all sixteen have started
        let started = Mutex(0)
        let all = DispatchSemaphore(value: 0)
        let results = concurrently(16) { index -> Int in
            let count = started.withLock { $0 += 1; return $0 }
            if count == 16 { for _ in 0..<16 { all.signal() } }
            // Then none waits for a thread another holds: all sixteen run at once
            return all.wait(timeout: .now() + 10) == .success ? index : -1
        }
        #expect(results == Array(0..<16))
    }

    @Test func aThreadThatFinishedIsUsedAgain() {
        // Given a piece of work that ran and whose thread is idle again
        let pool = BlockingThreads()
        let first = Mutex<pthread_t?>(nil)
        let done = DispatchSemaphore(value: 0)
        pool.run {
            first.withLock { $0 = pthread_self() }
            done.signal()
        }
        done.wait()
        #expect(eventually(within: 10, every: 0.005) { pool.idleCount == 1 })

        // When more work comes
        let second = Mutex<pthread_t?>(nil)
        pool.run {
            second.withLock { $0 = pthread_self() }
            done.signal()
        }
        done.wait()

        // Then it runs on the same thread, not a new one
        #expect(first.withLock { $0 } == second.withLock { $0 })
        #expect(eventually(within: 10, every: 0.005) { pool.idleCount == 1 })
    }
}
