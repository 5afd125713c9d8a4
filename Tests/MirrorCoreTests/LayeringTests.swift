import Foundation
import Testing
import TestSupport

/// MirrorCore's folders are layers (DESIGN, Architecture): `Daemon → Sync → Sync/Worker → Workers →
/// {Remotes, State} → Config → Base`. A folder may use what a lower one declares, never what a higher one
/// or a sibling does; the worker side (Sync/Worker) uses no configuration and no state; and each library
/// is imported by the one folder that owns it. One module cannot say so to the compiler, so this check
/// reads the sources.
@Suite(.onTestThreads) struct LayeringTests {
    static let layers: [String: Int] = ["Base": 0, "Config": 1, "Remotes": 2, "State": 2, "Workers": 3, "Sync/Worker": 4, "Sync": 5, "Daemon": 6]
    /// Folders that may use fewer of the layers below them than their rank allows. The code that runs in a
    /// worker process reads no mirrors.yaml and no SQLite: it gets everything in its job. The plumbing
    /// writes no state (the supervisor's sync does, off the pipe readers).
    static let confined: [String: Set<String>] = ["Sync/Worker": ["Base", "Remotes", "Workers"], "Workers": ["Base", "Config", "Remotes"]]
    /// Which folders may import a library; a library not listed may be imported anywhere.
    static let owners: [String: Set<String>] = [
        "Yams": ["Config"], "GRDB": ["State"], "Hummingbird": ["Daemon"], "HTTPTypes": ["Daemon"],
        "ServiceLifecycle": ["Daemon"], "UnixSignals": ["Daemon"], "Prometheus": ["Daemon"], "AsyncAlgorithms": ["Daemon"],
        "ArgumentParser": [], "CLibgit2": [], "CCurl": ["Remotes"], "Mustache": ["Daemon"], "CCrypt": ["Daemon"],
    ]

    static let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Sources/MirrorCore")

    /// Text without comments and string literals, so that a word in a message is not a use.
    static func code(_ text: String) -> String {
        var result = text
        for pattern in [#"(?s)/\*.*?\*/"#, #"//[^\n]*"#, #"(?s)"""(.*?)""""#, #""(?:\\.|[^"\\\n])*""#] {
            result = result.replacingOccurrences(of: pattern, with: " ", options: .regularExpression)
        }
        return result
    }

    /// The names a file declares at its top level (types, functions, constants).
    static func declarations(_ code: String) -> Set<String> {
        let pattern = #"(?m)^(?:@\w+(?:\([^)]*\))?\s+)*(?:(?:public|internal|private|fileprivate|package|final|nonisolated)\s+)*(?:struct|class|enum|actor|protocol|typealias|func|let|var)\s+([A-Za-z_]\w*)"#
        let regex = try! NSRegularExpression(pattern: pattern)
        return Set(regex.matches(in: code, range: NSRange(code.startIndex..., in: code)).compactMap { Range($0.range(at: 1), in: code).map { String(code[$0]) } })
    }

    /// Every use of a name from a higher or sibling layer, and every import outside its owner.
    static func violations(_ files: [(folder: String, name: String, text: String)]) -> [String] {
        var declaredIn: [String: String] = [:]
        let codes = files.map { (folder: $0.folder, name: $0.name, code: code($0.text)) }
        for file in codes {
            for name in declarations(file.code) { declaredIn[name] = file.folder }
        }
        var found: [String] = []
        for file in codes {
            guard let layer = layers[file.folder] else {
                found.append("\(file.folder)/\(file.name): folder \(file.folder) is not a layer (add it to DESIGN and to this check)")
                continue
            }
            let words = Set(file.code.split { !($0.isLetter || $0.isNumber || $0 == "_") }.map(String.init))
            for word in words.sorted() {
                guard let folder = declaredIn[word], folder != file.folder, let other = layers[folder] else { continue }
                if other >= layer {
                    found.append("\(file.folder)/\(file.name) uses \(word), declared in \(folder), \(other == layer ? "a sibling" : "a higher") layer")
                } else if let allowed = confined[file.folder], !allowed.contains(folder) {
                    found.append("\(file.folder)/\(file.name) uses \(word), declared in \(folder), which \(file.folder) may not use")
                }
            }
            for line in file.code.split(separator: "\n") where line.hasPrefix("import ") || line.hasPrefix("@testable import ") {
                let module = String(line.split(separator: " ").last ?? "")
                if let owner = owners[module], !owner.contains(file.folder) {
                    found.append("\(file.folder)/\(file.name) imports \(module), which only \(owner.isEmpty ? "the executable" : owner.sorted().joined(separator: ", ")) may import")
                }
            }
        }
        return found
    }

