import Foundation

/// `change_check: api`: before a scheduled (or manual) run lists anything, the primary's forge is asked
/// whether the repository changed, with a conditional request on the last answer's ETag. When the
/// answer is the one stored by the last run that left every remote in step, and that run listed less
/// than `verify_interval` ago, the run lists nothing: an unchanged repository costs one HTTPS request
/// (a 304, free of GitHub's rate limit) instead of a listing of each of its remotes.
///
/// What it never does: skip a run a webhook or the sync API asked for (they say something changed),
/// skip after a run that left anything out of step (the stored answer is removed then), skip longer
/// than `verify_interval` (an API can be wrong, and a secondary can be changed behind gitmirror's
/// back), or skip when the API cannot answer (the run lists, as without the check).
enum ChangeCheck {
    enum Verdict: Equatable {
        /// Nothing changed since the run that listed every remote at `listedAt`.
        case unchanged(listedAt: Date)
        /// List as usual; `record` is kept if the run leaves every remote in step.
        case list(record: ChangeCheckRecord?, note: String?)
    }

    /// How old a change must be before its marker is trusted to stand for everything up to now.
    static let settleTime: TimeInterval = 10

    static func applies(to mirror: Mirror, options: RepositorySync.Options) -> Bool {
        mirror.primary.policy.changeCheck == .api && mirror.primary.forge != nil && !options.planOnly
            && ["schedule", "manual"].contains(options.trigger)
    }
}

extension RepositorySync {
    /// Asks the primary's forge whether `mirror` changed since its last run in step (ChangeCheck).
    func checkForChange(_ mirror: Mirror, now: Date = Date()) -> ChangeCheck.Verdict {
        guard ChangeCheck.applies(to: mirror, options: options), let store, let forge = mirror.primary.forge else {
            return .list(record: nil, note: nil)
        }
        let stored = try? store.changeCheck(repository: mirror.name)
        let answer: ChangeMarker?
        do {
            guard let (client, path) = try context.forgeClient(for: mirror.primary) else { return .list(record: nil, note: nil) }
            let ask = { () throws(SyncFailure) -> ChangeMarker? in try client.changeMarker(of: path, etag: stored?.etag) }
            do {
                answer = try workers.hostLimiter?.withSlot(host: forge.api.host, repository: mirror.name, transfer: false) { try ask() } ?? ask()
            } catch {
                throw error as? SyncFailure ?? SyncFailure(.internal, "\(error)")
            }
        } catch {
            let failure = error as? SyncFailure ?? SyncFailure(.internal, "\(error)")
            let note = "the \(forge.kind.displayName) API could not say whether anything changed (\(redactor.redact(failure.message))); every remote was listed instead"
            progress(mirror.name, "primary", note)
            return .list(record: nil, note: note)
        }
        let fresh = { (stored: ChangeCheckRecord) in now.timeIntervalSince(stored.listedAt) < mirror.primary.policy.verifyInterval }
        switch answer {
        case nil:
            // Not there, or not visible to the token: the listing says what is wrong.
            return .list(record: nil, note: nil)
        case .notModified?:
            guard let stored else { return .list(record: nil, note: nil) }
            if fresh(stored) { return .unchanged(listedAt: stored.listedAt) }
            return .list(record: ChangeCheckRecord(repository: mirror.name, marker: stored.marker, etag: stored.etag, listedAt: now), note: nil)
        case .marker(let marker, let etag, let changedAt)?:
            if let stored, stored.marker == marker, fresh(stored) {
                // Something else in the answer moved (stars, issues): the same repository, a new ETag.
                // Keeping the new ETag only spares the next run's API a full answer: when it cannot be
                // written, the next run asks with the old one, and lists if the answer differs.
                if etag != stored.etag {
                    do {
                        try store.saveChangeCheck(ChangeCheckRecord(repository: mirror.name, marker: marker, etag: etag, listedAt: stored.listedAt))
                    } catch {
                        progress(mirror.name, "primary", "could not keep the forge's new ETag (the next run asks again): \(error)")
                    }
                }
                return .unchanged(listedAt: stored.listedAt)
            }
            // A change of this very second may be followed by another within it that leaves the
            // marker as it is (the APIs' times have whole seconds): such a marker is not kept, and the
            // next run lists again. The margin also covers a few seconds of clock difference.
            if let changedAt, abs(now.timeIntervalSince(changedAt)) < ChangeCheck.settleTime {
                return .list(record: nil, note: nil)
            }
            return .list(record: ChangeCheckRecord(repository: mirror.name, marker: marker, etag: etag, listedAt: now), note: nil)
        }
    }

    /// After a run: keep the forge's answer when every remote is in step, forget it otherwise. A marker
    /// that cannot be kept costs the next run a listing; one that cannot be forgotten could let the next
    /// run skip a repository that is out of step, so that failure is the run's (`journalFailures`).
    func keepChangeCheck(_ verdict: ChangeCheck.Verdict, report: inout RepositoryReport, mirror: Mirror) {
        guard mirror.primary.policy.changeCheck == .api, !options.planOnly, let store else { return }
        if report.inStep, case .list(let record?, _) = verdict {
            do {
                try store.saveChangeCheck(record)
            } catch {
                progress(mirror.name, "primary", "could not keep the forge's change marker (the next run lists again): \(error)")
            }
        } else if !report.inStep {
            do {
                try store.clearChangeCheck(repository: mirror.name)
            } catch {
                report.journalFailures.append(redactor.redact("the forge's change marker, which the next run would trust though this one is out of step: \(error)"))
            }
        }
    }

    /// The report of a run that listed nothing because the forge said nothing changed.
    func unchangedReport(_ mirror: Mirror, listedAt: Date, started: Date) -> RepositoryReport {
        let note = "unchanged per the \(mirror.primary.forge?.kind.displayName ?? "forge") API; every remote was listed \(formatDuration(max(1, Date().timeIntervalSince(listedAt).rounded()))) ago"
        var primary = RemoteReport(repository: mirror.name, remote: "primary", role: .primary, url: mirror.primary.url.display, result: .upToDate)
        primary.unchanged = note
        let secondaries = mirror.secondaries.map { spec in
            var report = RemoteReport(repository: mirror.name, remote: spec.name, role: .secondary, url: spec.url.display, result: .upToDate)
            report.unchanged = note
            return report
        }
        primary.duration = Date().timeIntervalSince(started)
        return RepositoryReport(repository: mirror.name, runId: nil, primary: primary, secondaries: secondaries, duration: primary.duration)
    }
}
