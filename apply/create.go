package apply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/fluxcd/cli-utils/pkg/object"
	ssautils "github.com/fluxcd/pkg/ssa/utils"
	"golang.org/x/sync/errgroup"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// New objects. An object the watches show absent is created without a
// dry-run first: the create is its own check, and half of a cold apply's
// requests are saved. What an invalid object would have stopped is then
// undone instead: when a create of the pass fails, every object that pass
// created is deleted again, and nothing else has been written yet (the
// objects that exist are dry-run before any create, and written after).
//
// The create is an apply that only creates: it carries a resourceVersion
// no object has (createOnly), so an object that exists after all (one the
// owner-label watch cannot see, or a watch behind) is refused with a
// conflict, left as it is, and goes the checked way: dry-run, then write.
// Only what this pass's own request created is deleted: the API server
// answered 201 Created, and the UID is still the one it answered with
// (TestApplyUndoesTheCreatesOfAFailedPass).
//
// Objects that start work the moment they exist (Pods, Jobs, workloads,
// custom resources an operator acts on) are dry-run first all the same:
// an undo would come after their work began.

// createKinds are the kinds created without a dry-run: their existence
// starts nothing that deleting them does not end.
var createKinds = map[string]bool{
	"/ConfigMap": true, "/Secret": true, "/Service": true, "/ServiceAccount": true,
	"/LimitRange": true, "policy/PodDisruptionBudget": true,
}

// unchecked reports whether o is created without a dry-run: a kind of
// createKinds, no definition, and shown absent by a synced watch while
// the applier has not written it itself (a watch may lag its own write).
func (a *Applier) unchecked(o *unstructured.Unstructured) bool {
	if a.writer == nil {
		return false
	}
	gvk := o.GroupVersionKind()
	if !createKinds[gvk.Group+"/"+gvk.Kind] || a.forced(o) {
		return false
	}
	if t, _, _ := unstructured.NestedString(o.Object, "spec", "type"); gvk.Kind == "Service" && t == "LoadBalancer" {
		return false // a cloud load balancer would be made for it
	}
	id := object.UnstructuredToObjMetadata(o)
	a.knownMu.Lock()
	_, wrote := a.known[id.String()]
	a.knownMu.Unlock()
	seen := a.watches.Seen(id)
	return !wrote && seen.Known && !seen.Exists
}

// createOnly is the resourceVersion of a create: the API server ignores
// it when it creates the object, and refuses the apply with a conflict
// when an object exists, whose resourceVersion is never "1" (the first
// write a cluster's store makes).
const createOnly = "1"

// writer sends server-side applies whose answer is the object's metadata
// only, with the status code that says whether the apply created it:
// less for the API server to encode and for ferry to decode than the
// whole object, and all that ferry keeps of it (remember).
type writer struct {
	rest   rest.Interface
	mapper meta.RESTMapper
}

func newWriter(cfg *rest.Config, mapper meta.RESTMapper) (*writer, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.APIPath, cfg.GroupVersion = "/", &metav1.SchemeGroupVersion
	cfg.NegotiatedSerializer = scheme.Codecs.WithoutConversion()
	rc, err := rest.UnversionedRESTClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("writes: %w", err)
	}
	return &writer{rest: rc, mapper: mapper}, nil
}

// created is an object a pass's request created.
type created struct {
	obj *unstructured.Unstructured
	uid types.UID
}

