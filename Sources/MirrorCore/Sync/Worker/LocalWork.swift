import Foundation
import Synchronization

/// Whether the programs a worker started (git and its helpers) are working, told by their CPU time:
/// a stall limit is for a server that sends nothing, not for a push still busy on this machine.
enum LocalWork {
    /// How often the CPU time is read; well under the shortest stall limit a configuration may set.
    static let interval: TimeInterval = 5

    /// Calls `beat` every `interval` in which the worker's other processes used CPU, until stopped.
    /// Nil outside a worker (only a worker leads its process group, so only there is the group its own).
    static func heartbeat(_ beat: @escaping @Sendable () -> Void) -> Ticker? {
        guard getpgrp() == getpid() else { return nil }
        // Counted from zero, not read now: the read scans every process's stat (~130 here, more on a busy
        // host), and a push waited for it before it started git. The programs this is for start after it,
        // so their CPU time so far is what the first interval compares.
        let last = Mutex<UInt64>(0)
        return Ticker(every: interval) {
            let now = groupTicks()
            let worked = last.withLock { last in
                defer { last = now }
                return now > last
            }
            if worked { beat() }
        }
    }

    /// The CPU time (clock ticks) of the processes in this process's group other than itself.
    static func groupTicks() -> UInt64 {
        let me = getpid(), group = getpgrp()
        var total: UInt64 = 0
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), pid != me,
                  let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            // After "pid (comm) ": state, ppid, pgrp, … utime (14th field), stime (15th).
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 12, Int32(fields[2]) == group else { continue }
            total += (UInt64(fields[11]) ?? 0) + (UInt64(fields[12]) ?? 0)
        }
        return total
    }
}
