package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"ferry.dev/ferry/sandbox"
	"ferry.dev/ferry/state"
)

// TestPromoteAndRevert: a good commit is promoted to production by a
// fast-forward; a bad commit fails in staging within seconds and is
// reverted in git to the last healthy tree; production never sees it; a
// person's revert of the revert is held as quarantined until released.
func TestPromoteAndRevert(t *testing.T) {
	p := newPipeline(t, pipelineFiles("v1"))
	first := p.tip(t, "main")
	startFerry(t, p.config())
	if v := p.waitDecided(t, "staging", first, 2*time.Minute); v.Outcome != state.OutcomeHealthy || v.Action.String() != "promoted to production" {
		t.Fatalf("first commit in staging: %+v", v)
	}
	p.waitDecided(t, "production", first, 2*time.Minute)

	t.Log("a good commit is promoted by fast-forward")
	good := p.pushMain(t, pipelineFiles("v2"), "Deploy web v2")
	if v := p.waitDecided(t, "staging", good, 2*time.Minute); v.Outcome != state.OutcomeHealthy || v.Action.String() != "promoted to production" {
		t.Fatalf("good commit in staging: %+v", v)
	}
	if tip := p.tip(t, "production"); tip != good {
		t.Fatalf("production at %s, want the fast-forward to %s", tip[:7], good[:7])
	}
	if v := p.waitDecided(t, "production", good, 2*time.Minute); v.Outcome != state.OutcomeHealthy {
		t.Fatalf("good commit in production: %+v", v)
	}
	if img := p.webTemplate(t, p.prodNS)["image"]; img != "registry.invalid/web:v2" {
		t.Fatalf("production runs %s", img)
	}

	t.Log("a bad commit fails in staging and is reverted in git")
	start := time.Now()
	bad := p.pushMain(t, withPodAnnotation("v3", sandbox.FailCrashLoop), "Deploy web v3")
	v := p.waitDecided(t, "staging", bad, time.Minute)
	if v.Outcome != state.OutcomeFailed || !strings.HasPrefix(v.Action.String(), "reverted by ") {
		t.Fatalf("bad commit in staging: %+v", v)
	}
	revert := p.tip(t, "main")
	t.Logf("bad commit reverted after %s: %s", time.Since(start).Round(time.Millisecond), v.Action)
	msg := p.git(t, "log", "-1", "--format=%B", revert)
	for _, want := range []string{`Revert "Deploy web v3"`, "This reverts commit " + bad + ".", "Ferry-Reverted: " + bad, "Ferry-Reason: Deployment"} {
		if !strings.Contains(msg, want) {
			t.Errorf("revert message lacks %q:\n%s", want, msg)
		}
	}
	if parent := p.git(t, "rev-parse", revert+"^"); parent != bad {
		t.Errorf("revert's parent %s, want the failed commit %s", parent[:7], bad[:7])
	}
	if p.git(t, "rev-parse", revert+"^{tree}") != p.git(t, "rev-parse", good+"^{tree}") {
		t.Error("revert's tree is not the last healthy revision's tree")
	}
	if rv := p.waitDecided(t, "staging", revert, 2*time.Minute); rv.Outcome != state.OutcomeHealthy {
		t.Fatalf("revert commit in staging: %+v", rv)
	}
	if ann := p.webTemplate(t, p.ns); ann[sandbox.FailAnnotation] != "" || ann["image"] != "registry.invalid/web:v2" {
		t.Fatalf("staging not back on the last healthy objects: %v", ann)
	}
	// The revert renders like the good commit, so production has nothing to take.
	if tip := p.tip(t, "production"); tip != good {
		t.Fatalf("production moved to %s, want it still at %s", tip[:7], good[:7])
	}
	if ann := p.webTemplate(t, p.prodNS); ann[sandbox.FailAnnotation] != "" {
		t.Fatal("production saw the bad commit")
	}

	t.Log("a person's revert of the revert is held as quarantined")
	p.git(t, "fetch", "--quiet", "origin")
	p.git(t, "checkout", "--quiet", "-B", "main", "origin/main")
	p.git(t, "revert", "--no-edit", "HEAD")
	if err := p.wc.Push(t.Context()); err != nil {
		t.Fatal(err)
	}
	again := p.git(t, "rev-parse", "HEAD")
	qv := p.waitDecided(t, "staging", again, time.Minute)
	if qv.Outcome != state.OutcomeQuarantined || !strings.Contains(qv.Reason, "identical to reverted "+bad[:7]) {
		t.Fatalf("revert of the revert: %+v", qv)
	}
	if ann := p.webTemplate(t, p.ns); ann[sandbox.FailAnnotation] != "" {
		t.Fatal("the quarantined rendering was applied")
	}

	t.Log("releasing it lets the loop evaluate it again")
	if _, err := state.NewStore(p.c, p.stateNS).Update(t.Context(), "staging", func(st *state.State) error {
		if released := st.Release(bad[:7]); len(released) != 1 {
			return fmt.Errorf("released %v", released)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	rv := p.waitDecided(t, "staging", again, time.Minute)
	if rv.Outcome != state.OutcomeFailed {
		t.Fatalf("released commit: %+v, want it applied and failed again", rv)
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

// TestPromotionAfterProductionRevert: after production reverted a
// production-only failure, a commit rendering production identical to the
// reverted one is not promoted; a fixed one is promoted with a promotion
// commit on production's revert, carrying the verified tree.
func TestPromotionAfterProductionRevert(t *testing.T) {
	p := newPipeline(t, pipelineFiles("v1"))
	first := p.tip(t, "main")
	startFerry(t, p.config())
	p.waitDecided(t, "production", first, 2*time.Minute)
	bad := p.pushMain(t, map[string]string{"envs/production/kustomization.yaml": productionCrashPatch}, "Tune production")
	if v := p.waitDecided(t, "production", bad, time.Minute); !strings.HasPrefix(v.Action.String(), "reverted by ") {
		t.Fatalf("production: %+v", v)
	}
	revert := p.tip(t, "production")

	t.Log("a staging-only change still carrying production's reverted rendering")
	same := p.pushMain(t, map[string]string{"envs/staging/extra.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  k: v2\n"}, "Tune staging")
	v := p.waitDecided(t, "staging", same, 2*time.Minute)
	if v.Outcome != state.OutcomeHealthy || !strings.Contains(v.Action.String(), "held: production renders identical to "+bad[:7]) {
		t.Fatalf("promotion of a quarantined rendering: %+v", v)
	}
	if tip := p.tip(t, "production"); tip != revert {
		t.Fatalf("production moved to %s", tip[:7])
	}

	t.Log("the fix is promoted with a promotion commit")
	fix := p.pushMain(t, map[string]string{"envs/production/kustomization.yaml": pipelineFiles("v1")["envs/production/kustomization.yaml"]}, "Fix production")
	if v := p.waitDecided(t, "staging", fix, 2*time.Minute); v.Action.String() != "promoted to production" {
		t.Fatalf("fix: %+v", v)
	}
	promo := p.tip(t, "production")
	if parent := p.git(t, "rev-parse", promo+"^"); parent != revert {
		t.Fatalf("promotion commit's parent %s, want production's revert %s", parent[:7], revert[:7])
	}
	if p.git(t, "rev-parse", promo+"^{tree}") != p.git(t, "rev-parse", fix+"^{tree}") {
		t.Fatal("the promotion commit's tree is not the verified tree")
	}
	if msg := p.git(t, "log", "-1", "--format=%B", promo); !strings.Contains(msg, "Ferry-Promoted-From: staging@"+fix) {
		t.Fatalf("promotion commit message:\n%s", msg)
	}
	if v := p.waitDecided(t, "production", promo, 2*time.Minute); v.Outcome != state.OutcomeHealthy {
		t.Fatalf("production on the promotion commit: %+v", v)
	}
}
