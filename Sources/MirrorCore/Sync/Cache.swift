import Foundation

/// The bare cache of one repository. It is gitmirror's own and guarded by the repository's
/// lock, so what a killed process left in it can be cleared by whoever holds the lock.
struct Cache: Sendable {
    let name: String
    let stateDirectory: URL

    var path: String { stateDirectory.appendingPathComponent("cache/\(name).git").path }

    /// Removes the `*.lock` files older than `since` (the moment this process took the repository
    /// lock: no one else can be writing) and the temporary packs and objects of a killed fetch.
    /// Returns what was removed, relative to the cache.
    func sweep(olderThan since: Date) -> [String] {
        let root = URL(fileURLWithPath: path)
        guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.contentModificationDateKey, .isRegularFileKey]) else { return [] }
        var removed: [String] = []
        while let file = walker.nextObject() as? URL {
            let name = file.lastPathComponent
            let isTemporary = name.hasPrefix("pack_git2_") || name.hasPrefix("tmp_object_git2_") || name.hasPrefix("tmp_pack_")
                || name.hasPrefix("tmp_idx_")
            guard name.hasSuffix(".lock") || isTemporary else { continue }
            let values = try? file.resourceValues(forKeys: [.contentModificationDateKey, .isRegularFileKey])
            guard values?.isRegularFile == true, (values?.contentModificationDate ?? .distantFuture) < since else { continue }
            if (try? FileManager.default.removeItem(at: file)) != nil {
                removed.append(String(file.path.dropFirst(root.path.count + 1)))
            }
        }
        return removed.sorted()
    }

    /// Moves the cache to `state_dir/quarantine/<name>-<stamp>.git`, keeping it for inspection.
    func quarantine(stamp: String) throws -> String {
        let folder = stateDirectory.appendingPathComponent("quarantine")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let destination = folder.appendingPathComponent("\(name)-\(stamp).git")
        try FileManager.default.moveItem(atPath: path, toPath: destination.path)
        return destination.path
    }
}
