package health

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/fluxcd/cli-utils/pkg/object"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	// pollConcurrency bounds the objects read at the same time.
	pollConcurrency = 8
	// minPollTimeout bounds one poll, so that a hung API server cannot hold
	// a check past its deadline by more than this (or the interval, if
	// longer). A poll cut short is a read error, not a verdict.
	minPollTimeout = 10 * time.Second
)

// Checker runs health checks against a cluster.
type Checker struct {
	reader client.Reader
	mapper meta.RESTMapper
	http   *http.Client
	// changes, when set, says what watched objects and pods changed: Check
	// looks at those again at once instead of at its next interval.
	changes Changes
}

// Changes is what watches tell a Checker.
type Changes interface {
	// Wake receives when something changed.
	Wake() <-chan struct{}
	// Changed returns, and forgets, the objects that changed since it was
	// last called, and the namespaces where pods changed.
	Changed() (objects map[object.ObjMetadata]bool, podNamespaces map[string]bool)
}

// SetChanges makes Check look again whenever ch wakes it, so that a status
// change decides the verdict without waiting for a polling interval. Such
// a look reads only the objects that changed, and those not Current yet:
// an object the watches show unchanged is as it was. The interval then
// only backs up the watches (watchedInterval), reading every object,
// unless HTTP checks need it.
func (c *Checker) SetChanges(ch Changes) { c.changes = ch }

// watchedInterval is how often Check reads every object when watches wake
// it.
const watchedInterval = 10 * time.Second

// debounce gathers the changes of one status update (an object and its
// pods) into one look.
const debounce = 20 * time.Millisecond

// NewChecker returns a Checker reading the cluster through c. Objects are
// read as unstructured, pods, ReplicaSets and ControllerRevisions as typed
// objects. The version of each kind is resolved with c's RESTMapper, so c
// must have a RESTMapper() method, as every client.Client has; Check says so
// when it has not.
func NewChecker(c client.Reader) *Checker {
	ch := &Checker{reader: c, http: newHTTPClient()}
	if m, ok := c.(interface{ RESTMapper() meta.RESTMapper }); ok {
		ch.mapper = m.RESTMapper()
	}
	return ch
}

// Check polls objs every opts.Interval until all are Current, every HTTP
// check of opts answers as expected, and both have stayed so for opts.Soak
// (Healthy); until one of them fails (Failed, at once, without waiting for
// the timeout); or until opts.Timeout passes first (TimedOut).
//
// Objects of a kind with a CEL check in opts.Checks are judged by it and
// read at its version, when it names one.
//
// An object that is not found is InProgress: it may have been deleted by
// someone during the check. A read error is no verdict either: the check
// keeps polling, and a timeout names the last error. Time during which
// reads failed for a reason that passes (the API server unavailable or
// unreachable) does not count against the timeout, so an outage during
// verification never times a revision out.
//
// Check returns an error, and no verdict, for invalid options and when ctx
// ends, for instance because a newer commit arrived; the error then wraps
// ctx.Err().
func (c *Checker) Check(ctx context.Context, objs object.ObjMetadataSet, opts Options) (*Verdict, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if c.mapper == nil {
		return nil, errors.New("health check: the client has no RESTMapper to resolve the versions of kinds")
	}
	p := newProgress(opts, time.Now())
	if len(objs) == 0 {
		return p.verdict(time.Now(), Healthy, "no objects to check"), nil
	}
	checks := map[schema.GroupKind]*Check{}
	versions := map[schema.GroupKind]schema.GroupVersionKind{}
	for _, ch := range opts.Checks {
		checks[ch.spec.GroupKind] = ch
		if ch.spec.Version != "" {
			versions[ch.spec.GroupKind] = ch.spec.GroupKind.WithVersion(ch.spec.Version)
		}
	}
	probe := func() []HTTPStatus { return probeAll(ctx, c.http, opts.HTTP) }
	interval := opts.Interval
	if c.changes != nil && len(opts.HTTP) == 0 {
		interval = max(interval, watchedInterval)
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var wakes <-chan struct{}
	if c.changes != nil {
		wakes = c.changes.Wake()
	}
	var obs []observation
	full := true
	for {
		obs = c.look(ctx, objs, obs, full, checks, versions, max(opts.Interval, minPollTimeout))
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("health check of %d objects: %w", len(objs), err)
		}
		v := p.judge(time.Now(), obs, probe)
		// Why look again: an HTTP check cut short by ctx is no verdict
		// (TestCheckHTTPCancelled).
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("health check of %d objects: %w", len(objs), err)
		}
		if v != nil {
			return v, nil
		}
		wake := time.NewTimer(time.Until(p.wake()))
		full = c.changes == nil
		select {
		case <-ctx.Done():
			wake.Stop()
			return nil, fmt.Errorf("health check of %d objects: %w", len(objs), ctx.Err())
		case <-ticker.C:
			full = true
		case <-wake.C:
		case <-wakes:
			time.Sleep(debounce) // why a sleep: one look for a burst of changes
			select {
			case <-wakes:
			default:
			}
		}
		wake.Stop()
	}
}

