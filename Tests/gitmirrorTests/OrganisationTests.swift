import Foundation
import MirrorCore
import Testing
import TestSupport

/// The whole of #11's promise at once: a GitHub-style organisation of 120 repositories (three pages)
/// mirrored into CodeCommit by one discover: entry — created, mirrored with default branches — and a
/// second run that changes nothing.
@Suite(.onTestThreads) struct OrganisationTests {
    static let token = "ghp_OrganisationCanary0123456789abcdEF"

    @Test func anOrganisationOf120RepositoriesIsMirroredIntoCodeCommitAndASecondRunIsANoOp() throws {
        // Given an organisation of 120 repositories, some with develop as their default branch
        let sandbox = try Sandbox("organisation")
        let primaries = try sandbox.directory("primaries/acme")
        // The organisation's repositories are cloned over HTTPS from the API's host, with the source's token.
        let origin = try HTTPSServer(sandbox: sandbox, root: primaries.deletingLastPathComponent(), user: "x-access-token", password: Self.token)
        let api = try ForgeAPIServer(sandbox: sandbox, kind: .github, token: Self.token, accounts: ["acme": "Organization"],
                                     cloneBase: "https://127.0.0.1:\(origin.port)", maxPerPage: 50)
        let template = try BareRepository.create(at: sandbox.path("template.git"))
        try template.commit("first")
        try template.commit("work", on: "develop")
        try template.tag("v1", message: "one")
        let names = (1...120).map { String(format: "service-%03d", $0) }
        try api.update { state in
            state["repositories"] = names.enumerated().map { index, name -> [String: Any] in
                ["path": "acme/\(name)", "visibility": "private", "default_branch": index % 10 == 0 ? "develop" : "main",
                 "description": "The \(name) service"]
            }
        }
        for (index, name) in names.enumerated() {
            let copy = primaries.appendingPathComponent("\(name).git")
            try FileManager.default.copyItem(at: template.url, to: copy)
            try "ref: refs/heads/\(index % 10 == 0 ? "develop" : "main")\n".write(to: copy.appendingPathComponent("HEAD"), atomically: true, encoding: .utf8)
        }
        let moto = try MotoServer(sandbox: sandbox, pageSize: 50)
        let endpoint = try CodeCommitEndpoint(sandbox: sandbox, region: "eu-west-1", accessKey: CodeCommitTests.accessKey,
                                              secretKey: CodeCommitTests.secret, moto: moto)
        let config = try sandbox.write("mirrors.yaml", """
            state_dir: state
            credentials:
              github:
                token_env: GITHUB_TOKEN
                ca_file: \(origin.authority.certificate.path)
            discover:
              - github: acme
                api: \(api.api)
                credentials: github
                secondaries:
                  - name: codecommit
                    url: "codecommit::eu-west-1://{name}"
                    endpoint: \(endpoint.endpoint)
                    create: true
            """)
        var environment = CodeCommitTests().environment(endpoint)
        environment["AWS_ENDPOINT_URL"] = moto.url
        environment["GITHUB_TOKEN"] = Self.token

        // When gitmirror syncs the organisation
        let first = try Gitmirror.run(["sync", "--jobs", "8", "--json"], config: config, environment: environment)

        // Then all three pages were read, every repository was created in CodeCommit with its description and default branch,
        // and holds its primary's refs
        #expect(first.status == 0, "\(first.stderr.suffix(3000))\n\(Self.notInStep(first.stdout))")
        #expect(api.requests.filter { $0.contains("/orgs/acme/repos") }.count == 3, "\(api.requests)")
        let listing = try moto.python("""
            names = []
            token = None
            while True:
                page = client.list_repositories(**({"nextToken": token} if token else {}))
                names += [r["repositoryName"] for r in page["repositories"]]
                token = page.get("nextToken")
                if not token: break
            print(len(names))
            meta = client.batch_get_repositories(repositoryNames=["service-001", "service-002"])["repositories"]
            print(json.dumps({m["repositoryName"]: [m.get("defaultBranch"), m.get("repositoryDescription")] for m in meta}, sort_keys=True))
            """).split(separator: "\n")
        #expect(listing.first == "120")
        #expect(listing.last == #"{"service-001": ["develop", "The service-001 service"], "service-002": ["main", "The service-002 service"]}"#)
        for name in ["service-001", "service-002", "service-120"] {
            #expect(try BareRepository(url: endpoint.root.appendingPathComponent(name)).refs() == template.refs(), "\(name)")
        }
        let reports = try JSONSerialization.jsonObject(with: Data(first.stdout.utf8)) as? [[String: Any]] ?? []
        #expect(reports.count == 120)

        // When it syncs again, nothing changes anywhere
        let second = try Gitmirror.run(["sync", "--jobs", "8", "--json"], config: config, environment: environment)
        #expect(second.status == 0, "\(second.stderr.suffix(3000))\n\(Self.notInStep(second.stdout))")
        let again = try JSONSerialization.jsonObject(with: Data(second.stdout.utf8)) as? [[String: Any]] ?? []
        let results = Set(again.flatMap { ($0["secondaries"] as? [[String: Any]] ?? []).map { $0["result"] as? String ?? "" } })
        #expect(results == ["up_to_date"])
        #expect(again.allSatisfy { ($0["secondaries"] as? [[String: Any]] ?? []).allSatisfy { $0["headNote"] == nil } }, "\(second.stdout.prefix(2000))")
        #expect(!first.stdout.contains(Self.token) && !first.stderr.contains(Self.token))
    }

