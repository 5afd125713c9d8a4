import ArgumentParser
import Foundation
import MirrorCore

struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check every remote before a first sync: credentials, connection, host key or TLS, access.",
        discussion: "Changes nothing. Exits 1 when any remote would fail, with what to do about it."
    )

    @OptionGroup var options: ConfigOptions

    @OptionGroup var selection: Selection

    func run() throws {
        // discover: sources are listed too: their tokens and APIs are checked, and their repositories with the rest.
        let (config, discovered) = Discovery.expand(try options.load(), record: false)
        let mirrors = try options.select(selection.repositories, from: config)
        let findings = Preflight.check(mirrors, of: config)
        if selection.json {
            try Terminal.printJSON(findings)
        } else {
            let rows = findings.map { finding in
                [finding.repository, finding.remote, finding.credentials, finding.connect, finding.access, finding.details.joined(separator: "; ")]
            }
            print(Terminal.table(["REPOSITORY", "REMOTE", "CREDENTIALS", "CONNECT", "ACCESS", "DETAILS"], rows))
            let problems = findings.filter(\.wouldFail)
            if problems.isEmpty {
                print("\nEvery remote is ready.")
            } else {
                print("")
                for finding in problems {
                    guard let failure = finding.failure else { continue }
                    print("\(finding.repository)/\(finding.remote): \(failure.errorClass.rawValue): \(failure.message)")
                    if let advice = finding.advice { print("  → \(advice)") }
                }
            }
        }
        if findings.contains(where: \.wouldFail) || !discovered { throw ExitStatus.outOfStep }
    }
}
