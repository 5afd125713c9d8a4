import Foundation
import Testing
import TestSupport
@testable import MirrorCore

/// What `status` shows as in progress: work that lasts, not every listing that is done in a moment.
@Suite(.onTestThreads) struct ProgressRecorderTests {
    @Test func quickWorkWritesNothingAndLastingWorkShowsUntilItIsDone() throws {
        let sandbox = try Sandbox("progress-recorder")
        let store = try StateStore(path: sandbox.path("state/gitmirror.sqlite").path)
        let recorder = ProgressRecorder(store: store, delay: 0.3, interval: 0.3)
        let start = Date()

        // A listing done before the delay leaves no row behind, and wrote none
        recorder.note(ProgressNote(repository: "app", remote: "quick", message: "listing refs"), now: start)
        recorder.note(ProgressNote(repository: "app", remote: "quick", message: "up to date", finished: true), now: start.addingTimeInterval(0.1))
        recorder.flush(now: start.addingTimeInterval(5))
        #expect(try store.progress().isEmpty)

        // A push that says one thing and then nothing more (a hung server) shows once the delay has
        // passed, written by the timer, with what it last said
        recorder.note(ProgressNote(repository: "app", remote: "slow", message: "pushing 3 refs"))
        #expect(eventually(within: 10, every: 0.05) { (try? store.progress().map(\.phase)) == ["pushing 3 refs"] })

        // Its later words replace the row at most every interval, and its end removes it
        recorder.note(ProgressNote(repository: "app", remote: "slow", message: "sending 40%"))
        #expect(eventually(within: 10, every: 0.05) { (try? store.progress().map(\.phase)) == ["sending 40%"] })
        recorder.note(ProgressNote(repository: "app", remote: "slow", message: "pushed", finished: true))
        #expect(try store.progress().isEmpty)
    }
}
