import Foundation
import GRDB

/// The only door to gitmirror.sqlite. Opening it runs the migrations.
public final class StateStore: Sendable {
    let pool: DatabasePool
    /// Set when the database was written by a newer gitmirror: it is read, never written.
    public let newerSchema: StateError?

    /// state_dir cannot be written: which folder, whose it is, who we are, and where else to point it.
    static func unwritable(_ folder: String, errno code: Int32) -> SyncFailure {
        if code == ENOSPC || code == EDQUOT {
            return SyncFailure(.internal, "no space left on the device holding state_dir \(folder)")
        }
        return SyncFailure(.config, "state_dir \(folder) is not writable: \(CacheAccess.describe(folder)). Set state_dir in mirrors.yaml, or GITMIRROR_STATE_DIR, to a folder this user can write (the container image uses /var/lib/gitmirror)")
    }

    public init(path: String, readOnly: Bool = false) throws {

        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.readonly = readOnly
        // In WAL mode, NORMAL never corrupts the database; a power cut may lose the last few commits
        // (runs and states the next sync records again; backup refs themselves live in git). FULL
        // made every one of a pass's ~10 commits per repository wait for the disk, serialized: on a
        // far-away fleet those waits, not the network, set the pace.
        if !readOnly { configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") } }
        let folder = (path as NSString).deletingLastPathComponent
        if !readOnly {
            do {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                // Foundation's codes: 640 is "out of space"; the rest that can happen here are permissions.
                throw Self.unwritable(folder, errno: (error as NSError).code == CocoaError.fileWriteOutOfSpace.rawValue ? ENOSPC : EACCES)
            }
            // Every entry point that writes state comes here first: state_dir is private whoever made it,
            // and the database and its -wal and -shm (SQLite gives them the database's mode) are 0600.
            try OwnedPath.stateDirectory(folder)
            for file in [path, path + "-wal", path + "-shm", path + ".open-lock"] {
                try OwnedPath.check(file, directory: false)
                OwnedPath.makePrivate(file: file)
            }
        } else {
            for file in [path, path + "-wal", path + "-shm"] { try OwnedPath.check(file, directory: false) }
        }
        // Two processes opening a new database at once race on switching it to WAL
        // (SQLITE_BUSY without a busy handler): opening and migrating take turns.
        let opening = open(path + ".open-lock", readOnly ? O_RDONLY | O_CLOEXEC | O_NOFOLLOW : O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        if opening < 0 && !readOnly && [EACCES, EPERM, EROFS].contains(errno) { throw Self.unwritable(folder, errno: errno) }
        if opening >= 0 { flock(opening, LOCK_EX) }
        defer {
            if opening >= 0 {
                flock(opening, LOCK_UN)
                close(opening)
            }
        }
        // An empty file is not a database that lost its tables: something replaced it, and
        // initialising it afresh would hide that the history is gone. (Checked under the opening
        // lock: a database another process is creating is empty only until it lets go.)
        // A new database is made here, 0600, so that SQLite's -wal and -shm are 0600 too (it copies the mode).
        var createdNow = false
        if !readOnly && access(path, F_OK) != 0 {
            if let created = try? OwnedPath.open(path, flags: O_RDWR | O_CREAT | O_EXCL) {
                close(created)
                createdNow = true
            }
        }
        if !createdNow, FileStatus(path)?.size == 0 {
            throw StateError.emptyFile(path)
        }
        pool = try DatabasePool(path: path, configuration: configuration)
        // Migrations this binary does not know were applied by a newer gitmirror: migrating or
        // writing would corrupt what it keeps, so this one only reads.
        let known = Set(Self.migrator.migrations)
        let applied = (try? pool.read { db in try Self.migrator.appliedIdentifiers(db) }) ?? []
        let unknown = applied.subtracting(known)
        if !unknown.isEmpty {
            newerSchema = StateError.newerSchema(path: path, unknown: unknown.sorted(), known: Self.migrator.migrations.last ?? "")
        } else {
            newerSchema = nil
            if !readOnly {
                try Self.migrator.migrate(pool)
                chmod(path, 0o600)
            }
        }
    }

    /// Every write goes through here, so that a database of a newer schema is never written.
    func write<T>(_ updates: (Database) throws -> T) throws -> T {
        if let newerSchema { throw newerSchema }
        return try pool.write(updates)
    }

    func write<T: Sendable>(_ updates: @escaping @Sendable (Database) throws -> T) async throws -> T {
        if let newerSchema { throw newerSchema }
        return try await pool.write(updates)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "run") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("repository", .text).notNull().indexed()
                t.column("startedAt", .datetime).notNull()
                t.column("finishedAt", .datetime)
                t.column("result", .text).notNull()
                t.column("trigger", .text).notNull()
                t.column("pid", .integer).notNull()
                t.column("summary", .text)
            }
            try db.create(table: "remote_state") { t in
                t.column("repository", .text).notNull()
                t.column("remote", .text).notNull()
                t.column("role", .text).notNull()
                t.column("url", .text).notNull()
                t.column("state", .text).notNull()
                t.column("lastAttempt", .datetime)
                t.column("lastSuccess", .datetime)
                t.column("lastErrorClass", .text)
                t.column("lastError", .text)
                t.column("refsFingerprint", .text)
                t.column("lastRunId", .integer)
                t.primaryKey(["repository", "remote"])
            }
            try db.create(table: "ref_update") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("runId", .integer).notNull().references("run", onDelete: .cascade)
                t.column("repository", .text).notNull()
                t.column("remote", .text).notNull()
                t.column("ref", .text).notNull()
                t.column("oldOid", .text)
                t.column("newOid", .text)
                t.column("action", .text).notNull()
                t.column("outcome", .text).notNull()
                t.column("message", .text)
                t.column("backupRef", .text)
                t.column("recordedAt", .datetime).notNull()
            }
            try db.create(index: "ref_update_by_ref", on: "ref_update", columns: ["repository", "remote", "ref"])
            try db.create(table: "lease") { t in
                t.primaryKey("repository", .text)
                t.column("pid", .integer).notNull()
                t.column("host", .text).notNull()
                t.column("acquiredAt", .datetime).notNull()
                t.column("heartbeatAt", .datetime).notNull()
            }
        }
        migrator.registerMigration("v2") { db in
            // The daemon's live schedule, for `status`.
            try db.create(table: "schedule") { t in
                t.primaryKey("repository", .text)
                t.column("nextRun", .datetime)
                t.column("state", .text).notNull()
                t.column("note", .text)
                t.column("pid", .integer).notNull()
                t.column("updatedAt", .datetime).notNull()
            }
        }
        migrator.registerMigration("v3") { db in
            // Retention deletes runs by age and keeps those the journal's backups or a remote's state point to.
            try db.create(index: "run_by_finish", on: "run", columns: ["finishedAt"])
            try db.create(index: "ref_update_by_run", on: "ref_update", columns: ["runId"])
        }
        migrator.registerMigration("v4") { db in
            // How far a running sync is, per remote, for `status`.
            try db.create(table: "progress") { t in
                t.column("repository", .text).notNull()
                t.column("remote", .text).notNull()
                t.column("phase", .text).notNull()
                t.column("pid", .integer).notNull()
                t.column("startedAt", .datetime).notNull()
                t.column("updatedAt", .datetime).notNull()
                t.primaryKey(["repository", "remote"])
            }
        }
        migrator.registerMigration("v5") { db in
            // What discover: sources listed, and the HEAD each remote showed (default branches).
            try db.create(table: "discovered") { t in
                t.column("source", .text).notNull()
                t.column("path", .text).notNull()
                t.column("listing", .text).notNull()
                t.column("firstSeen", .datetime).notNull()
                t.column("lastSeen", .datetime).notNull()
                t.column("goneSince", .datetime)
                t.primaryKey(["source", "path"])
            }
            try db.create(table: "discovery_source") { t in
                t.primaryKey("source", .text)
                t.column("lastAttempt", .datetime).notNull()
                t.column("lastSuccess", .datetime)
                t.column("lastErrorClass", .text)
                t.column("lastError", .text)
                t.column("count", .integer).notNull()
            }
            try db.alter(table: "remote_state") { t in t.add(column: "head", .text) }
        }
        migrator.registerMigration("v6") { db in
            // How long full passes over the fleet took (the last hundred), for `status` and freshness.
            try db.create(table: "pass") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("source", .text).notNull()
                t.column("startedAt", .datetime).notNull()
                t.column("finishedAt", .datetime).notNull()
                t.column("repositories", .integer).notNull()
            }
        }
        migrator.registerMigration("v7") { db in
            // change_check: api — the forge's last answer for repositories left in step.
            try db.create(table: "change_check") { t in
                t.primaryKey("repository", .text)
                t.column("marker", .text).notNull()
                t.column("etag", .text)
                t.column("listedAt", .datetime).notNull()
            }
        }
        migrator.registerMigration("v8") { db in
            // `gitmirror accept`: divergences an operator accepted, while neither side moves.
            try db.create(table: "accepted_divergence") { t in
                t.column("repository", .text).notNull()
                t.column("remote", .text).notNull()
                t.column("ref", .text).notNull()
                t.column("secondaryOid", .text).notNull()
                t.column("primaryOid", .text).notNull()
                t.column("acceptedAt", .datetime).notNull()
                t.primaryKey(["repository", "remote", "ref"])
            }
        }
        return migrator
    }
}

/// Why the state database cannot be used as it is.
public enum StateError: Error, Sendable, CustomStringConvertible, Equatable {
    case newerSchema(path: String, unknown: [String], known: String)
    case emptyFile(String)

    public var description: String {
        switch self {
        case let .newerSchema(path, unknown, known):
            return "\(path) was written by a newer gitmirror (it has schema \(unknown.joined(separator: ", ")); this one knows up to \(known)): this gitmirror only reads it and records nothing. Run the newer gitmirror, or move the database away to start a new history"
        case .emptyFile(let path):
            return "\(path) is an empty file, not a gitmirror database: it was truncated or replaced. Restore it from a backup, or move it away and gitmirror starts a new history"
        }
    }
}
