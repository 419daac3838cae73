package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"ferry.dev/ferry/e2e/harness"
	"ferry.dev/ferry/state"
)

// productionCrashPatch makes only production's pods crash-loop.
const productionCrashPatch = `resources:
  - ../../base
images:
  - name: registry.invalid/web
    newTag: v1
patches:
  - target: {kind: Deployment, name: web}
    patch: |-
      - op: add
        path: /spec/template/metadata/annotations
        value: {stage.ferry.dev/fail: CrashLoopBackOff}
`

// TestProductionFailureRevertsProduction: a commit healthy in staging is
// promoted and fails in production only; the production branch gets the
// revert, and staging keeps its verdict.
func TestProductionFailureRevertsProduction(t *testing.T) {
	p := newPipeline(t, pipelineFiles("v1"))
	first := p.tip(t, "main")
	startFerry(t, p.config())
	p.waitDecided(t, "production", first, 2*time.Minute)

	bad := p.pushMain(t, map[string]string{"envs/production/kustomization.yaml": productionCrashPatch}, "Tune production")
	if v := p.waitDecided(t, "staging", bad, 2*time.Minute); v.Outcome != state.OutcomeHealthy || v.Action.String() != "promoted to production" {
		t.Fatalf("staging: %+v", v)
	}
	v := p.waitDecided(t, "production", bad, time.Minute)
	if v.Outcome != state.OutcomeFailed || !strings.HasPrefix(v.Action.String(), "reverted by ") {
		t.Fatalf("production: %+v", v)
	}
	revert := p.tip(t, "production")
	if parent := p.git(t, "rev-parse", revert+"^"); parent != bad {
		t.Fatalf("production revert's parent is %s, want %s", parent[:7], bad[:7])
	}
	if p.git(t, "rev-parse", revert+"^{tree}") != p.git(t, "rev-parse", first+"^{tree}") {
		t.Fatal("production revert's tree is not production's last healthy tree")
	}
	if p.tip(t, "main") != bad {
		t.Fatal("main was changed by production's revert")
	}
	if sv, _ := p.state(t, "staging").VerdictFor(bad); sv.Outcome != state.OutcomeHealthy {
		t.Fatalf("staging's verdict changed: %+v", sv)
	}
	if rv := p.waitDecided(t, "production", revert, 2*time.Minute); rv.Outcome != state.OutcomeHealthy {
		t.Fatalf("production revert: %+v", rv)
	}
}

