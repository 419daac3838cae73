package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	ssaerrors "github.com/fluxcd/pkg/ssa/errors"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"ferry.dev/ferry/internal/faults"
	"ferry.dev/ferry/render"
	"ferry.dev/ferry/source"
	"ferry.dev/ferry/state"
)

// TestKindOf pins what the loop does with each step's error: only the
// commit's own faults become verdicts (reverted or held); the network and
// the API server retry; credentials, permissions and configuration stall.
func TestKindOf(t *testing.T) {
	web := &unstructured.Unstructured{}
	web.SetAPIVersion("apps/v1")
	web.SetKind("Deployment")
	web.SetNamespace("shop")
	web.SetName("web")
	gr := schema.GroupResource{Group: "apps", Resource: "deployments"}
	reset := &url.Error{Op: "Patch", URL: "https://127.0.0.1:6443/apis/apps/v1/namespaces/shop/deployments/web",
		Err: &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}}
	invalid := apierrors.NewInvalid(schema.GroupKind{Group: "apps", Kind: "Deployment"}, "web",
		field.ErrorList{field.Invalid(field.NewPath("spec", "replicas"), -1, "must be greater than or equal to 0")})
	for _, tc := range []struct {
		step string
		err  error
		want faults.Kind
	}{
		{"render", errors.New("envs/staging: accumulating resources: missing.yaml: no such file"), faults.Verdict},
		{"apply", ssaerrors.NewDryRunErr(reset, web), faults.Transient},
		{"apply", fmt.Errorf("Deployment/shop/web apply: %w", apierrors.NewServiceUnavailable("etcd leader changed")), faults.Transient},
		{"apply", ssaerrors.NewDryRunErr(apierrors.NewTooManyRequests("throttled", 1), web), faults.Transient},
		{"apply", fmt.Errorf("Deployment/shop/web apply: %w", apierrors.NewConflict(gr, "web", errors.New("modified"))), faults.Transient},
		{"apply", fmt.Errorf("Deployment/shop/web apply: %w", context.DeadlineExceeded), faults.Transient},
		{"apply", ssaerrors.NewDryRunErr(invalid, web), faults.Verdict},
		{"apply", errors.New("Deployment/shop/web apply: admission webhook denied the request"), faults.Verdict},
		{"apply", fmt.Errorf("Deployment/shop/web apply: %w (ferry's ServiceAccount lacks permission for this object)",
			apierrors.NewForbidden(gr, "web", errors.New("cannot patch"))), faults.Terminal},
		{"prune", fmt.Errorf("state of staging: write ConfigMap: %w", reset), faults.Transient},
		{"verify", errors.New("health check: the client has no RESTMapper to resolve the versions of kinds"), faults.Terminal},
		{"quarantine", fmt.Errorf("state of staging: %w", apierrors.NewUnauthorized("token expired")), faults.Terminal},
		{"load state", fmt.Errorf("state of staging: %w", apierrors.NewServiceUnavailable("starting")), faults.Transient},
		{"apply", fmt.Errorf("x: %w", source.ErrUnreachable), faults.Transient},
		{"apply", fmt.Errorf("x: %w", source.ErrAuth), faults.Terminal},
	} {
		t.Run(tc.step+" "+tc.err.Error(), func(t *testing.T) {
			if got := kindOf(tc.step, tc.err); got != tc.want {
				t.Errorf("kindOf(%s, %v) = %s, want %s", tc.step, tc.err, got, tc.want)
			}
		})
	}
}

func TestRetryDelay(t *testing.T) {
	for _, tc := range []struct {
		n    int
		u    float64
		want time.Duration
	}{
		{1, 0.5, time.Second},
		{2, 0.5, 2 * time.Second},
		{6, 0.5, 32 * time.Second},
		{7, 0.5, time.Minute},
		{50, 0.5, time.Minute},
		{1, 0, 800 * time.Millisecond},
		{7, 0.999999, 72 * time.Second},
	} {
		got := retryDelay(tc.n, tc.u).Round(time.Millisecond)
		if got != tc.want {
			t.Errorf("retryDelay(%d, %v) = %s, want %s", tc.n, tc.u, got, tc.want)
		}
	}
}

func TestStalls(t *testing.T) {
	var s stalls
	now := time.Unix(1000, 0)
	if s.holds("abc", now) {
		t.Fatal("holds before any stall")
	}
	s.set("abc", now)
	if !s.holds("abc", now.Add(time.Minute)) || s.holds("def", now) {
		t.Fatal("a stall holds its commit only")
	}
	if s.holds("abc", now.Add(stallRetry)) {
		t.Fatal("a stall holds past stallRetry")
	}
	s.clear()
	if s.holds("abc", now) {
		t.Fatal("clear does not release")
	}
}

func TestFixHint(t *testing.T) {
	if h := fixHint(fmt.Errorf("x: %w", source.ErrAuth)); h != "fix the credential; ferry tries again when its file changes or on the next push" {
		t.Errorf("auth hint %q", h)
	}
}