    @Test func aCodeCommitRegionIsListedAndItsRepositoriesMirroredOut() throws {
        // Given a region holding two repositories (three pages of one), and a backup folder for each
        let sandbox = try Sandbox("discover-codecommit")
        let moto = try MotoServer(sandbox: sandbox, pageSize: 1)
        let endpoint = try CodeCommitEndpoint(sandbox: sandbox, region: "eu-west-1", accessKey: CodeCommitTests.accessKey,
                                              secretKey: CodeCommitTests.secret, moto: moto)
        for name in ["billing", "ledger"] {
            _ = try moto.python("client.create_repository(repositoryName='\(name)', repositoryDescription='The \(name) service')")
            try endpoint.repository(name).commit("\(name) first")
            try BareRepository.create(at: sandbox.path("backup/\(name).git"))
        }
        let config = try sandbox.write("mirrors.yaml", """
            state_dir: state
            discover:
              - codecommit: eu-west-1
                secondaries:
                  - name: backup
                    url: "\(sandbox.path("backup").path)/{name}.git"
            """)
        var environment = CodeCommitTests().environment(endpoint)
        environment["AWS_ENDPOINT_URL"] = moto.url
        environment["CODE_COMMIT_ENDPOINT"] = endpoint.endpoint

        // When discover and sync run
        let listed = try Gitmirror.run(["discover", "--json"], config: config, environment: environment)
        let synced = try Gitmirror.run(["sync"], config: config, environment: environment)

        // Then both repositories were listed through ListRepositories' pages and mirrored from CodeCommit
        #expect(listed.status == 0, "\(listed)")
        let document = try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [String: Any] ?? [:]
        let entries = document["repositories"] as? [[String: Any]] ?? []
        #expect(entries.compactMap { $0["path"] as? String } == ["billing", "ledger"])
        #expect(entries.first?["primary"] as? String == "https://\(endpoint.endpoint)/v1/repos/billing")
        #expect(synced.status == 0, "\(synced)")
        for name in ["billing", "ledger"] {
            #expect(try BareRepository(url: sandbox.path("backup/\(name).git")).refs() == endpoint.repository(name).refs())
        }
    }

    /// The reports of `sync --json` whose primary or a secondary did not end in step (what a failure's message needs).
    static func notInStep(_ json: String) -> String {
        let reports = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [[String: Any]] ?? []
        let bad = reports.filter { report in
            let remotes = [report["primary"] as? [String: Any] ?? [:]] + (report["secondaries"] as? [[String: Any]] ?? [])
            return remotes.contains { !["ok", "up_to_date", nil].contains($0["result"] as? String) }
        }
        return bad.isEmpty ? json.suffix(2000).description
            : bad.prefix(3).compactMap { try? JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]) }
                .map { String(decoding: $0, as: UTF8.self) }.joined(separator: "\n")
    }
}
