package reconciler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	"k8s.io/client-go/util/workqueue"

	"ferry.dev/ferry/apply"
	"ferry.dev/ferry/internal/faults"
	"ferry.dev/ferry/internal/text"
	"ferry.dev/ferry/state"
)

// Drift: the watches (apply.Watches) report each change of the
// environment's live objects. A change ferry did not make is corrected
// for that object alone, at once, and again with a growing delay while
// someone keeps changing it. What could not be corrected shows as the
// phase Drifted, an Event, a metric and a line in `ferry history`; it is
// never the verdict of a revision.

const (
	// driftFirst and driftMax bound the delay before correcting an
	// object, which doubles while corrections of it follow each other.
	driftFirst = 20 * time.Millisecond
	driftMax   = time.Minute
	// driftQuiet resets an object's delay once it stayed put this long.
	driftQuiet = time.Minute
)

// drift is one environment's drift correction: its queue, and what the
// watches tell health.
type drift struct {
	// wake tells the health check that something it reads changed.
	wake chan struct{}
	mu   sync.Mutex
	// queue holds the objects to correct while the environment's loop
	// runs in this process; nil while it does not (its Lease is held
	// elsewhere).
	queue workqueue.TypedRateLimitingInterface[object.ObjMetadata]
	// namespaces are those whose pods the running verification reads;
	// nil while none runs. changed and podsChanged are what changed since
	// the verification last asked (Changed).
	namespaces  map[string]bool
	changed     map[object.ObjMetadata]bool
	podsChanged map[string]bool
	suspended   bool
	// last is when each object was last corrected, and failed the error
	// each last failed with (the worker's own).
	last   map[object.ObjMetadata]time.Time
	failed map[object.ObjMetadata]string
}

func newDrift() *drift {
	return &drift{
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[object.ObjMetadata](driftFirst, driftMax),
			workqueue.TypedRateLimitingQueueConfig[object.ObjMetadata]{Name: ""}),
		wake:   make(chan struct{}, 1),
		last:   map[object.ObjMetadata]time.Time{},
		failed: map[object.ObjMetadata]string{},
	}
}

// onChange takes a watch's change: drift of this environment's objects
// goes to the queue; anything a verification reads wakes it.
func (r *Reconciler) onChange(c apply.Change) {
	d := r.drift
	own := c.Owner == r.env.Name
	d.mu.Lock()
	q, suspended, verifying, readsPods := d.queue, d.suspended, d.namespaces != nil, d.namespaces[c.ID.Namespace]
	switch {
	case verifying && own:
		d.changed[c.ID] = true
	case c.Owner == "" && readsPods:
		d.podsChanged[c.ID.Namespace] = true
	}
	d.mu.Unlock()
	if q != nil && own && !c.Status && !suspended && !r.applier.Untouched(c) {
		q.AddRateLimited(c.ID)
	}
	if own || (c.Owner == "" && readsPods) {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
}

// verifying tells onChange which namespaces' pods the verification reads;
// nil when none runs.
func (d *drift) verifying(namespaces map[string]bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.namespaces = namespaces
	d.changed, d.podsChanged = map[object.ObjMetadata]bool{}, map[string]bool{}
}

// Wake and Changed tell the health check what changed (health.Changes).
func (d *drift) Wake() <-chan struct{} { return d.wake }

func (d *drift) Changed() (map[object.ObjMetadata]bool, map[string]bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	changed, pods := d.changed, d.podsChanged
	d.changed, d.podsChanged = map[object.ObjMetadata]bool{}, map[string]bool{}
	return changed, pods
}

func (d *drift) setSuspended(s bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.suspended = s
}

// correctDrift corrects the queued objects one at a time until ctx ends,
// with a queue of its own: a loop that stops (its Lease went elsewhere)
// and runs again starts afresh.
func (r *Reconciler) correctDrift(ctx context.Context) {
	q := workqueue.NewTypedRateLimitingQueue(
		workqueue.NewTypedItemExponentialFailureRateLimiter[object.ObjMetadata](driftFirst, driftMax))
	d := r.drift
	d.mu.Lock()
	d.queue = q
	d.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		d.mu.Lock()
		if d.queue == q {
			d.queue = nil
		}
		d.mu.Unlock()
		q.ShutDown()
	})
	defer stop()
	for {
		id, quit := q.Get()
		if quit {
			return
		}
		r.correct(ctx, q, id)
		q.Done(id)
	}
}

