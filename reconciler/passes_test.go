package reconciler

import (
	"context"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"ferry.dev/ferry/state"
)

// TestPassSlots: a pass holds its slot while it renders and applies, and
// another environment's pass waits for it; a step waiting to be tried
// again gives its slot back for the wait and takes it again after.
func TestPassSlots(t *testing.T) {
	slots := newPassSlots(1)
	first, second := hold{slots: slots}, hold{slots: slots}
	if err := first.take(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := first.take(t.Context()); err != nil || len(slots) != 1 {
		t.Fatalf("a second take by the holder = %v with %d slots taken, want a no-op", err, len(slots))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if err := second.take(ctx); err == nil {
		t.Fatal("took the only slot while another pass held it")
	}
	first.give()
	if err := second.take(t.Context()); err != nil {
		t.Fatalf("the slot given back was not taken: %v", err)
	}
	second.give()
	if len(slots) != 0 {
		t.Fatalf("%d slots still taken", len(slots))
	}

	r, _, rn := stepReconciler(t)
	rn.slot = hold{slots: slots}
	if err := rn.slot.take(t.Context()); err != nil {
		t.Fatal(err)
	}
	other := make(chan error, 1)
	calls := 0
	step := func(context.Context, *run, bool) error {
		calls++
		if calls == 1 {
			// Another environment's pass asks for the slot while this
			// step waits to be tried again.
			go func() {
				o := hold{slots: slots}
				err := o.take(t.Context())
				o.give()
				other <- err
			}()
			return apierrors.NewServiceUnavailable("etcd leader changed")
		}
		return nil
	}
	if err := r.runStep(t.Context(), rn, "apply", step, false); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-other:
		if err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatal("another pass could not take the slot while this one waited to retry")
	}
	if !rn.slot.held || len(slots) != 1 {
		t.Fatalf("after the retry the pass holds its slot: %v (%d taken), want true (1)", rn.slot.held, len(slots))
	}
	rn.slot.give()
}

// TestRefusedRevisionIsNeverApplied: a pass over a revision whose verdict
// is Refused (nothing of it applied) does not render or apply it, however
// often the loop comes back to it: this reconciler has no renderer or
// applier, and would fail on the first use of either.
func TestRefusedRevisionIsNeverApplied(t *testing.T) {
	r, store, rn := stepReconciler(t)
	commit := rn.rev.Commit.Hash.String()
	reason := "not applied: envs/staging render: over a render limit: the rendering ran past its deadline of 30s (limits.renderTimeout) (3 tries)"
	if _, err := store.Update(t.Context(), "staging", func(st *state.State) error {
		st.Phase, st.Message = state.PhaseFailed, reason
		st.Record(state.Verdict{Commit: commit, Outcome: state.OutcomeRefused, Reason: reason, Action: state.Held("onFailure is hold")})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if newer := r.reconcile(t.Context(), rn.rev); newer != nil {
			t.Fatalf("reconcile returned a newer revision %v", newer)
		}
	}
	st, err := store.Load(t.Context(), "staging")
	if err != nil {
		t.Fatal(err)
	}
	if st.Phase != state.PhaseFailed || st.Message != reason || st.LastApplied != nil || len(st.History) != 1 {
		t.Fatalf("state after passes over a refused revision: phase %s %q, last applied %v, %d verdicts", st.Phase, st.Message, st.LastApplied, len(st.History))
	}
}