    /// Every source file, by the folder it is in (`Sync/Worker` for a file there).
    static func mirrorCoreFiles() throws -> [(folder: String, name: String, text: String)] {
        var files: [(String, String, String)] = []
        for path in (FileManager.default.subpaths(atPath: sources.path) ?? []).sorted() where path.hasSuffix(".swift") {
            let url = URL(fileURLWithPath: path)
            files.append((url.deletingLastPathComponent().relativePath, url.lastPathComponent,
                          try String(contentsOf: sources.appendingPathComponent(path), encoding: .utf8)))
        }
        return files
    }

    @Test func mirrorCoreFoldersDependOnLowerLayersOnly() throws {
        let files = try Self.mirrorCoreFiles()
        #expect(Set(files.map(\.folder)) == Set(Self.layers.keys))
        let found = Self.violations(files)
        #expect(found.isEmpty, "\(found.joined(separator: "\n"))")
    }

    /// What every sync's processes run (its state, the worker side, the plumbing, redaction) stays off
    /// Foundation's ICU-backed APIs: a regular expression, a date formatter or GRDB's own date
    /// conversion loads ICU's engine and data, ~3 MiB of every process's memory (#27), and
    /// `String(format:)` Foundation's format machinery. `StoredDate`, `decimal`, `hex16` and the
    /// hand-written scanners in Base replace them.
    @Test func theSteadyStatePathStaysOffICU() throws {
        let banned = ["NSRegularExpression", "DateFormatter", "Regex(", "Date.fetch", "Date?.fetch", "Calendar(", "Locale(",
                      "String(format:"]
        let folders: Set<String> = ["Base", "State", "Workers", "Sync/Worker"]
        var found: [String] = []
        for file in try Self.mirrorCoreFiles() where folders.contains(file.folder) {
            let code = Self.code(file.text)
            for name in banned where code.contains(name) { found.append("\(file.folder)/\(file.name) uses \(name)") }
            // A Date given to SQL as an argument goes through GRDB's DateFormatter.
            if file.folder == "State", code.contains("arguments: [Date()") || code.contains(".set(to: Date())") {
                found.append("\(file.folder)/\(file.name) passes a Date to SQL; pass StoredDate.text(date)")
            }
        }
        // A known, rare path: a gitolite access pattern matched on the worker side (SSHAccess).
        found.removeAll { $0 == "Sync/Worker/SSHAccess.swift uses Regex(" }
        #expect(found.isEmpty, "\(found.joined(separator: "\n"))")
    }

    @Test func theCheckCatchesAnUpwardUseASiblingUseAndAStrayImport() {
        // Given a lower layer that names a higher one's type, a sibling's type, and imports GRDB outside State
        let files = [
            (folder: "Daemon", name: "Scheduler.swift", text: "public actor Scheduler {}\n"),
            (folder: "State", name: "Store.swift", text: "import GRDB\nstruct Store {}\n"),
            (folder: "Remotes", name: "Forge.swift", text: "import GRDB\n// Scheduler in a comment is fine\nlet message = \"Scheduler\"\nfunc f(_ s: Scheduler, _ t: Store) {}\n"),
        ]
        let found = LayeringTests.violations(files)
        #expect(found.contains("Remotes/Forge.swift uses Scheduler, declared in Daemon, a higher layer"), "\(found)")
        #expect(found.contains("Remotes/Forge.swift uses Store, declared in State, a sibling layer"), "\(found)")
        #expect(found.contains("Remotes/Forge.swift imports GRDB, which only State may import"), "\(found)")
        #expect(found.count == 3, "\(found)")
    }
}
