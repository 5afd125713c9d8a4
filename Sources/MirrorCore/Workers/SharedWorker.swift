import Foundation
import Synchronization

/// One worker process that runs several listings at once, and what each of them has said.
final class SharedWorker: Sendable {
    let child: ChildProcess
    let trust: String
    private let input: Int32
    private let registry: WorkerRegistry?

    private struct Pending {
        var notes: JobNotes
        var lastActivity: Date
        var answer: Wire.Answer?
        var heard = false
        /// Signalled when this listing's answer comes or the worker is gone: each listing waits on its
        /// own, since one condition broadcast woke all sixteen listings for each answer.
        let wake = DispatchSemaphore(value: 0)
    }

    private struct State {
        var listings: [Int: Pending] = [:]
        var reserved = 0
        var nextID = 1
        var served = 0
        var lastBusy = Date()
        var eventsClosed = false
        var inputOpen = true
        var killedFor: Int?
        var errorBuffer = Data()
    }
    private let state = Mutex(State())

    init(child: ChildProcess, input: Int32, output: Int32, errors: Int32, trust: String, registry: WorkerRegistry?) {
        self.child = child
        self.input = input
        self.trust = trust
        self.registry = registry
        Thread.detachNewThread { [self] in readEvents(from: output) }
        Thread.detachNewThread { [self] in readErrors(from: errors) }
    }

    /// Listings under way or about to be sent.
    var load: Int { state.withLock { $0.reserved + $0.listings.count } }
    var isClosed: Bool { state.withLock { $0.eventsClosed } }
    var idleFor: TimeInterval { state.withLock { Date().timeIntervalSince($0.lastBusy) } }
    /// After `ListingWorkers.listingsPerWorker` listings a worker takes no more and leaves when its last one ends.
    var isRetiring: Bool { state.withLock { $0.served + $0.reserved >= ListingWorkers.listingsPerWorker } }
    var errorText: String { state.withLock { String(decoding: $0.errorBuffer, as: UTF8.self) } }

    /// Holds a place for a listing about to be sent; false when the worker is full or gone.
    func reserve() -> Bool {
        state.withLock { state in
            guard !state.eventsClosed, state.reserved + state.listings.count < ListingWorkers.perWorker else { return false }
            state.reserved += 1
            return true
        }
    }

    enum Outcome {
        case finished(Result<Wire.Answer, SyncFailure>)
        /// The worker is gone without this listing's answer: killed for another listing's limit, or
        /// it died. `heard` says whether this listing had said anything.
        case lost(killedForAnother: Bool, heard: Bool)
        case killed(SyncFailure)
    }

    /// Sends one listing (its place reserved) and waits for its answer within its limits.
    func run<J: Job>(_ job: J, limits: Workers.Limits, progress: @escaping @Sendable (JobNote) -> Void) -> Outcome {
        let started = Date()
        let notes = JobNotes(progress)
        let (id, wake): (Int, DispatchSemaphore) = state.withLock { state in
            state.reserved -= 1
            let id = state.nextID
            state.nextID += 1
            let listing = Pending(notes: notes, lastActivity: started)
            state.listings[id] = listing
            return (id, listing.wake)
        }
        defer { finish(id) }
        let line: Data
        switch Wire.encode(job, id: id) {
        case .success(let encoded): line = encoded
        case .failure(let failure): return .finished(.failure(failure))
        }
        if !send(line) { return lostOutcome(id) }
        while true {
            // Checked, then waited for: a signal given in between is kept by the semaphore.
            let (answer, closed, lastActivity) = state.withLock { state in
                (state.listings[id]?.answer, state.eventsClosed, state.listings[id]?.lastActivity ?? started)
            }
            if let answer {
                notes.drain()
                return .finished(.success(answer))
            }
            if closed { return lostOutcome(id) }
            if let failure = Workers.overrun(limits, started: started, lastActivity: lastActivity) {
                let first = state.withLock { state -> Bool in
                    if state.killedFor != nil || state.eventsClosed { return false }
                    state.killedFor = id
                    return true
                }
                if first {
                    child.signalGroup(SIGKILL)
                    return .killed(failure)
                }
                return lostOutcome(id)
            }
            // Woken by the answer or the worker's end; else when the limits would be passed (checked again
            // then, since a note may have moved the stall clock).
            let deadline = min(started.addingTimeInterval(limits.timeout), lastActivity.addingTimeInterval(limits.stall))
            _ = wake.wait(timeout: .now() + max(0.01, deadline.timeIntervalSinceNow + 0.01))
        }
    }

    private func lostOutcome(_ id: Int) -> Outcome {
        state.withLock { state in
            .lost(killedForAnother: state.killedFor != nil && state.killedFor != id, heard: state.listings[id]?.heard ?? false)
        }
    }

    /// The listing is over: forget it; a retiring worker whose last listing this was is let go.
    private func finish(_ id: Int) {
        let leave = state.withLock { state -> Bool in
            state.listings[id] = nil
            state.served += 1
            state.lastBusy = Date()
            return state.listings.isEmpty && state.reserved == 0
                && (state.served >= ListingWorkers.listingsPerWorker || registry?.isStopping == true)
        }
        if leave { close() }
    }

    private func send(_ line: Data) -> Bool {
        state.withLock { state in
            guard state.inputOpen else { return false }
            return writeAll(input, line)
        }
    }

    /// Lets the worker go: the end of its input makes it exit once its listings are answered.
    func close() {
        state.withLock { state in
            if state.inputOpen {
                state.inputOpen = false
                Glibc.close(input)
            }
        }
    }

    private func readEvents(from descriptor: Int32) {
        EventReader.read(descriptor) { header, line in
            guard let id = header.id else { return }
            state.withLock { state in
                guard state.listings[id] != nil else { return }
                state.listings[id]!.lastActivity = Date()
                state.listings[id]!.heard = true
                if let note = header.note { state.listings[id]!.notes.hand(note) }
                if header.done == true { state.listings[id]!.answer = .result(line: line) }
                if let failure = header.failure { state.listings[id]!.answer = .failure(failure) }
                if state.listings[id]!.answer != nil { state.listings[id]!.wake.signal() }
            }
        } chunk: {}
        // The worker is gone (or about to be): reap it, then tell the listings still waiting.
        close()
        child.wait()
        registry?.unregister(child)
        state.withLock { state in
            state.eventsClosed = true
            for listing in state.listings.values { listing.wake.signal() }
        }
    }

    private func readErrors(from descriptor: Int32) {
        EventReader.readChunks(descriptor) { chunk in
            state.withLock { state in
                state.errorBuffer.append(contentsOf: chunk)
                if state.errorBuffer.count > 64 * 1024 { state.errorBuffer.removeFirst(state.errorBuffer.count - 64 * 1024) }
            }
        }
    }
}