// TestRunStep drives one step's error through the loop against a state
// store: a transient error shows Retrying and is tried again with no
// verdict; a terminal one stalls with the fix named and no verdict; only a
// verdict error is recorded on the commit.
func TestRunStep(t *testing.T) {
	gr := schema.GroupResource{Group: "apps", Resource: "deployments"}
	invalid := apierrors.NewInvalid(schema.GroupKind{Group: "apps", Kind: "Deployment"}, "web",
		field.ErrorList{field.Invalid(field.NewPath("spec", "replicas"), -1, "must be greater than or equal to 0")})
	for _, tc := range []struct {
		name      string
		errs      []error // the step's answers, in order; then nil
		wantErr   bool
		wantPhase state.Phase
		wantSays  string
		verdict   bool
	}{
		{"transient, then through", []error{apierrors.NewServiceUnavailable("etcd leader changed")}, false, state.PhaseRetrying,
			"apply: etcd leader changed (attempt 1, next in 1s)", false},
		{"terminal", []error{apierrors.NewForbidden(gr, "web", errors.New("cannot patch"))}, true, state.PhaseStalled,
			"fix the cause (ferry's permissions or configuration)", false},
		{"verdict", []error{invalid}, true, state.PhaseFailed, "apply: Deployment.apps \"web\" is invalid", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, store, rn := stepReconciler(t)
			calls := 0
			var phases []state.Phase
			var says []string
			step := func(ctx context.Context, _ *run, _ bool) error {
				if st, err := store.Load(ctx, "staging"); err == nil && calls > 0 {
					phases, says = append(phases, st.Phase), append(says, st.Message)
				}
				calls++
				if calls <= len(tc.errs) {
					return tc.errs[calls-1]
				}
				return nil
			}
			err := r.runStep(t.Context(), rn, "apply", step, false)
			if (err != nil) != tc.wantErr {
				t.Fatalf("runStep = %v, want error %v", err, tc.wantErr)
			}
			st, lerr := store.Load(t.Context(), "staging")
			if lerr != nil {
				t.Fatal(lerr)
			}
			phase, msg := st.Phase, st.Message
			if tc.wantPhase == state.PhaseRetrying {
				if calls != 2 || len(phases) != 1 {
					t.Fatalf("%d calls, phases seen %v; want one retry", calls, phases)
				}
				phase, msg = phases[0], says[0]
			}
			if phase != tc.wantPhase || !strings.Contains(msg, tc.wantSays) {
				t.Errorf("phase %s %q, want %s saying %q", phase, msg, tc.wantPhase, tc.wantSays)
			}
			if _, ok := st.VerdictFor(rn.rev.Commit.Hash.String()); ok != tc.verdict {
				t.Errorf("verdict recorded: %v, want %v (history %+v)", ok, tc.verdict, st.History)
			}
		})
	}
}

// TestRenderDeadlineIsTriedAgain: a rendering past its deadline retries
// (the phase says Retrying, no verdict) and is the commit's verdict only
// when it runs past it renderDeadlineTries times in one pass; a rendering
// that gets through on a later try has no verdict at all. Any other limit
// is a verdict at once.
func TestRenderDeadlineIsTriedAgain(t *testing.T) {
	deadline := fmt.Errorf("envs/staging render: %w: %w of 30s (limits.renderTimeout)", render.ErrLimit, render.ErrDeadline)
	tooMany := fmt.Errorf("envs/staging render: %w: the rendering holds more than 5000 objects (limits.maxObjects)", render.ErrLimit)
	for _, tc := range []struct {
		name      string
		errs      []error // the renderings' errors, in order; then none
		wantCalls int
		verdict   bool
	}{
		{"through on the third try", []error{deadline, deadline}, 3, false},
		{"past it every time", []error{deadline, deadline, deadline, deadline}, renderDeadlineTries, true},
		{"another limit", []error{tooMany}, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, store, rn := stepReconciler(t)
			calls := 0
			var retrying []string
			step := func(ctx context.Context, rn *run, _ bool) error {
				if st, err := store.Load(ctx, "staging"); err == nil && st.Phase == state.PhaseRetrying {
					retrying = append(retrying, st.Message)
				}
				calls++
				if calls <= len(tc.errs) {
					return renderFault(rn, tc.errs[calls-1])
				}
				return nil
			}
			err := r.runStep(t.Context(), rn, "render", step, false)
			if calls != tc.wantCalls || (err != nil) != tc.verdict {
				t.Fatalf("%d renderings, runStep = %v; want %d, error %v", calls, err, tc.wantCalls, tc.verdict)
			}
			if tc.errs[0] == deadline && (len(retrying) != tc.wantCalls-1 || !strings.Contains(retrying[0], "ran past its deadline of 30s (limits.renderTimeout) (attempt 1,")) {
				t.Errorf("phases Retrying seen: %q; want %d, the first of attempt 1", retrying, tc.wantCalls-1)
			}
			st, lerr := store.Load(t.Context(), "staging")
			if lerr != nil {
				t.Fatal(lerr)
			}
			v, ok := st.VerdictFor(rn.rev.Commit.Hash.String())
			if ok != tc.verdict {
				t.Fatalf("verdict recorded: %v, want %v (history %+v)", ok, tc.verdict, st.History)
			}
			if ok && (v.Outcome != state.OutcomeRefused || st.Phase != state.PhaseFailed) {
				t.Errorf("verdict %s, phase %s; want Refused, Failed", v.Outcome, st.Phase)
			}
			if ok && tc.errs[0] == deadline && !strings.HasSuffix(v.Reason, "(limits.renderTimeout) (3 tries)") {
				t.Errorf("verdict reason %q, want it to say the tries", v.Reason)
			}
		})
	}
}

// stepReconciler is a reconciler of the environment "staging" with a state
// store and nothing else, and a run of one commit, for the tests of its
// steps.
func stepReconciler(t *testing.T) (*Reconciler, *state.Store, *run) {
	t.Helper()
	c := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).Build()
	store := state.NewStore(c, "ferry")
	r := New(Environment{Name: "staging", Path: "envs/staging"}, source.NewWatcher(nil, "main", source.WatchOptions{}), nil, nil, nil, store, slog.New(slog.DiscardHandler))
	rn := &run{rev: &source.Revision{Commit: &object.Commit{Hash: plumbing.NewHash("0123456789abcdef0123456789abcdef01234567")}, Tree: &object.Tree{}},
		started: time.Now(), log: r.log}
	return r, store, rn
}
