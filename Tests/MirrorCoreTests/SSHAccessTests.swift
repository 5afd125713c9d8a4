import Foundation
import Testing
@testable import MirrorCore

/// What doctor reads of an SSH address and of gitolite's `info`, without a server.
@Suite struct SSHAccessTests {
    @Test func addressesGiveTheLoginAndGitolitesName() {
        let url = SSHAccessProbe.Target("ssh://git@git.example.com:2222/team/app.git")
        #expect(url == SSHAccessProbe.Target("ssh://git@git.example.com:2222/team/app.git"))
        #expect(url?.user == "git" && url?.host == "git.example.com" && url?.port == 2222 && url?.repositoryName == "team/app")
        let scp = SSHAccessProbe.Target("gitolite@host.example:backup")
        #expect(scp?.user == "gitolite" && scp?.host == "host.example" && scp?.port == nil && scp?.repositoryName == "backup")
    }

    @Test func gitolitesInfoSaysWhatTheUserMayDo() {
        let info = """
            hello mirror, this is git@vm running gitolite3 3.6.12-1 (Debian) on git 2.39.5

                 C\twild/[a-z]+
             R W\tbackup
             R  \treadonly
             R W\twild/abc
            """
        #expect(GitoliteAccess.parse(info: info, repository: "backup") == GitoliteAccess(repository: "backup", exists: true, read: true, write: true))
        #expect(GitoliteAccess.parse(info: info, repository: "readonly")?.write == false)
        #expect(GitoliteAccess.parse(info: info, repository: "wild/abc")?.exists == true)
        let wild = GitoliteAccess.parse(info: info, repository: "wild/new")
        #expect(wild?.exists == false && wild?.createPattern == "wild/[a-z]+")
        // gitolite anchors its patterns: wild/new/deeper is not under wild/[a-z]+
        #expect(GitoliteAccess.parse(info: info, repository: "wild/new/deeper")?.createPattern == nil)
        // Another forced command (Gitea, GitLab) answers otherwise: not gitolite
        #expect(GitoliteAccess.parse(info: "Gitea: Invalid command", repository: "x") == nil)
    }
}
