package health

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/fluxcd/cli-utils/pkg/object"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta/testrestmapper"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

// The fake client here only drives the loop's mechanics (timeout,
// cancellation, soak, read errors); what a real control plane does to the
// objects is pinned by the end-to-end tests.

// fastOptions keep each loop test within tens of milliseconds.
func fastOptions(timeout, soak time.Duration) Options {
	return Options{Timeout: timeout, Interval: 5 * time.Millisecond, Soak: soak}
}

func newFakeClient(funcs *interceptor.Funcs, objs ...client.Object) client.WithWatch {
	b := fake.NewClientBuilder().
		WithScheme(clientgoscheme.Scheme).
		WithRESTMapper(testrestmapper.TestOnlyStaticRESTMapper(clientgoscheme.Scheme)).
		WithObjects(objs...)
	if funcs != nil {
		b = b.WithInterceptorFuncs(*funcs)
	}
	return b.Build()
}

func id(kind, group, name string) object.ObjMetadata {
	return object.ObjMetadata{Namespace: ns, Name: name, GroupKind: schema.GroupKind{Group: group, Kind: kind}}
}

var (
	webID    = id("Deployment", "apps", "web")
	configID = id("ConfigMap", "", "settings")
)

// webObjects is a rolled-out Deployment with its ReplicaSet, two pods and a
// ConfigMap; mods change the pod web-6d4-abcde.
func webObjects(dep *appsv1.Deployment, mods ...func(*corev1.Pod)) []client.Object {
	rs := replicaSet("web-6d4", "2", dep)
	return []client.Object{
		dep, rs,
		pod("web-6d4-abcde", rs, "ReplicaSet", mods...),
		pod("web-6d4-fghij", rs, "ReplicaSet"),
		&corev1.ConfigMap{ObjectMeta: objectMeta("settings", "settings-uid", nil, "")},
	}
}

func TestCheck(t *testing.T) {
	getFails := &interceptor.Funcs{Get: func(context.Context, client.WithWatch, client.ObjectKey, client.Object, ...client.GetOption) error {
		return apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, "web", errors.New("ferry may not get it"))
	}}
	tests := []struct {
		name        string
		objs        []client.Object
		funcs       *interceptor.Funcs
		ids         object.ObjMetadataSet
		opts        Options
		wantOutcome Outcome
		wantReason  string
		wantStatus  []status.Status
		// maxDuration catches a fail-fast that waited for the timeout.
		maxDuration time.Duration
	}{
		{
			name: "healthy", objs: webObjects(deployment()), ids: object.ObjMetadataSet{webID, configID},
			opts: fastOptions(time.Minute, 0), wantOutcome: Healthy, wantReason: "2 objects Current",
			wantStatus: []status.Status{status.CurrentStatus, status.CurrentStatus}, maxDuration: 10 * time.Second,
		},
		{
			name: "no objects", opts: fastOptions(time.Minute, 0), wantOutcome: Healthy, wantReason: "no objects to check",
			maxDuration: 10 * time.Second,
		},
		{
			name: "crash loop fails fast",
			objs: webObjects(deployment(rolling), waiting("CrashLoopBackOff", "back-off restarting failed container")),
			ids:  object.ObjMetadataSet{configID, webID}, opts: fastOptions(time.Minute, 0),
			wantOutcome: Failed,
			wantReason:  "Deployment staging/web: pod web-6d4-abcde container app: CrashLoopBackOff (back-off restarting failed container)",
			wantStatus:  []status.Status{status.CurrentStatus, status.FailedStatus}, maxDuration: 10 * time.Second,
		},
		{
			name: "times out", objs: webObjects(deployment(rolling)), ids: object.ObjMetadataSet{webID, configID, id("ConfigMap", "", "gone")},
			opts: fastOptions(50*time.Millisecond, 0), wantOutcome: TimedOut,
			wantReason:  "2 of 3 not Current: Deployment staging/web InProgress: Updated: 1/2; ConfigMap staging/gone InProgress: not found",
			wantStatus:  []status.Status{status.InProgressStatus, status.CurrentStatus, status.InProgressStatus},
			maxDuration: 10 * time.Second,
		},
		{
			name: "read errors time out with the last error", objs: webObjects(deployment()), funcs: getFails,
			ids: object.ObjMetadataSet{webID}, opts: fastOptions(50*time.Millisecond, 0), wantOutcome: TimedOut,
			wantReason: `1 of 1 not Current: Deployment staging/web Unknown: Deployment staging/web get: deployments.apps "web" is forbidden: ferry may not get it; last error: Deployment staging/web get: deployments.apps "web" is forbidden: ferry may not get it`,
			wantStatus: []status.Status{status.UnknownStatus}, maxDuration: 10 * time.Second,
		},
		{
			name: "soak passes", objs: webObjects(deployment()), ids: object.ObjMetadataSet{webID, configID},
			opts: fastOptions(time.Minute, 100*time.Millisecond), wantOutcome: Healthy,
			wantReason: "2 objects Current, soaked 100ms", maxDuration: 10 * time.Second,
			wantStatus: []status.Status{status.CurrentStatus, status.CurrentStatus},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewChecker(newFakeClient(tt.funcs, tt.objs...))
			v, err := c.Check(t.Context(), tt.ids, tt.opts)
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if v.Outcome != tt.wantOutcome || !strings.Contains(v.Reason, tt.wantReason) {
				t.Errorf("Check = %s %q, want %s with %q", v.Outcome, v.Reason, tt.wantOutcome, tt.wantReason)
			}
			var got []status.Status
			for _, o := range v.Objects {
				got = append(got, o.Status)
			}
			if !equal(got, tt.wantStatus) {
				t.Errorf("Check statuses = %v, want %v", got, tt.wantStatus)
			}
			if v.Duration > tt.maxDuration || v.Duration < tt.opts.Soak {
				t.Errorf("Check took %s, want between the soak %s and %s", v.Duration, tt.opts.Soak, tt.maxDuration)
			}
		})
	}
}

