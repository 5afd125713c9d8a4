import Foundation

/// Reads /proc to see what a running gitmirror exposes: argv and environment.
public enum ProcessTable {
    public static func gitmirrorProcesses() -> [(pid: Int32, parent: Int32, argv: String, environment: String)] {
        let executable = Gitmirror.executable.path
        var result: [(Int32, Int32, String, String)] = []
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        for entry in entries {
            guard let pid = Int32(entry) else { continue }
            guard let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe"), exe == executable else { continue }
            let argv = readProc("/proc/\(pid)/cmdline").map { String(decoding: $0.map { $0 == 0 ? 32 : $0 }, as: UTF8.self) } ?? ""
            let environment = readProc("/proc/\(pid)/environ").map { String(decoding: $0.map { $0 == 0 ? 10 : $0 }, as: UTF8.self) } ?? ""
            // /proc/PID/stat: "pid (comm) state ppid …"; comm may hold spaces, so read after the last ')'.
            let stat = readProc("/proc/\(pid)/stat").map { String(decoding: $0, as: UTF8.self) } ?? ""
            let afterName = stat.split(separator: ")").last.map(String.init) ?? ""
            let parent = Int32(afterName.split(separator: " ").dropFirst().first ?? "") ?? 0
            result.append((pid, parent, argv, environment))
        }
        return result
    }

    /// `root` and every process below it (children, grandchildren: a daemon's workers and their git).
    public static func tree(of root: Int32) -> Set<Int32> {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [root] }
        var parents: [Int32: Int32] = [:]
        for entry in entries {
            guard let pid = Int32(entry), let stat = readProc("/proc/\(pid)/stat").map({ String(decoding: $0, as: UTF8.self) }) else { continue }
            let afterName = stat.split(separator: ")").last.map(String.init) ?? ""
            parents[pid] = Int32(afterName.split(separator: " ").dropFirst().first ?? "") ?? 0
        }
        var tree: Set<Int32> = [root]
        var grew = true
        while grew {
            grew = false
            for (pid, parent) in parents where tree.contains(parent) && !tree.contains(pid) {
                tree.insert(pid)
                grew = true
            }
        }
        return tree
    }

    /// Every process whose command line contains `text`: (pid, command line).
    public static func processes(argvContaining text: String) -> [(pid: Int32, argv: String)] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap { entry in
            guard let pid = Int32(entry), let data = readProc("/proc/\(pid)/cmdline") else { return nil }
            let argv = String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
            return argv.contains(text) ? (pid, argv) : nil
        }
    }

    /// /proc files report size 0: read them to the end (a read by size gets one page at most).
    /// A process that exits between the listing and the read is no error: it is gone (ESRCH).
    static func readProc(_ path: String) -> Data? {
        guard let file = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? file.close() }
        return try? file.readToEnd() ?? Data()
    }
}