// apply applies o with ferry's field manager, forced; with onlyCreate,
// only if it does not exist: an existing object is then a conflict error.
// It returns the live object's metadata, and whether the API server said
// it created it.
func (c *writer) apply(ctx context.Context, o *unstructured.Unstructured, onlyCreate bool) (*metav1.PartialObjectMetadata, bool, error) {
	gvk := o.GroupVersionKind()
	mapping, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, false, err
	}
	prefix := []string{"/api", gvk.Version}
	if gvk.Group != "" {
		prefix = []string{"/apis", gvk.Group, gvk.Version}
	}
	if onlyCreate {
		o = o.DeepCopy()
		o.SetResourceVersion(createOnly)
	}
	body, err := json.Marshal(o.Object)
	if err != nil {
		return nil, false, err
	}
	res := c.rest.Patch(types.ApplyPatchType).AbsPath(prefix...).
		NamespaceIfScoped(o.GetNamespace(), mapping.Scope.Name() == meta.RESTScopeNameNamespace).
		Resource(mapping.Resource.Resource).Name(o.GetName()).
		Param("fieldManager", FieldManager).Param("force", "true").
		SetHeader("Accept", "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json").
		Body(body).Do(ctx)
	var code int
	res.StatusCode(&code)
	raw, err := res.Raw()
	if err != nil {
		return nil, false, err
	}
	live := &metav1.PartialObjectMetadata{}
	if err := json.Unmarshal(raw, live); err != nil {
		return nil, false, fmt.Errorf("the API server's answer: %w", err)
	}
	return live, code == http.StatusCreated, nil
}

// createAll applies the unchecked objects of p, in parallel. When any
// fails, every object the pass created so far is deleted again (undo), and
// the error names the failures and the undo.
func (a *Applier) createAll(ctx context.Context, p *plan) error {
	var idx []int
	for i := range p.objs {
		if p.unchecked[i] && !p.written[i] {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	news := make([]*created, len(idx))
	exists := make([]bool, len(idx))
	errs := make([]error, len(idx))
	var g errgroup.Group
	g.SetLimit(a.opts.Concurrency)
	for n, i := range idx {
		o := p.objs[i]
		g.Go(func() error {
			live, isNew, err := a.writer.apply(ctx, o, true)
			switch {
			case kerrors.IsConflict(err):
				exists[n] = true
			case err != nil:
				a.forget(o)
				errs[n] = explain(fmt.Errorf("%s apply: %w", ssautils.FmtUnstructured(o), err))
			default:
				a.remember(o, live)
				p.written[i] = true
				if isNew {
					news[n] = &created{obj: o, uid: live.UID}
				}
			}
			return nil
		})
	}
	_ = g.Wait()
	a.passCreated = append(a.passCreated, slices.DeleteFunc(news, func(c *created) bool { return c == nil })...)
	err := errors.Join(errs...)
	if err == nil && slices.Contains(exists, true) {
		err = a.checkExisting(ctx, p, idx, exists)
	}
	if err == nil {
		return nil
	}
	undone, uerr := a.undo(ctx, a.passCreated)
	a.passCreated = nil
	if uerr != nil {
		return fmt.Errorf("%w; undoing this pass's creates failed (%d undone): %w", err, len(undone), uerr)
	}
	return fmt.Errorf("%w; the %d objects this pass created were deleted again, nothing else was written", err, len(undone))
}

// checkExisting takes the objects of p that a create found existing
// (idx[n] where exists[n]) the checked way: they are dry-run now, before
// anything but creates was written, and written with the rest.
func (a *Applier) checkExisting(ctx context.Context, p *plan, idx []int, exists []bool) error {
	drop := map[int]bool{}
	var objs []*unstructured.Unstructured
	for n, i := range idx {
		if exists[n] {
			drop[i] = true
			objs = append(objs, p.objs[i])
		}
	}
	q := a.diffAll(ctx, objs, false)
	p.remove(drop)
	p.add(q)
	return errors.Join(q.errs...)
}

// undo deletes the objects of news, each only while its UID is the one
// its create answered with, so an object someone else made since, under
// the same name, stays. It returns the objects deleted (or gone already).
func (a *Applier) undo(ctx context.Context, news []*created) ([]string, error) {
	var undone []string
	var errs []error
	for _, c := range news {
		uid := c.uid
		err := a.client.Delete(ctx, c.obj.DeepCopy(), client.Preconditions{UID: &uid}, client.PropagationPolicy(metav1.DeletePropagationBackground))
		a.forget(c.obj)
		switch {
		case err == nil || kerrors.IsNotFound(err):
			undone = append(undone, ssautils.FmtUnstructured(c.obj))
		default:
			errs = append(errs, fmt.Errorf("%s delete: %w", ssautils.FmtUnstructured(c.obj), err))
		}
	}
	return undone, errors.Join(errs...)
}