// observation is what one poll saw of one object.
type observation struct {
	status ObjectStatus
	// pods are the pods of the object's current revision (the Pod itself
	// for a bare Pod), for the soak to count restarts.
	pods []corev1.Pod
	// err is a read or judging error; status is then Unknown.
	err error
}

// look observes objs: every one when full (or when there is nothing
// before), otherwise only those that changed since before, as the watches
// say, and those that were not Current and clean before. The rest keep
// their observation from before.
func (c *Checker) look(ctx context.Context, objs object.ObjMetadataSet, before []observation, full bool, checks map[schema.GroupKind]*Check,
	versions map[schema.GroupKind]schema.GroupVersionKind, timeout time.Duration) []observation {
	var changed map[object.ObjMetadata]bool
	var pods map[string]bool
	if c.changes != nil {
		changed, pods = c.changes.Changed()
	}
	if full || len(before) != len(objs) {
		return c.poll(ctx, objs, checks, versions, timeout)
	}
	var again object.ObjMetadataSet
	var at []int
	for i, id := range objs {
		b := before[i]
		if b.err != nil || b.status.Status != status.CurrentStatus || changed[id] || (pods[id.Namespace] && kinds[id.GroupKind].pods != nil) {
			again, at = append(again, id), append(at, i)
		}
	}
	out := slices.Clone(before)
	for j, o := range c.poll(ctx, again, checks, versions, timeout) {
		out[at[j]] = o
	}
	return out
}

// poll observes every object once, pollConcurrency at a time, within
// timeout, judging each with the check of its kind in checks, if any.
// versions caches the version resolved for each kind.
func (c *Checker) poll(ctx context.Context, objs object.ObjMetadataSet, checks map[schema.GroupKind]*Check,
	versions map[schema.GroupKind]schema.GroupVersionKind, timeout time.Duration) []observation {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out := make([]observation, len(objs))
	g := new(errgroup.Group)
	g.SetLimit(pollConcurrency)
	for i, id := range objs {
		gvk, err := c.version(id.GroupKind, versions)
		if err != nil {
			err = fmt.Errorf("%s: %w", describe(id), err)
			out[i] = observation{status: unknown(id, err), err: err}
			continue
		}
		g.Go(func() error {
			out[i] = c.observe(ctx, id, gvk, checks[id.GroupKind])
			return nil
		})
	}
	// Why no error to look at: observe reports every error in its
	// observation, since none of them ends the check.
	_ = g.Wait()
	return out
}

// version resolves the version of kind gk, once per check. A kind unknown
// to the API server (a CRD not yet established) is a read error: the
// RESTMapper is asked again at the next poll.
func (c *Checker) version(gk schema.GroupKind, versions map[schema.GroupKind]schema.GroupVersionKind) (schema.GroupVersionKind, error) {
	if gvk, ok := versions[gk]; ok {
		return gvk, nil
	}
	m, err := c.mapper.RESTMapping(gk)
	if err != nil {
		return schema.GroupVersionKind{}, fmt.Errorf("resolve version: %w", err)
	}
	versions[gk] = m.GroupVersionKind
	return m.GroupVersionKind, nil
}

// observe reads one object and the pods of its current revision, and
// evaluates them with check (nil: kstatus).
func (c *Checker) observe(ctx context.Context, id object.ObjMetadata, gvk schema.GroupVersionKind, check *Check) observation {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	if err := c.reader.Get(ctx, client.ObjectKey{Namespace: id.Namespace, Name: id.Name}, u); err != nil {
		if apierrors.IsNotFound(err) {
			return observation{status: ObjectStatus{ID: id, Status: status.InProgressStatus, Message: "not found"}}
		}
		err = fmt.Errorf("%s get: %w", describe(id), err)
		return observation{status: unknown(id, err), err: err}
	}
	var pods []corev1.Pod
	if r := kinds[id.GroupKind]; r.pods != nil {
		var err error
		if pods, err = r.pods(ctx, c.reader, u); err != nil {
			err = fmt.Errorf("%s pods: %w", describe(id), err)
			return observation{status: unknown(id, err), err: err}
		}
	}
	st, err := Evaluate(u, pods, check)
	st.ID = id
	return observation{status: st, pods: pods, err: err}
}