// TestCheckExcusesOutages: while the API server cannot be read (connection
// refused, for three times the timeout), the timeout does not run; the
// objects are judged once it answers again.
func TestCheckExcusesOutages(t *testing.T) {
	timeout := 50 * time.Millisecond
	var until time.Time
	refused := &interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
		if time.Now().Before(until) {
			return &url.Error{Op: "Get", URL: "https://127.0.0.1:6443/apis/apps/v1/namespaces/staging/deployments/web",
				Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
		}
		return c.Get(ctx, key, obj, opts...)
	}}
	c := NewChecker(newFakeClient(refused, webObjects(deployment())...))
	until = time.Now().Add(3 * timeout)
	v, err := c.Check(t.Context(), object.ObjMetadataSet{webID, configID}, fastOptions(timeout, 0))
	if err != nil {
		t.Fatal(err)
	}
	if v.Outcome != Healthy {
		t.Fatalf("after an outage of 3× the timeout: %s %q, want Healthy", v.Outcome, v.Reason)
	}
	if v.Duration < 3*timeout {
		t.Fatalf("judged after %s, before the outage ended", v.Duration)
	}
}

func TestCheckSoakRegression(t *testing.T) {
	tests := []struct {
		name       string
		regress    func(d *appsv1.Deployment, p *corev1.Pod)
		wantReason string
	}{
		{
			name: "container restarts",
			regress: func(_ *appsv1.Deployment, p *corev1.Pod) {
				// A clean exit: only the soak's restart rule sees it.
				lastTerminated("Completed", 0, 1)(p)
			},
			wantReason: "Deployment staging/web: pod web-6d4-abcde container app restarted during soak (restarts 0 → 1)",
		},
		{
			name: "object leaves Current",
			regress: func(d *appsv1.Deployment, _ *corev1.Pod) {
				d.Status.ReadyReplicas, d.Status.AvailableReplicas = 1, 1
			},
			wantReason: "Deployment staging/web: left Current during soak: InProgress: Available: 1/2",
		},
		{
			name:       "container starts crash looping",
			regress:    func(_ *appsv1.Deployment, p *corev1.Pod) { waiting("CrashLoopBackOff", "")(p) },
			wantReason: "Deployment staging/web: pod web-6d4-abcde container app: CrashLoopBackOff",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			cl := newFakeClient(nil, webObjects(deployment())...)
			done := make(chan error, 1)
			go func() {
				// why a sleep: the soak starts at the checker's first poll,
				// which has no hook to wait on; regress well after it.
				time.Sleep(50 * time.Millisecond)
				d, p := &appsv1.Deployment{}, &corev1.Pod{}
				if err := errors.Join(
					cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, d),
					cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web-6d4-abcde"}, p)); err != nil {
					done <- err
					return
				}
				tt.regress(d, p)
				done <- errors.Join(cl.Status().Update(ctx, d), cl.Status().Update(ctx, p))
			}()
			v, err := NewChecker(cl).Check(ctx, object.ObjMetadataSet{webID, configID}, fastOptions(time.Minute, 2*time.Second))
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if err := <-done; err != nil {
				t.Fatalf("regress: %v", err)
			}
			if v.Outcome != Failed || v.Reason != tt.wantReason {
				t.Errorf("Check = %s %q, want Failed %q", v.Outcome, v.Reason, tt.wantReason)
			}
			if v.Duration > 10*time.Second {
				t.Errorf("Check took %s, want the regression caught at once", v.Duration)
			}
		})
	}
}

func TestCheckCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(30*time.Millisecond, cancel)
	c := NewChecker(newFakeClient(nil, webObjects(deployment(rolling))...))
	v, err := c.Check(ctx, object.ObjMetadataSet{webID}, fastOptions(time.Minute, 0))
	if !errors.Is(err, context.Canceled) || v != nil {
		t.Fatalf("Check = %v, %v; want no verdict and context.Canceled", v, err)
	}
}

func TestCheckRefuses(t *testing.T) {
	cl := newFakeClient(nil)
	tests := []struct {
		name    string
		reader  client.Reader
		opts    Options
		wantErr string
	}{
		{
			name: "invalid options", reader: cl, opts: Options{Interval: -time.Second, Soak: -1},
			wantErr: "health options: timeout 0s: must be positive\ninterval -1s: must be positive\nsoak -1ns: must not be negative",
		},
		{
			name: "reader without a RESTMapper", reader: struct{ client.Reader }{cl}, opts: DefaultOptions(),
			wantErr: "health check: the client has no RESTMapper to resolve the versions of kinds",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewChecker(tt.reader).Check(t.Context(), object.ObjMetadataSet{webID}, tt.opts)
			if err == nil || err.Error() != tt.wantErr || v != nil {
				t.Errorf("Check = %v, %v; want error %q", v, err, tt.wantErr)
			}
		})
	}
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// changesFake is what watches tell a Checker, set by the test.
type changesFake struct {
	wake    chan struct{}
	mu      sync.Mutex
	changed map[object.ObjMetadata]bool
}

func (f *changesFake) Wake() <-chan struct{} { return f.wake }

func (f *changesFake) Changed() (map[object.ObjMetadata]bool, map[string]bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.changed
	f.changed = map[object.ObjMetadata]bool{}
	return c, nil
}

// TestCheckLooksAgainOnlyAtWhatChanged: woken by the watches, a check
// reads the objects that changed and those not Current yet; a Current
// object the watches show unchanged is not read again.
func TestCheckLooksAgainOnlyAtWhatChanged(t *testing.T) {
	var mu sync.Mutex
	gets := map[string]int{}
	counting := &interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
		mu.Lock()
		gets[key.Name]++
		mu.Unlock()
		return c.Get(ctx, key, obj, opts...)
	}}
	read := func(name string) int {
		mu.Lock()
		defer mu.Unlock()
		return gets[name]
	}
	kc := newFakeClient(counting, webObjects(deployment(rolling))...)
	c := NewChecker(kc)
	ch := &changesFake{wake: make(chan struct{}, 1), changed: map[object.ObjMetadata]bool{}}
	c.SetChanges(ch)
	done := make(chan *Verdict, 1)
	go func() {
		v, err := c.Check(t.Context(), object.ObjMetadataSet{webID, configID}, fastOptions(5*time.Second, 0))
		if err != nil {
			t.Error(err)
		}
		done <- v
	}()
	for read("web") == 0 || read("settings") == 0 {
		time.Sleep(5 * time.Millisecond) // why a sleep: waiting for the first look
	}
	// The rollout goes on: the watches see web change, again and again.
	for i := range 3 {
		ch.mu.Lock()
		ch.changed[webID] = true
		ch.mu.Unlock()
		ch.wake <- struct{}{}
		for read("web") < i+2 {
			time.Sleep(5 * time.Millisecond) // why a sleep: waiting for the look it woke
		}
	}
	if err := kc.Status().Update(t.Context(), deployment()); err != nil {
		t.Fatal(err)
	}
	ch.mu.Lock()
	ch.changed[webID] = true
	ch.mu.Unlock()
	ch.wake <- struct{}{}
	v := <-done
	if v == nil || v.Outcome != Healthy {
		t.Fatalf("verdict %+v, want Healthy", v)
	}
	if n := read("settings"); n != 1 {
		t.Fatalf("the unchanged, Current ConfigMap was read %d times, want once", n)
	}
	if n := read("web"); n != 5 {
		t.Fatalf("the changing Deployment was read %d times, want 5: one per look", n)
	}
}
