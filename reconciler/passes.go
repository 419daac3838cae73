package reconciler

import (
	"context"
	"runtime"
)

// passSlots bound how many environments of one process go through the
// heavy part of a pass at once: render, apply and prune. Ten environments
// starting together would otherwise each hold a decoded rendering and its
// requests in flight at the same time, on a machine that can work on two;
// bounded, they take turns and the process's peak memory is that of a few
// passes, not of all. Verification, which can soak for minutes, holds no
// slot, nor does a step waiting to be tried again.
type passSlots chan struct{}

// newPassSlots returns n slots; n ≤ 0 takes half of GOMAXPROCS (at least
// one), what ferry runs with: a pass renders, then waits on the
// API server, and the processors it leaves serve the verifications, the
// watches and the other passes' requests. Ten environments of 1000
// objects start in 1m21s with one slot on two cores and in 1m12s with
// two, with a peak of memory 15 MiB lower (BenchmarkFleet).
func newPassSlots(n int) passSlots {
	if n <= 0 {
		n = max(1, runtime.GOMAXPROCS(0)/2)
	}
	return make(passSlots, n)
}

// hold is one pass's claim on a slot. Its zero value and a hold on nil
// slots (one-shot commands, tests) never wait.
type hold struct {
	slots passSlots
	held  bool
}

// take waits for a slot, unless one is held already; it fails only when
// ctx ends.
func (h *hold) take(ctx context.Context) error {
	if h.slots == nil || h.held {
		return nil
	}
	select {
	case h.slots <- struct{}{}:
		h.held = true
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// give hands the slot back, if one is held.
func (h *hold) give() {
	if h.held {
		<-h.slots
		h.held = false
	}
}
