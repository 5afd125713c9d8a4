import Foundation
import Testing
import TestSupport
@testable import MirrorCore

/// What gitmirror owns under state_dir is never reached through a link.
@Suite(.onTestThreads) struct OwnedPathTests {
    @Test func aQuarantineFolderPlantedAsALinkIsRefusedAndTheCacheStaysWhereItIs() throws {
        // Given a damaged cache to quarantine, and quarantine/ planted as a link to another user's folder
        let sandbox = try Sandbox("owned-quarantine")
        let state = try sandbox.directory("state")
        let elsewhere = try sandbox.directory("elsewhere")
        try FileManager.default.createDirectory(at: state.appendingPathComponent("cache/app.git"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: state.appendingPathComponent("quarantine").path, withDestinationPath: elsewhere.path)
        let cache = Cache(name: "app", stateDirectory: state)

        // When it is quarantined, the move is refused as config, naming the link
        #expect(throws: SyncFailure.self) { try cache.quarantine(stamp: "20261203T000000Z") }
        do {
            _ = try cache.quarantine(stamp: "20261203T000000Z")
        } catch let failure as SyncFailure {
            #expect(failure.errorClass == .config && failure.message.contains("quarantine is a symbolic link"), "\(failure)")
        }

        // Then nothing moved
        #expect(FileManager.default.fileExists(atPath: cache.path))
        #expect(try FileManager.default.contentsOfDirectory(atPath: elsewhere.path).isEmpty)
    }

    @Test func aFolderOfOursIsMadePrivateAndAFileIsOpenedWithoutFollowingALink() throws {
        let sandbox = try Sandbox("owned-open")
        let folder = sandbox.path("mine").path
        try OwnedPath.directory(folder)
        var info = stat()
        #expect(lstat(folder, &info) == 0 && info.st_mode & 0o777 == 0o700)
        let target = sandbox.path("target").path
        try Data("keep".utf8).write(to: URL(fileURLWithPath: target))
        symlink(target, folder + "/file")
        #expect(throws: SyncFailure.self) { _ = try OwnedPath.open(folder + "/file", flags: O_RDWR | O_CREAT | O_TRUNC) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: target)) == Data("keep".utf8))
    }
}