// TestRevertThatFailsStalls: when the revert fails too, the environment is
// Stalled and there is no second revert.
func TestRevertThatFailsStalls(t *testing.T) {
	e := newTestEnv(t, appFiles("v1"))
	e.extra = "    onFailure: revert\n"
	first, _ := e.wc.Git(t.Context(), "rev-parse", "HEAD")
	e.start(t)
	requireHealthy(t, e.waitVerdict(t, first, 2*time.Minute))

	// The bad commit crash-loops and makes a ConfigMap immutable, so the
	// API server refuses to take it back to the last healthy data.
	bad := withPodAnnotation("v2", harness.FailCrashLoop)
	bad["base/config.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\nimmutable: true\ndata:\n  greeting: frozen\n"
	badSHA := e.push(t, bad, nil, "Freeze config and deploy v2")
	var revert string
	eventually(t, time.Minute, func() (bool, string) {
		v, _ := e.state(t).VerdictFor(badSHA)
		revert = strings.TrimPrefix(v.Action.String(), "reverted by ")
		return revert != v.Action.String(), fmt.Sprintf("verdict %+v", v)
	})
	eventually(t, time.Minute, func() (bool, string) {
		st := e.state(t)
		return st.Phase == state.PhaseStalled, fmt.Sprintf("phase %s: %s", st.Phase, st.Message)
	})
	st := e.state(t)
	rv := st.History[0]
	if !strings.HasPrefix(rv.Commit, revert) || rv.Outcome != state.OutcomeError || !strings.HasPrefix(rv.Action.String(), "stalled: ") {
		t.Fatalf("history head: %+v, want the revert %s failed and stalled", rv, revert)
	}
	time.Sleep(3 * time.Second) // a few more intervals: still no second revert
	e.wc.Git(t.Context(), "fetch", "--quiet", "origin")
	count, _ := e.wc.Git(t.Context(), "rev-list", "--count", badSHA+"..origin/main")
	if count != "1" {
		t.Fatalf("%s commits after the bad one, want exactly the one revert", count)
	}
}

// TestHotfixHoldsPromotion: a commit made straight on production holds
// the next promotion, and the hotfix stays.
func TestHotfixHoldsPromotion(t *testing.T) {
	p := newPipeline(t, pipelineFiles("v1"))
	first := p.tip(t, "main")
	startFerry(t, p.config())
	p.waitDecided(t, "production", first, 2*time.Minute)

	p.git(t, "checkout", "--quiet", "-B", "production", "origin/production")
	hotfix, err := p.wc.CommitAndPush(t.Context(), map[string]string{"envs/production/kustomization.yaml": strings.Replace(pipelineFiles("v1")["envs/production/kustomization.yaml"], "v1", "v1-hotfix", 1)}, "Hotfix production")
	if err != nil {
		t.Fatal(err)
	}
	if v := p.waitDecided(t, "production", hotfix, 2*time.Minute); v.Outcome != state.OutcomeHealthy {
		t.Fatalf("hotfix: %+v", v)
	}
	good := p.pushMain(t, pipelineFiles("v2"), "Deploy web v2")
	v := p.waitDecided(t, "staging", good, 2*time.Minute)
	want := fmt.Sprintf("held: production has %s (Hotfix production) that main lacks", hotfix[:7])
	if v.Outcome != state.OutcomeHealthy || v.Action.String() != want {
		t.Fatalf("staging decision: %+v, want %q", v, want)
	}
	if tip := p.tip(t, "production"); tip != hotfix {
		t.Fatalf("production moved from the hotfix to %s", tip[:7])
	}
}

// TestDecisionsResumeExactlyOnce: ferry stopped after a verdict and before
// its push makes the decision after a restart, exactly once, for a
// promotion and for a revert.
func TestDecisionsResumeExactlyOnce(t *testing.T) {
	p := newPipeline(t, pipelineFiles("v1"))
	first := p.tip(t, "main")
	stop := startFerry(t, p.config())
	p.waitDecided(t, "production", first, 2*time.Minute)
	stop()

	store := state.NewStore(p.c, p.stateNS)
	undecided := func(commit string, outcome state.Outcome, healthy bool) {
		t.Helper()
		if _, err := store.Update(t.Context(), "staging", func(st *state.State) error {
			st.Record(state.Verdict{Commit: commit, Outcome: outcome, Reason: "recorded before a crash", Started: time.Now(), Finished: time.Now()})
			if healthy {
				st.LastHealthy = &state.Revision{Commit: commit, Time: time.Now()}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}

	t.Log("a healthy verdict without its promotion")
	good := p.pushMain(t, pipelineFiles("v2"), "Deploy web v2")
	undecided(good, state.OutcomeHealthy, true)
	stop = startFerry(t, p.config())
	if v := p.waitDecided(t, "staging", good, time.Minute); v.Action.String() != "promoted to production" {
		t.Fatalf("after restart: %+v", v)
	}
	if tip := p.tip(t, "production"); tip != good {
		t.Fatalf("production at %s, want %s", tip[:7], good[:7])
	}
	stop()

	t.Log("a failed verdict without its revert")
	bad := p.pushMain(t, pipelineFiles("v3"), "Deploy web v3")
	undecided(bad, state.OutcomeFailed, false)
	stop = startFerry(t, p.config())
	v := p.waitDecided(t, "staging", bad, time.Minute)
	if !strings.HasPrefix(v.Action.String(), "reverted by ") {
		t.Fatalf("after restart: %+v", v)
	}
	stop()
	// As if ferry died after the push and before recording it.
	if _, err := store.Update(t.Context(), "staging", func(st *state.State) error {
		st.SetAction(bad, state.Action{})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	startFerry(t, p.config())
	revert := p.tip(t, "main")
	p.waitDecided(t, "staging", revert, 2*time.Minute)
	time.Sleep(2 * time.Second)
	if count := p.git(t, "rev-list", "--count", bad+"..origin/main"); count != "1" {
		t.Fatalf("%s commits after the failed one, want exactly one revert", count)
	}
	if tip := p.tip(t, "production"); tip != good {
		t.Fatalf("production moved to %s", tip[:7])
	}
}

// TestRevertThatWouldDeleteANamespaceIsHeld: ferry does not revert when
// the last healthy rendering would delete a Namespace; a person must.
func TestRevertThatWouldDeleteANamespaceIsHeld(t *testing.T) {
	e := newTestEnv(t, appFiles("v1"))
	e.extra = "    onFailure: revert\n"
	first, _ := e.wc.Git(t.Context(), "rev-parse", "HEAD")
	e.start(t)
	requireHealthy(t, e.waitVerdict(t, first, 2*time.Minute))

	bad := withPodAnnotation("v2", harness.FailCrashLoop)
	bad["envs/staging/kustomization.yaml"] = "resources:\n  - ../../base\n  - extra.yaml\n  - ns.yaml\n"
	bad["envs/staging/ns.yaml"] = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + e.ns + "-data\n"
	t.Cleanup(func() { _ = e.c.Delete(t.Context(), namespaceObject(e.ns+"-data")) })
	badSHA := e.push(t, bad, nil, "Add a data namespace and v2")
	var v state.Verdict
	eventually(t, time.Minute, func() (bool, string) {
		v, _ = e.state(t).VerdictFor(badSHA)
		return !v.Action.IsZero(), fmt.Sprintf("verdict %+v", v)
	})
	if v.Outcome != state.OutcomeFailed || !strings.Contains(v.Action.String(), "held: the revert would delete Namespace "+e.ns+"-data") {
		t.Fatalf("decision: %+v", v)
	}
	e.wc.Git(t.Context(), "fetch", "--quiet", "origin")
	if tip, _ := e.wc.Git(t.Context(), "rev-parse", "origin/main"); tip != badSHA {
		t.Fatalf("a revert was pushed: main at %s", tip[:7])
	}
}
