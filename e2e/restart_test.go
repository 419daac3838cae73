package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/apply"
	"ferry.dev/ferry/sandbox"
	"ferry.dev/ferry/state"
)

// TestKillDuringApply: ferry killed in the middle of applying a revision
// converges after a restart, and its inventory holds every object.
func TestKillDuringApply(t *testing.T) {
	const n = 400
	files := map[string]string{}
	for i := range n {
		files[fmt.Sprintf("envs/staging/cm-%03d.yaml", i)] = fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%03d\ndata:\n  i: %q\n", i, fmt.Sprint(i))
	}
	e := newEnv(t, files)
	commit := e.head(t)
	bin := buildFerry(t)
	cfgPath := writeConfig(t, e.config()+"server: {addr: \"127.0.0.1:0\"}\n")
	owned := func() int {
		list := &corev1.ConfigMapList{}
		if err := e.c.List(t.Context(), list, client.InNamespace(e.ns), client.MatchingLabels{apply.OwnerLabel: e.name}); err != nil {
			t.Fatal(err)
		}
		return len(list.Items)
	}

	first := sandbox.StartFerry(t, bin, cfgPath)
	var at int
	eventually(t, 2*time.Minute, func() (bool, string) {
		at = owned()
		return at > 0, "nothing applied yet"
	})
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = first.Process.Wait()
	at = owned()
	t.Logf("killed with %d of %d objects applied", at, n)
	if at == n {
		t.Log("the whole apply finished before the kill; the restart still has to keep everything")
	}

	second := sandbox.StartFerry(t, bin, cfgPath)
	requireHealthy(t, e.waitVerdict(t, e.name, commit, 3*time.Minute))
	if got := owned(); got != n {
		t.Fatalf("%d objects after restart, want %d", got, n)
	}
	if inv := e.state(t, e.name).Inventory; len(inv) != n {
		t.Fatalf("inventory holds %d objects, want %d", len(inv), n)
	}

	// SIGTERM stops ferry cleanly.
	stopFerryProcess(t, second)
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
	// The resumed decision pushes no second revert while ferry reconciles on.
	consistently(t, 2*time.Second, func() (bool, string) {
		p.git(t, "fetch", "--quiet", "origin")
		count := p.git(t, "rev-list", "--count", bad+"..origin/main")
		return count == "1", fmt.Sprintf("%s commits after the failed one, want exactly one revert", count)
	})
	if tip := p.tip(t, "production"); tip != good {
		t.Fatalf("production moved to %s", tip[:7])
	}
}
