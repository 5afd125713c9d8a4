import Foundation
import Git
import MirrorCore

/// The human form of sync and plan reports: a table a person can scan, then what went wrong.
enum ReportTable {
    static func render(_ reports: [RepositoryReport]) -> String {
        var rows: [[String]] = []
        var problems: [String] = []
        for report in reports {
            for remote in [report.primary] + report.secondaries {
                let counts = remote.role == .primary ? ["", "", "", ""] : [remote.created, remote.updated, remote.deleted, remote.kept].map(String.init)
                rows.append([report.repository, remote.remote, label(remote)] + counts + [seconds(remote.duration)])
                if let failure = remote.failure {
                    problems.append("\(report.repository)/\(remote.remote): \(failure.errorClass.rawValue): \(failure.message)")
                }
                if let note = remote.headNote { problems.append("\(report.repository)/\(remote.remote): \(note)") }
            }
            for failure in report.journalFailures {
                problems.append("\(report.repository): the state database did not record \(failure); the refs moved, but history does not show it")
            }
        }
        var text = Terminal.table(["REPOSITORY", "REMOTE", "RESULT", "CREATED", "UPDATED", "DELETED", "KEPT", "DURATION"], rows)
        if !problems.isEmpty { text += "\n\n" + problems.joined(separator: "\n") }
        let unchanged = reports.filter { $0.primary.unchanged != nil }.count
        if unchanged > 0 {
            text += "\n\n\(unchanged) repositor\(unchanged == 1 ? "y was" : "ies were") not listed: the primary's forge API said nothing changed since every remote was last listed (change_check: api; each is listed at least every verify_interval)."
        }
        let bad = reports.filter { !$0.inStep }.count
        text += "\n\n" + (bad == 0 ? "\(reports.count) repositor\(reports.count == 1 ? "y" : "ies") in step."
                                   : "\(bad) of \(reports.count) repositor\(reports.count == 1 ? "y" : "ies") out of step.")
        return text
    }

    static func renderPlan(_ reports: [RepositoryReport]) -> String {
        var lines: [String] = []
        for report in reports {
            if let failure = report.primary.failure {
                lines.append("\(report.repository): \(failure.errorClass.rawValue): \(failure.message)")
                continue
            }
            for remote in report.secondaries {
                lines.append("\(report.repository) → \(remote.remote) (\(remote.url))")
                // A remote that could not be planned says why; one whose plan ends out of step shows the plan, then why.
                let verdict = remote.failure.map { "  \($0.errorClass.rawValue): \($0.message)" }
                if let verdict, remote.refs.isEmpty {
                    lines.append(verdict)
                    continue
                }
                if remote.refs.isEmpty {
                    lines.append("  nothing to do (\(remote.upToDate) up to date\(remote.skipped > 0 ? ", \(remote.skipped) outside the filters" : ""))")
                    continue
                }
                let rows = remote.refs.map { ref in
                    ["  " + ref.action.rawValue, ref.ref, "\(ref.old?.short ?? "-") → \(ref.new?.short ?? "-")", ref.message ?? ""]
                }
                lines.append(Terminal.table(["  ACTION", "REF", "CHANGE", "NOTE"], rows))
                lines.append("  \(remote.upToDate) up to date\(remote.skipped > 0 ? ", \(remote.skipped) outside the filters" : "")")
                if let verdict { lines.append(verdict) }
            }
        }
        return lines.joined(separator: "\n")
    }

    static func label(_ remote: RemoteReport) -> String {
        if remote.unchanged != nil { return "unchanged (API)" }
        switch remote.result {
        case .failed: return "failed (\(remote.failure?.errorClass.rawValue ?? "error"))"
        case .interrupted: return "interrupted"
        case .upToDate: return "up to date"
        default: return remote.result.rawValue
        }
    }

    static func seconds(_ value: TimeInterval) -> String { String(format: "%.1fs", value) }
}
