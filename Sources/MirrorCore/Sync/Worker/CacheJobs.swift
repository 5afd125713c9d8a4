import Foundation
import Git

/// The jobs on the cache alone: they read objects, which can hang on a damaged cache, so the
/// supervisor never runs them itself; each says how far it is, and silence is a read that never ends.
extension Worker {
    /// Ancestry on the cache, question by question, with a heartbeat after each: a question that
    /// never finishes is a damaged object, and the supervisor's stall limit catches it.
    static func answer(_ questions: [AncestryQuestion], cachePath: String, reporter: JobReporter) throws -> [AncestryAnswer] {
        let cache = try Repository.openBare(at: cachePath)
        var answers: [AncestryAnswer] = []
        for (index, question) in questions.enumerated() {
            let present = try cache.contains(question.old)
            let fastForward = try present && cache.isDescendant(question.new, of: question.old)
            answers.append(AncestryAnswer(present: present, fastForward: fastForward))
            reporter.note(.progress("checked ancestry \(index + 1)/\(questions.count)"))
        }
        return answers
    }

    /// Writes each backup ref whose object the cache holds; returns the refs whose object it lacks.
    static func writeBackups(_ backups: [BackupRef], cachePath: String) throws -> [String] {
        let cache = try Repository.openBare(at: cachePath)
        var missing: [String] = []
        for backup in backups {
            guard try cache.contains(backup.id) else {
                missing.append(backup.ref)
                continue
            }
            if try cache.reference(named: backup.ref) != backup.id {
                try cache.setReference(backup.ref, to: backup.id, message: backup.message)
            }
        }
        return missing
    }

    /// Reads every object. Progress every half second carries the count; from `announceFrom` on,
    /// every object is named before it is read, so that one that hangs is known by its id.
    static func verify(cachePath: String, announceFrom: Int, reporter: JobReporter) throws -> VerifyJob.Result {
        let cache = try Repository.openBare(at: cachePath)
        for (ref, id) in try cache.references(matching: "refs/*").sorted(by: { $0.key < $1.key }) where try !cache.contains(id) {
            return VerifyJob.Result(verified: 0, damage: "\(ref) points at object \(id.hex), which the cache does not have (objects are missing)")
        }
        let ids = try cache.objectIDs().sorted()
        var last = Date()
        for (index, id) in ids.enumerated() {
            if index >= announceFrom {
                reporter.note(.reading(object: id.hex))
            } else if Date().timeIntervalSince(last) >= 0.5 {
                last = Date()
                reporter.note(.progress("verified \(index)/\(ids.count) objects"))
            }
            do {
                try cache.readObject(id)
            } catch {
                return VerifyJob.Result(verified: index, damage: "object \(id.hex) cannot be read: \(error.message)")
            }
        }
        return VerifyJob.Result(verified: ids.count, damage: nil)
    }

    /// The cache's packs, and an estimate of its loose objects (git's own: one fan-out folder of 256, counted).
    static func cacheShape(_ cachePath: String) -> (packs: Int, loose: Int) {
        let files = FileManager.default
        let packs = ((try? files.contentsOfDirectory(atPath: cachePath + "/objects/pack")) ?? []).filter { $0.hasSuffix(".pack") }.count
        let sample = ((try? files.contentsOfDirectory(atPath: cachePath + "/objects/17")) ?? []).count
        return (packs, sample * 256)
    }

    /// git's `gc` on the cache when it is past its limits; its CPU is progress (a repack says little while it works).
    static func maintain(_ job: MaintainJob, reporter: JobReporter) throws -> MaintainJob.Result {
        let before = cacheShape(job.cache)
        guard before.packs > job.packLimit || before.loose > job.looseLimit else {
            return MaintainJob.Result(ran: false, packsBefore: before.packs, packsAfter: before.packs)
        }
        reporter.note(.progress("repacking the cache (\(before.packs) packs)"))
        let working = LocalWork.heartbeat { reporter.note(.progress("repacking the cache")) }
        defer { working?.stop() }
        let command = ["git", "--git-dir=\(job.cache)", "-c", "gc.autoDetach=false", "-c", "gc.writeCommitGraph=true",
                       "-c", "core.logAllRefUpdates=false", "gc", "--quiet"]
        let ran = try ChildProcess.run(command, environment: GitTransfer.environment())
        guard ran.status == 0 else {
            let said = String(decoding: ran.errors, as: UTF8.self).split(whereSeparator: \.isNewline).suffix(4).joined(separator: " | ")
            throw Classification.localFault(said, cachePath: job.cache) ?? SyncFailure(.internal, "git gc on the cache \(job.cache) exited with status \(ran.status): \(said)")
        }
        return MaintainJob.Result(ran: true, packsBefore: before.packs, packsAfter: cacheShape(job.cache).packs)
    }
}
