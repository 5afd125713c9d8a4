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
}
