import Foundation
import Testing

/// Runs each test of a suite on a thread of its own pool instead of Swift's cooperative pool.
///
/// Our tests are synchronous: they start real servers and child processes and wait for them
/// (a push, a daemon's answer, a timeout that is the behaviour under test). On the cooperative
/// pool, which has one thread per core, each such wait holds a thread, so on CI's two cores two
/// tests ran at a time while the CPU sat mostly idle (48 s of CPU in a 370 s run). On this pool
/// `width` tests wait side by side. Waits in the tests are on events with generous deadlines, so
/// running more at once costs no determinism; `GITMIRROR_TEST_THREADS` sets the width.
public struct OnTestThreads: SuiteTrait, TestTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func scopeProvider(for test: Test, testCase: Test.Case?) -> Self? {
        // Once per test case: a suite's own scope would only wrap its children again.
        testCase == nil ? nil : self
    }

    public func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        try await withTaskExecutorPreference(TestThreadPool.shared) { try await function() }
    }
}

extension Trait where Self == OnTestThreads {
    /// Each test of the suite runs on the test thread pool, where waiting blocks nobody else.
    public static var onTestThreads: Self { OnTestThreads() }
}

/// A fixed set of threads that run jobs in order of arrival.
final class TestThreadPool: TaskExecutor, @unchecked Sendable {
    static let shared = TestThreadPool(width: ProcessInfo.processInfo.environment["GITMIRROR_TEST_THREADS"].flatMap(Int.init) ?? 8)

    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []

    init(width: Int) {
        for index in 0..<max(width, 1) {
            let thread = Thread { [unowned self] in self.work() }
            thread.name = "test-\(index)"
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    func enqueue(_ job: UnownedJob) {
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    private func work() {
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
