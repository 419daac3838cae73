package reconciler

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"

	ssaerrors "github.com/fluxcd/pkg/ssa/errors"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"ferry.dev/ferry/internal/faults"
	"ferry.dev/ferry/source"
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
