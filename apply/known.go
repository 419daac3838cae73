package apply

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	ssaerrors "github.com/fluxcd/pkg/ssa/errors"
	"github.com/fluxcd/pkg/ssa/normalize"
	ssautils "github.com/fluxcd/pkg/ssa/utils"
	apierrors "k8s.io/apimachinery/pkg/api/equality"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/internal/packed"
)

// What the applier knows without asking: for each object it converged, the
// sum of what it applied and the fingerprint (watch.go) of the live object
// it left. While the owned watch shows the same fingerprint and git's
// version is the same, the object is converged and no request is made for
// it (TestNoOpReconcileMakesNoRequestPerObject in e2e).

// known is what the applier left an object as.
type known struct {
	desired string // sum of the applied object
	live    string // Fingerprint of the live object after
}

// Stats counts how the objects of the applier's passes were settled.
type Stats struct {
	// Known objects were converged without a request; Asked were dry-run.
	Known, Asked int64
}

// SetWatches lets the applier skip objects the watches show untouched.
func (a *Applier) SetWatches(w *Watches) { a.watches, a.writer = w, w.writer }

// Stats returns the counts since the applier was made.
func (a *Applier) Stats() Stats {
	return Stats{Known: a.stats.known.Load(), Asked: a.stats.asked.Load()}
}

type stats struct{ known, asked atomic.Int64 }

// Forget drops what the applier knows, so the next pass dry-runs every
// object: the safety net against a change no watch reported.
func (a *Applier) Forget() {
	a.knownMu.Lock()
	defer a.knownMu.Unlock()
	clear(a.known)
}

// sum is the identity of what is applied for o.
func sum(o *unstructured.Unstructured) string {
	data, err := json.Marshal(o.Object)
	if err != nil {
		return ""
	}
	return sumOf(data)
}

// sumOf is the first 16 bytes of data's SHA-256, as a string of bytes:
// compared, never shown.
func sumOf(data []byte) string {
	h := sha256.Sum256(data)
	return string(h[:16])
}

// applied is an object of the last pass that went through, kept as the
// JSON it was applied as, packed with the pass's other objects (a third of
// its size as a map, and a fraction of that packed): it is read only to
// correct drift.
type applied struct {
	id   object.ObjMetadata
	sum  string
	at   int
	pass *packed.List
}

func (d applied) object() (*unstructured.Unstructured, error) {
	data, err := d.pass.Item(d.at)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.id, err)
	}
	o := &unstructured.Unstructured{}
	if err := o.UnmarshalJSON(data); err != nil {
		return nil, fmt.Errorf("%s: %w", d.id, err)
	}
	return o, nil
}

// converged returns o's entry when the watches show it as ferry left it
// and git's version has not changed since.
func (a *Applier) converged(o *unstructured.Unstructured) (ssa.ChangeSetEntry, bool) {
	id := object.UnstructuredToObjMetadata(o)
	a.knownMu.Lock()
	k, ok := a.known[id.String()]
	a.knownMu.Unlock()
	if !ok || k.desired != sum(o) {
		return ssa.ChangeSetEntry{}, false
	}
	seen := a.watches.Seen(id)
	if !seen.Known || !seen.Exists || seen.Fingerprint != k.live {
		return ssa.ChangeSetEntry{}, false
	}
	return entryOf(o, ssa.UnchangedAction), true
}

// remember records that o was applied and the live object is live.
func (a *Applier) remember(o *unstructured.Unstructured, live metav1.Object) {
	a.knownMu.Lock()
	defer a.knownMu.Unlock()
	a.known[object.UnstructuredToObjMetadata(o).String()] = known{desired: sum(o), live: Fingerprint(live)}
}

func (a *Applier) forget(o *unstructured.Unstructured) {
	a.knownMu.Lock()
	defer a.knownMu.Unlock()
	delete(a.known, object.UnstructuredToObjMetadata(o).String())
}

// Untouched reports whether c shows the object as ferry left it (its own
// write seen by the watch), so there is nothing to correct.
func (a *Applier) Untouched(c Change) bool {
	a.knownMu.Lock()
	defer a.knownMu.Unlock()
	k, ok := a.known[c.ID.String()]
	return ok && !c.Deleted && k.live == c.Fingerprint
}

