package reconciler

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"ferry.dev/ferry/internal/faults"
	"ferry.dev/ferry/internal/text"
	"ferry.dev/ferry/source"
	"ferry.dev/ferry/state"
)

// How the loop answers a step's error (faults): a transient error retries
// the step, a terminal one stalls the environment, and only a verdict is
// recorded on the commit and acted on (reverted or held).

const (
	// retryMin and retryMax bound the jittered, doubling wait between tries
	// of a step that failed transiently.
	retryMin = time.Second
	retryMax = time.Minute
	// stallRetry is how long a commit stalled by a terminal error waits
	// before the drift ticker tries it again; a new commit or a trigger
	// tries at once.
	stallRetry = 10 * time.Minute
)

// stepDefaults is the kind of an error no rule of faults knows, per step:
// what render, the scope check and apply reject is the commit's fault; what fails in the
// other steps (state reads and writes, health options) is ferry's or its
// configuration's.
var stepDefaults = map[string]faults.Kind{
	"render": faults.Verdict,
	"scope":  faults.Verdict,
	"apply":  faults.Verdict,
}

// kindOf is the kind of a step's error.
func kindOf(step string, err error) faults.Kind {
	def, ok := stepDefaults[step]
	if !ok {
		def = faults.Terminal
	}
	return faults.Of(err, def)
}

// retryDelay is the wait before try n+1 (n ≥ 1) of a step that failed
// transiently: retryMin doubled per try, capped at retryMax, times a
// jitter factor in [0.8, 1.2) from u in [0, 1).
func retryDelay(n int, u float64) time.Duration {
	d := retryMin
	for i := 1; i < n && d < retryMax; i++ {
		d *= 2
	}
	return time.Duration(float64(min(d, retryMax)) * (0.8 + 0.4*u))
}

// errStopped ends a reconcile whose step failed: the failure was recorded
// (a verdict or a stall), or ctx ended, or a newer revision arrived.
var errStopped = errors.New("stopped")

// runStep runs one step until it succeeds or fails for a reason that is
// not transient. A transient failure shows as the phase Retrying with the
// step and the error, and is tried again after retryDelay; no verdict is
// recorded and the commit's status stays pending. A newer revision ends
// the wait (run.newer).
func (r *Reconciler) runStep(ctx context.Context, rn *run, step string, fn func(context.Context, *run, bool) error, decided bool) error {
	for attempt := 1; ; attempt++ {
		err := fn(ctx, rn, decided)
		switch {
		case err == nil, errors.Is(err, errHeld), errors.Is(err, errWaiting):
			return err
		case ctx.Err() != nil || rn.newer != nil:
			return errStopped
		}
		switch kindOf(step, err) {
		case faults.Transient:
			if !r.waitRetry(ctx, rn, step, err, attempt, decided) {
				return errStopped
			}
		case faults.Terminal:
			r.stall(ctx, rn, step, err)
			return errStopped
		default:
			r.fail(ctx, rn, step, err, decided)
			return errStopped
		}
	}
}

// waitRetry records that step will be tried again and waits for it. It
// returns false when ctx ends or a newer revision arrives first.
func (r *Reconciler) waitRetry(ctx context.Context, rn *run, step string, err error, attempt int, decided bool) bool {
	delay := retryDelay(attempt, r.jitter())
	rn.log.Warn(step+" failed, will retry", "error", err, "attempt", attempt, "in", delay.Round(time.Millisecond))
	if !decided {
		msg := text.OneLine(fmt.Sprintf("%s: %v (attempt %d, next in %s)", step, err, attempt, delay.Round(time.Second)), 400)
		// Best effort: the API server that failed the step may not take
		// the write either; the log has it.
		_, _ = r.store.Update(ctx, r.env.Name, func(st *state.State) error {
			st.Phase, st.Message = state.PhaseRetrying, msg
			return nil
		})
	}
	// The wait holds no pass slot: other environments go on meanwhile.
	held := rn.slot.held
	rn.slot.give()
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case rev := <-r.watcher.Revisions():
		rn.newer = rev
		rn.log.Info("retry cancelled by a newer commit", "newer", state.Short(rev.Commit.Hash.String()))
		return false
	case <-t.C:
		return !held || rn.slot.take(ctx) == nil
	}
}

// stall stops the environment on a terminal error: the phase Stalled with
// a message that names the fix, and no verdict, since the commit is not at
// fault. The commit is tried again on a trigger, a new commit, or after
// stallRetry.
func (r *Reconciler) stall(ctx context.Context, rn *run, step string, err error) {
	rn.log.Error(step+" failed; stalled until fixed", "error", err)
	commit := rn.rev.Commit.Hash.String()
	r.stalls.set(commit, r.now())
	msg := text.OneLine(fmt.Sprintf("%s: %v; %s", step, err, fixHint(err)), 600)
	if _, uerr := r.store.Update(ctx, r.env.Name, func(st *state.State) error {
		st.Phase, st.Message = state.PhaseStalled, msg
		return nil
	}); uerr != nil {
		rn.log.Error("record stall", "error", errors.Join(err, uerr))
	}
}

// fixHint says what a person does about a terminal error.
func fixHint(err error) string {
	switch {
	case errors.Is(err, source.ErrAuth), errors.Is(err, source.ErrHostKey):
		return "fix the credential; ferry tries again when its file changes or on the next push"
	case errors.Is(err, source.ErrBranchNotFound), errors.Is(err, source.ErrRepositoryNotFound):
		return "fix the source's URL or branch in ferry's configuration"
	}
	return fmt.Sprintf("fix the cause (ferry's permissions or configuration); ferry tries again on the next push or in %s", stallRetry)
}

// stalls remembers the commit a terminal error stalled, so the drift
// ticker does not repeat the failing request every interval.
type stalls struct {
	mu     sync.Mutex
	commit string
	at     time.Time
}

func (s *stalls) set(commit string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commit, s.at = commit, at
}

// clear forgets the stall: a trigger or a new commit tries again.
func (s *stalls) clear() { s.set("", time.Time{}) }

// holds reports whether commit is stalled and stallRetry has not passed.
func (s *stalls) holds(commit string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commit != "" && s.commit == commit && now.Before(s.at.Add(stallRetry))
}

// loadState reads the environment's state, retrying transient errors like
// a step.
func (r *Reconciler) loadState(ctx context.Context, rn *run) (*state.State, error) {
	var st *state.State
	err := r.runStep(ctx, rn, "load state", func(ctx context.Context, _ *run, _ bool) error {
		var err error
		st, err = r.store.Load(ctx, r.env.Name)
		if faults.IsTransient(err) {
			return err
		}
		// Why terminal: a state that cannot be read says nothing about
		// the commit, so it must never become its verdict.
		return faults.Mark(faults.Terminal, err)
	}, true)
	return st, err
}

// jitter is a uniform [0, 1) source for retryDelay.
func (r *Reconciler) jitter() float64 { return rand.Float64() }
