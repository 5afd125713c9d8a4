import Foundation
import Git

/// A push to a repository on a local path through git's receive-pack, as `git push /path` does:
/// the target's hooks and `receive.deny*` settings decide, and each ref's verdict comes back.
/// (libgit2's local transport writes the refs itself and would bypass both.)
enum ReceivePackPush {
    struct Pushed {
        var outcomes: [PushOutcome]
        var serverMessages: [String]
    }

    /// git reads no configuration but the repositories' own, and never prompts.
    static func environment() -> [String: String] {
        let parent = ProcessInfo.processInfo.environment
        var environment = ["PATH": parent["PATH"] ?? "/usr/bin:/bin", "LANG": "C", "LC_ALL": "C",
                           "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_TERMINAL_PROMPT": "0"]
        environment["HOME"] = parent["HOME"] ?? NSHomeDirectory()
        return environment
    }

    /// The command line: every update carries its lease (`--force-with-lease=ref:expected`, empty
    /// for "must not exist"), so a ref that moved since planning is refused by git, not overwritten.
    static func arguments(cache: String, target: String, updates: [WireUpdate]) -> [String] {
        var arguments = ["git", "--git-dir=\(cache)", "push", "--porcelain", "--progress", "--no-verify"]
        for update in updates {
            arguments.append("--force-with-lease=\(update.ref):\(update.expectedOld?.hex ?? "")")
        }
        arguments.append(target)
        // Deletions first: a branch renamed into a folder (`a` → `a/b`) frees its name before the new ref takes it.
        let ordered = updates.filter { $0.new == nil } + updates.filter { $0.new != nil }
        for update in ordered {
            arguments.append(update.new == nil ? ":\(update.ref)" : (update.force ? "+" : "") + "\(update.ref):\(update.ref)")
        }
        return arguments
    }

    static func push(cache: String, target: String, updates: [WireUpdate], progress: @escaping (String) -> Void) throws -> Pushed {
        let command = arguments(cache: cache, target: target, updates: updates)
        let (child, output, errors) = try ChildProcess.withSpawnLock {
            let stdin = try ChildProcess.makePipe(), stdout = try ChildProcess.makePipe(), stderr = try ChildProcess.makePipe()
            defer {
                close(stdin.read)
                close(stdin.write)
                close(stdout.write)
                close(stderr.write)
            }
            let child = try ChildProcess(command, environment: environment(), stdin: stdin.read, stdout: stdout.write, stderr: stderr.write)
            return (child, stdout.read, stderr.read)
        }
        let collected = StderrLines(progress: progress)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            collected.read(errors)
            done.signal()
        }
        let porcelain = String(decoding: ChildProcess.readAll(output), as: UTF8.self)
        close(output)
        done.wait()
        let status = child.wait()
        let outcomes = parse(porcelain: porcelain, updates: updates)
        guard !outcomes.isEmpty || updates.isEmpty else {
            let said = collected.lines.filter { !TransferHooks.isProgress($0) }.suffix(5).joined(separator: " | ")
            let lower = said.lowercased()
            let (errorClass, advice) = Forge.classify(rejection: said)
            if errorClass == .tooLarge {
                throw SyncFailure(.tooLarge, "the server refused the size of the push (\(said)): \(advice ?? "push the history in smaller steps")")
            }
            if lower.contains("hung up") || lower.contains("connection") || lower.contains("could not read") {
                throw SyncFailure(.network, "the connection to \(target) broke during the push: \(said)")
            }
            if lower.contains("does not appear to be a git repository") || lower.contains("no such file") {
                throw SyncFailure(.notFound, "the local repository \(target) cannot be pushed to: \(said)")
            }
            if lower.contains("permission denied") {
                throw SyncFailure(.config, "\(CacheAccess.describe(target)): \(said)")
            }
            throw SyncFailure(.internal, "git push to \(target) exited with status \(status) without a verdict per ref: \(said)")
        }
        let messages = collected.lines.compactMap { line -> String? in
            guard line.hasPrefix("remote: ") else { return nil }
            let text = String(line.dropFirst("remote: ".count)).trimmingCharacters(in: .whitespaces)
            return text.isEmpty || TransferHooks.isProgress(text) ? nil : text
        }
        return Pushed(outcomes: outcomes, serverMessages: Array(messages.prefix(200)))
    }

    /// `--porcelain` lines: FLAG \t FROM:TO \t SUMMARY [(REASON)]; `!` is a refusal.
    static func parse(porcelain: String, updates: [WireUpdate]) -> [PushOutcome] {
        var verdicts: [String: PushOutcome] = [:]
        for line in porcelain.split(separator: "\n") {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count >= 3, let flag = fields[0].first, let colon = fields[1].lastIndex(of: ":") else { continue }
            let ref = String(fields[1][fields[1].index(after: colon)...])
            let summary = String(fields[2])
            if flag == "!" {
                var reason = summary
                if summary.contains("stale info") {
                    reason = "moved on the server since it was planned; left alone, the next sync re-plans it"
                } else if let open = summary.firstIndex(of: "("), summary.hasSuffix(")") {
                    reason = String(summary[summary.index(after: open)..<summary.index(before: summary.endIndex)])
                }
                verdicts[ref] = PushOutcome(ref: ref, accepted: false, message: reason)
            } else {
                verdicts[ref] = PushOutcome(ref: ref, accepted: true, message: nil)
            }
        }
        return updates.compactMap { verdicts[$0.ref] }
    }
}

/// git's stderr, line by line: progress keeps the supervisor's stall clock going.
private final class StderrLines: @unchecked Sendable {
    private let lock = NSLock()
    private var collected: [String] = []
    private let progress: (String) -> Void

    init(progress: @escaping (String) -> Void) { self.progress = progress }

    var lines: [String] { lock.withLock { collected } }

    func read(_ descriptor: Int32) {
        var pending = Data()
        _ = ChildProcess.readAll(descriptor) { chunk in
            pending.append(chunk)
            while let end = pending.firstIndex(where: { $0 == 0x0A || $0 == 0x0D }) {
                let line = String(decoding: pending[pending.startIndex..<end], as: UTF8.self).trimmingCharacters(in: .whitespaces)
                pending.removeSubrange(pending.startIndex...end)
                guard !line.isEmpty else { continue }
                progress(line)
                lock.withLock { if collected.count < 500 { collected.append(line) } }
            }
        }
        close(descriptor)
    }
}