func entryOf(o *unstructured.Unstructured, action ssa.Action) ssa.ChangeSetEntry {
	return ssa.ChangeSetEntry{ObjMetadata: object.UnstructuredToObjMetadata(o), GroupVersion: o.GroupVersionKind().Version,
		Subject: ssautils.FmtUnstructured(o), Action: action}
}

// diffOne dry-runs o. An object the watches show absent is not read
// first, unless trustWatch is false (a create found it existing); one an
// imperative manager edited is taken over first (takeover).
func (a *Applier) diffOne(ctx context.Context, o *unstructured.Unstructured, trustWatch bool) (ssa.ChangeSetEntry, error) {
	a.stats.asked.Add(1)
	seen := a.watches.Seen(object.UnstructuredToObjMetadata(o))
	var live *unstructured.Unstructured
	if !trustWatch || !seen.Known || seen.Exists {
		live = &unstructured.Unstructured{}
		live.SetGroupVersionKind(o.GroupVersionKind())
		err := a.client.Get(ctx, client.ObjectKeyFromObject(o), live)
		switch {
		case kerrors.IsNotFound(err):
			live = nil
		case err != nil:
			return ssa.ChangeSetEntry{}, fmt.Errorf("%s get: %w", ssautils.FmtUnstructured(o), err)
		}
	}
	if live != nil {
		if err := a.takeover(ctx, live); err != nil {
			return ssa.ChangeSetEntry{}, err
		}
	}
	dry := o.DeepCopy()
	err := a.client.Patch(ctx, dry, client.Apply, client.DryRunAll, client.ForceOwnership, client.FieldOwner(FieldManager))
	if err != nil {
		if ssaerrors.IsImmutableError(err) && a.forced(o) {
			return entryOf(o, ssa.CreatedAction), nil
		}
		return ssa.ChangeSetEntry{}, ssaerrors.NewDryRunErr(err, dry)
	}
	switch {
	case dry.GetResourceVersion() == "" || live == nil:
		return entryOf(o, ssa.CreatedAction), nil
	case hasDrifted(live, dry):
		return entryOf(o, ssa.ConfiguredAction), nil
	}
	a.remember(o, live)
	return entryOf(o, ssa.UnchangedAction), nil
}

// hasDrifted compares a live object with its dry-run: labels, annotations
// and everything but metadata and status, normalised as ssa does.
func hasDrifted(live, dry *unstructured.Unstructured) bool {
	if !apierrors.Semantic.DeepEqual(dry.GetLabels(), live.GetLabels()) ||
		!apierrors.Semantic.DeepEqual(dry.GetAnnotations(), live.GetAnnotations()) {
		return true
	}
	strip := func(u *unstructured.Unstructured) map[string]any {
		c := u.DeepCopy()
		unstructured.RemoveNestedField(c.Object, "metadata")
		unstructured.RemoveNestedField(c.Object, "status")
		if err := normalize.DryRunUnstructured(c); err != nil {
			return u.Object
		}
		return c.Object
	}
	return !apierrors.Semantic.DeepEqual(strip(dry), strip(live))
}

// takeover gives ferry the fields that imperative managers own in an
// object ferry owns, so that applying git's version then removes what they
// added and git does not have (a port added by kubectl patch, a label set
// by kubectl edit). Fields only other controllers own (an HPA's replicas)
// stay theirs. live is updated with the server's answer.
func (a *Applier) takeover(ctx context.Context, live *unstructured.Unstructured) error {
	if live.GetLabels()[OwnerLabel] != a.opts.Environment || !imperative(live.GetManagedFields()) {
		return nil
	}
	managers := make([]ssa.FieldManager, 0, 2*len(ImperativeManagers))
	for _, name := range ImperativeManagers {
		managers = append(managers,
			ssa.FieldManager{Name: name, ExactMatch: true, OperationType: metav1.ManagedFieldsOperationUpdate},
			ssa.FieldManager{Name: name, ExactMatch: true, OperationType: metav1.ManagedFieldsOperationApply})
	}
	patch, err := ssa.PatchReplaceFieldsManagers(live, managers, FieldManager)
	if err != nil || len(patch) == 0 {
		return err
	}
	raw, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	if err := a.client.Patch(ctx, live, client.RawPatch(types.JSONPatchType, raw), client.FieldOwner(FieldManager)); err != nil {
		return fmt.Errorf("%s: take over the fields of hand edits: %w", ssautils.FmtUnstructured(live), err)
	}
	return nil
}

