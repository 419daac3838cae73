package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"ferry.dev/ferry/sandbox"
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
	e := newEnv(t, appFiles("v1"))
	e.extra = "    onFailure: revert\n"
	first := e.head(t)
	e.start(t)
	requireHealthy(t, e.waitVerdict(t, e.name, first, 2*time.Minute))

	// The bad commit crash-loops and makes a ConfigMap immutable, so the
	// API server refuses to take it back to the last healthy data.
	bad := withPodAnnotation("v2", sandbox.FailCrashLoop)
	bad["base/config.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\nimmutable: true\ndata:\n  greeting: frozen\n"
	badSHA := e.push(t, bad, nil, "Freeze config and deploy v2")
	var revert string
	eventually(t, time.Minute, func() (bool, string) {
		v, _ := e.state(t, e.name).VerdictFor(badSHA)
		revert = strings.TrimPrefix(v.Action.String(), "reverted by ")
		return revert != v.Action.String(), fmt.Sprintf("verdict %+v", v)
	})
	eventually(t, time.Minute, func() (bool, string) {
		st := e.state(t, e.name)
		return st.Phase == state.PhaseStalled, fmt.Sprintf("phase %s: %s", st.Phase, st.Message)
	})
	st := e.state(t, e.name)
	rv := st.History[0]
	if !strings.HasPrefix(rv.Commit, revert) || rv.Outcome != state.OutcomeError || !strings.HasPrefix(rv.Action.String(), "stalled: ") {
		t.Fatalf("history head: %+v, want the revert %s failed and stalled", rv, revert)
	}
	// A few more intervals: still exactly the one revert, no second.
	consistently(t, 3*time.Second, func() (bool, string) {
		e.git(t, "fetch", "--quiet", "origin")
		count := e.git(t, "rev-list", "--count", badSHA+"..origin/main")
		return count == "1", fmt.Sprintf("%s commits after the bad one, want exactly the one revert", count)
	})
}

// TestRevertThatWouldDeleteANamespaceIsHeld: ferry does not revert when
// the last healthy rendering would delete a Namespace; a person must.
func TestRevertThatWouldDeleteANamespaceIsHeld(t *testing.T) {
	e := newEnv(t, appFiles("v1"))
	e.extra = "    onFailure: revert\n"
	first := e.head(t)
	e.start(t)
	requireHealthy(t, e.waitVerdict(t, e.name, first, 2*time.Minute))

	bad := withPodAnnotation("v2", sandbox.FailCrashLoop)
	bad["envs/staging/kustomization.yaml"] = "resources:\n  - ../../base\n  - extra.yaml\n  - ns.yaml\n"
	bad["envs/staging/ns.yaml"] = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + e.ns + "-data\n"
	t.Cleanup(func() { _ = e.c.Delete(t.Context(), namespaceObject(e.ns+"-data")) })
	badSHA := e.push(t, bad, nil, "Add a data namespace and v2")
	var v state.Verdict
	eventually(t, time.Minute, func() (bool, string) {
		v, _ = e.state(t, e.name).VerdictFor(badSHA)
		return v.Action.String() != "", fmt.Sprintf("verdict %+v", v)
	})
	if v.Outcome != state.OutcomeFailed || !strings.Contains(v.Action.String(), "held: the revert would delete Namespace "+e.ns+"-data") {
		t.Fatalf("decision: %+v", v)
	}
	if tip := e.tip(t, "main"); tip != badSHA {
		t.Fatalf("a revert was pushed: main at %s", tip[:7])
	}
}