// correct restores one object to git's version and says what happened.
func (r *Reconciler) correct(ctx context.Context, q workqueue.TypedRateLimitingInterface[object.ObjMetadata], id object.ObjMetadata) {
	d := r.drift
	if t, ok := d.last[id]; ok && r.now().Sub(t) > driftQuiet {
		q.Forget(id)
	}
	d.last[id] = r.now()
	cs, err := r.applier.Correct(ctx, id)
	if ctx.Err() != nil {
		return
	}
	subject := subjectOf(id)
	if err != nil {
		if de := (*apply.DriftError)(nil); errors.As(err, &de) {
			err = errors.Join(de.Errs...)
		}
		if faults.Of(err, faults.Verdict) == faults.Transient {
			r.log.Info("drift: correction will be tried again", "object", subject, "error", err)
			q.AddRateLimited(id)
			return
		}
		r.notify.metrics.Drift(r.env.Name, false, 1)
		if msg := err.Error(); d.failed[id] != msg {
			// Said once per distinct error; the tries that follow, with a
			// growing delay, count in the metric only.
			d.failed[id] = msg
			r.driftFailed(ctx, subject, err)
		}
		q.AddRateLimited(id)
		return
	}
	delete(d.failed, id)
	n := corrected(cs)
	if n == 0 {
		q.Forget(id)
		delete(d.last, id)
		return
	}
	r.notify.metrics.Drift(r.env.Name, true, n)
	r.log.Info("drift corrected", "object", subject)
	r.event(ctx, false, "DriftCorrected", "%s was changed by someone else; restored to git's version", subject)
	if _, err := r.store.Update(ctx, r.env.Name, func(st *state.State) error {
		st.RecordDrift(state.Drift{Object: subject, Corrected: true, Time: r.now()})
		if st.Phase == state.PhaseDrifted && strings.HasPrefix(st.Message, subject+":") {
			restorePhase(st)
		}
		return nil
	}); err != nil {
		r.log.Error("record corrected drift", "error", err)
	}
}

// driftFailed shows drift that could not be corrected.
func (r *Reconciler) driftFailed(ctx context.Context, subject string, err error) {
	msg := fmt.Sprintf("%s: %s", subject, text.OneLine(strings.TrimPrefix(err.Error(), subject+" "), 600))
	r.log.Error("drift not corrected", "object", subject, "error", err)
	r.event(ctx, true, "DriftNotCorrected", "%s differs from git and ferry could not restore it: %v", subject, err)
	if _, uerr := r.store.Update(ctx, r.env.Name, func(st *state.State) error {
		if len(st.Drift) == 0 || st.Drift[0].Object != subject || st.Drift[0].Error != msg {
			st.RecordDrift(state.Drift{Object: subject, Error: msg, Time: r.now()})
		}
		// Only a settled environment shows it as its phase: a running
		// reconcile's phase is not drift's to overwrite.
		if st.Phase.Final() || st.Phase == state.PhaseDrifted {
			st.Phase, st.Message = state.PhaseDrifted, msg
		}
		return nil
	}); uerr != nil {
		r.log.Error("record drift", "error", errors.Join(err, uerr))
	}
}

// noteDrift shows what an apply left out as drift (apply.DriftError).
func (r *Reconciler) noteDrift(ctx context.Context, de *apply.DriftError) {
	r.notify.metrics.Drift(r.env.Name, false, len(de.Objects))
	for i, s := range de.Objects {
		r.driftFailed(ctx, s, de.Errs[i])
	}
}

// restorePhase ends a Drifted phase: the phase of the applied revision's
// verdict returns.
func restorePhase(st *state.State) {
	st.Phase, st.Message = state.PhaseHealthy, ""
	if st.LastApplied == nil {
		return
	}
	if v, ok := st.VerdictFor(st.LastApplied.Commit); ok {
		st.Phase, st.Message = phaseOf(v.Outcome), v.Reason
	}
}

// corrected counts the objects a correction wrote.
func corrected(cs *ssa.ChangeSet) int {
	if cs == nil {
		return 0
	}
	return len(slices.DeleteFunc(slices.Clone(cs.Entries), func(e ssa.ChangeSetEntry) bool {
		return e.Action != ssa.CreatedAction && e.Action != ssa.ConfiguredAction
	}))
}

// subjectOf names an object as Kind/namespace/name.
func subjectOf(id object.ObjMetadata) string {
	if id.Namespace == "" {
		return id.GroupKind.Kind + "/" + id.Name
	}
	return id.GroupKind.Kind + "/" + id.Namespace + "/" + id.Name
}

// inventoryNamespaces are the namespaces of set, whose pods a health check
// reads.
func inventoryNamespaces(set object.ObjMetadataSet) (map[string]bool, []string) {
	m := map[string]bool{}
	var list []string
	for _, id := range set {
		if id.Namespace != "" && !m[id.Namespace] {
			m[id.Namespace] = true
			list = append(list, id.Namespace)
		}
	}
	return m, list
}

// watchSync bounds the wait for a new pod watch's first list.
const watchSync = 5 * time.Second