// DriftError lists objects that could not be converged although git's
// version of them did not change and someone else had changed them: drift,
// which is no verdict on the revision being applied.
type DriftError struct {
	// Objects name the objects (Kind/namespace/name); Errs are their
	// errors, one each.
	Objects []string
	Errs    []error
}

func (e *DriftError) Error() string {
	return fmt.Sprintf("drift not corrected: %v", errors.Join(e.Errs...))
}

// Unwrap returns the errors of the objects.
func (e *DriftError) Unwrap() []error { return e.Errs }

// foreign reports whether o's failure is drift: the last pass that went
// through applied this same version of o, so what changed is the cluster,
// not git.
func (a *Applier) foreign(o *unstructured.Unstructured) bool {
	a.knownMu.Lock()
	defer a.knownMu.Unlock()
	prev, ok := a.desired[object.UnstructuredToObjMetadata(o).String()]
	return ok && prev.sum == sum(o)
}

// setDesired records objs as the objects of the last pass that went
// through, for Correct and foreign.
func (a *Applier) setDesired(objs []*unstructured.Unstructured) error {
	m := make(map[string]applied, len(objs))
	data := make([][]byte, len(objs))
	pass := &packed.List{}
	for i, o := range objs {
		var err error
		if data[i], err = json.Marshal(o.Object); err != nil {
			return fmt.Errorf("%s: %w", ssautils.FmtUnstructured(o), err)
		}
		d := applied{id: object.UnstructuredToObjMetadata(o), sum: sumOf(data[i]), at: i, pass: pass}
		m[d.id.String()] = d
	}
	var err error
	if *pass, err = packed.Pack(data); err != nil {
		return err
	}
	a.knownMu.Lock()
	defer a.knownMu.Unlock()
	a.desired = m
	return nil
}

// Correct converges one object of the last Apply again: drift a watch
// saw. An object no longer in the rendering is left alone. Any failure is
// drift, since git's version of the object is the one applied before.
func (a *Applier) Correct(ctx context.Context, id object.ObjMetadata) (*ssa.ChangeSet, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.passCreated = nil
	cs := ssa.NewChangeSet()
	a.knownMu.Lock()
	d, ok := a.desired[id.String()]
	a.knownMu.Unlock()
	if !ok {
		return cs, nil
	}
	o, err := d.object()
	if err != nil {
		return cs, &DriftError{Objects: []string{id.String()}, Errs: []error{err}}
	}
	if e, ok := a.converged(o); ok {
		// The change was ferry's own write, seen before it was remembered.
		cs.Add(e)
		return cs, nil
	}
	a.forget(o)
	p := a.diffAll(ctx, []*unstructured.Unstructured{o}, true)
	err = a.writeAll(ctx, p)
	cs.Append(p.entries)
	if err = errors.Join(append(append(p.errs, p.drift...), err)...); err != nil {
		return cs, &DriftError{Objects: []string{ssautils.FmtUnstructured(o)}, Errs: []error{err}}
	}
	return cs, nil
}

// Settled reports whether every object of the last pass is known
// converged: the watches show each as ferry left it. A pass of the same
// rendering would then send no request and change nothing, so the caller
// may skip it.
func (a *Applier) Settled() bool {
	if a.watches == nil {
		return false
	}
	a.knownMu.Lock()
	defer a.knownMu.Unlock()
	if len(a.desired) == 0 {
		return false
	}
	for id, d := range a.desired {
		k, ok := a.known[id]
		if !ok {
			return false
		}
		seen := a.watches.Seen(d.id)
		if !seen.Known || !seen.Exists || seen.Fingerprint != k.live {
			return false
		}
	}
	return true
}
