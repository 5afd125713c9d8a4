import Git
import Testing
import TestSupport
@testable import MirrorCore

@Suite(.onTestThreads) struct RefPlanTests {
    let a = ObjectID(hex: String(repeating: "a", count: 40))!
    let b = ObjectID(hex: String(repeating: "b", count: 40))!
    let c = ObjectID(hex: String(repeating: "c", count: 40))!

    func plan(_ source: [String: ObjectID], _ target: [String: ObjectID], policy: Policy = Policy(),
              fastForwards: Set<[ObjectID]> = []) -> [String: PlannedRef] {
        let result = RefPlan.make(source: source, target: target, policy: policy) { old, new in fastForwards.contains([old, new]) }
        return Dictionary(uniqueKeysWithValues: result.refs.map { ($0.ref, $0) })
    }

    @Test func plansCreateFastForwardAndUpToDate() {
        let refs = plan(["refs/heads/new": a, "refs/heads/main": b, "refs/heads/same": c],
                        ["refs/heads/main": a, "refs/heads/same": c], fastForwards: [[a, b]])
        #expect(refs["refs/heads/new"]?.action == .create)
        #expect(refs["refs/heads/main"]?.action == .fastForward)
        #expect(refs["refs/heads/same"]?.action == .upToDate)
    }

    @Test func divergedRefIsKeptUnlessForced() {
        #expect(plan(["refs/heads/main": b], ["refs/heads/main": a])["refs/heads/main"]?.action == .diverged)
        var force = Policy()
        force.force = true
        #expect(plan(["refs/heads/main": b], ["refs/heads/main": a], policy: force)["refs/heads/main"]?.action == .force)
    }

    @Test func movedTagIsDivergedEvenWhenItWouldFastForward() {
        let refs = plan(["refs/tags/v1": b], ["refs/tags/v1": a], fastForwards: [[a, b]])
        #expect(refs["refs/tags/v1"]?.action == .diverged)
    }

    @Test func deletionNeedsPruneAndRespectsTheCap() {
        #expect(plan(["refs/heads/main": a], ["refs/heads/main": a, "refs/heads/gone": b])["refs/heads/gone"]?.action == .keep)
        var prune = Policy()
        prune.prune = true
        #expect(plan(["refs/heads/main": a], ["refs/heads/main": a, "refs/heads/gone": b], policy: prune)["refs/heads/gone"]?.action == .delete)
        prune.maxDeletes = 1
        let result = RefPlan.make(source: ["refs/heads/main": a], target: ["refs/heads/main": a, "refs/heads/x": b, "refs/heads/y": c], policy: prune) { _, _ in false }
        #expect(result.deletionsOverCap == 2)
        #expect(result.count(.delete) == 0 && result.count(.keep) == 2)
    }

    @Test func emptySourceNeverDeletes() {
        var prune = Policy()
        prune.prune = true
        let result = RefPlan.make(source: [:], target: ["refs/heads/main": a], policy: prune) { _, _ in false }
        #expect(result.count(.delete) == 0)
    }

    @Test func refsOutsideTheFiltersAndHostNamespacesAreSkipped() {
        var policy = Policy()
        policy.refs = ["refs/heads/main", "refs/tags/v*"]
        let refs = plan(["refs/heads/main": a, "refs/heads/dev": b, "refs/tags/v1": c, "refs/tags/nightly": c, "refs/pull/1/head": a],
                        ["refs/heads/dev": a, "refs/pull/1/head": b], policy: policy)
        #expect(refs["refs/heads/main"]?.action == .create)
        #expect(refs["refs/tags/v1"]?.action == .create)
        #expect(refs["refs/tags/nightly"] == nil)
        #expect(refs["refs/heads/dev"]?.action == .skip)
        #expect(refs["refs/pull/1/head"]?.action == .skip)
    }

    /// Given the primary's names in git's order, a plan walks them in that order without sorting them
    /// again, and places the secondary's own refs among them as a sort would.
    @Test func aPlanGivenTheSourcesOrderIsThePlanOfASort() {
        let source = ["refs/heads/b": a, "refs/heads/d": b, "refs/tags/v1": c]
        let target = ["refs/heads/a": a, "refs/heads/c": b, "refs/heads/d": b, "refs/tags/v0": c]
        var policy = Policy()
        policy.prune = true
        let sorted = RefPlan.make(source: source, target: target, policy: policy) { _, _ in false }
        let ordered = RefPlan.make(source: source, target: target, policy: policy,
                                   sourceOrder: ["refs/heads/b", "refs/heads/d", "refs/tags/v1"]) { _, _ in false }
        #expect(ordered.refs.map(\.ref) == sorted.refs.map(\.ref))
        #expect(ordered.refs.map(\.ref) == ["refs/heads/a", "refs/heads/b", "refs/heads/c", "refs/heads/d", "refs/tags/v0", "refs/tags/v1"])
        #expect(ordered.refs.map(\.action) == sorted.refs.map(\.action))
    }

    /// A hostile advertisement (a name twice, a name git refuses): each wanted name once, in git's
    /// order, the first value advertised, the refused one left out and not fetched.
    @Test func whatToFetchIsEachWantedNameOnceInGitsOrder() {
        let heads = [RemoteHead(name: "refs/heads/z", id: a), RemoteHead(name: "refs/heads/x..y", id: b),
                     RemoteHead(name: "refs/heads/m", id: c), RemoteHead(name: "refs/heads/m", id: a)]
        let decision = FetchDecision(heads: heads, defaultBranch: "refs/heads/m", patterns: ["refs/heads/*"], cached: ["refs/heads/z": a])
        #expect(decision.wantedOrder == ["refs/heads/m", "refs/heads/z"])
        #expect(decision.wanted == ["refs/heads/m": c, "refs/heads/z": a])
        #expect(decision.missing == ["refs/heads/m"])
        #expect(decision.leftOut.map(\.name) == ["refs/heads/x..y"])
    }
}

/// The one mapping from a run's outcome to what state, alerts and metrics say, as a table.
@Suite(.onTestThreads) struct OutcomeTests {
    @Test func everyResultHasOneCondition() {
        let table: [(RemoteReport.Result, RemoteCondition?)] = [
            (.ok, .ok), (.upToDate, .ok), (.planned, .ok), (.diverged, .diverged), (.failed, .failing), (.interrupted, nil),
        ]
        for (result, condition) in table { #expect(result.condition == condition, "\(result)") }
    }

    @Test func onlyAStopByGitmirrorItselfIsInterrupted() {
        for errorClass in ErrorClass.allCases {
            let result = RemoteReport.Result.ending(in: SyncFailure(errorClass, "x"))
            #expect(result == (errorClass == .interrupted ? .interrupted : .failed), "\(errorClass)")
        }
    }
}
