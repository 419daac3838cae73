package faults

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// forgeLike stands for forge.ForgeError, which says whether it is transient.
type forgeLike struct{ transient bool }

func (e forgeLike) Error() string   { return "forge answered" }
func (e forgeLike) Transient() bool { return e.transient }

func TestClassify(t *testing.T) {
	gr := schema.GroupResource{Group: "apps", Resource: "deployments"}
	gk := schema.GroupKind{Group: "apps", Kind: "Deployment"}
	reset := &url.Error{Op: "Patch", URL: "https://127.0.0.1:6443/apis/apps/v1/x",
		Err: &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}}
	refused := &url.Error{Op: "Get", URL: "https://127.0.0.1:6443/api", Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	unreachable := New(Transient, "remote unreachable")
	auth := New(Terminal, "authentication failed")
	invalid := apierrors.NewInvalid(gk, "web", field.ErrorList{field.Invalid(field.NewPath("spec", "replicas"), -1, "must be >= 0")})
	for _, tc := range []struct {
		name string
		err  error
		want Kind
	}{
		{"nil", nil, Unknown},
		{"unknown text", errors.New("kustomization.yaml: no such file"), Unknown},
		{"service unavailable", apierrors.NewServiceUnavailable("etcd down"), Transient},
		{"too many requests", apierrors.NewTooManyRequests("slow down", 1), Transient},
		{"conflict", apierrors.NewConflict(gr, "web", errors.New("the object has been modified")), Transient},
		{"server timeout", apierrors.NewServerTimeout(gr, "patch", 2), Transient},
		{"timeout", apierrors.NewTimeoutError("request timed out", 1), Transient},
		{"internal error", apierrors.NewInternalError(errors.New("boom")), Transient},
		{"502", apierrors.NewGenericServerResponse(502, "get", gr, "web", "bad gateway", 0, false), Transient},
		{"connection reset", reset, Transient},
		{"connection refused", refused, Transient},
		{"wrapped reset", fmt.Errorf("Deployment/ns/web apply: %w", reset), Transient},
		{"EOF", fmt.Errorf("get: %w", io.EOF), Transient},
		{"unexpected EOF", &url.Error{Op: "Get", URL: "x", Err: io.ErrUnexpectedEOF}, Transient},
		{"request deadline", fmt.Errorf("Deployment/ns/web get: %w", context.DeadlineExceeded), Transient},
		{"url timeout", &url.Error{Op: "Get", URL: "x", Err: &net.OpError{Op: "dial", Err: timeoutErr{}}}, Transient},
		{"flattened reset", errors.New("delete failed, errors: read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer"), Transient},
		{"git unreachable", fmt.Errorf("http://x/r.git ls-remote: %w (timed out): %w", unreachable, context.DeadlineExceeded), Transient},
		{"forge 503", forgeLike{transient: true}, Transient},
		{"forge 401", forgeLike{transient: false}, Terminal},
		{"unauthorized", apierrors.NewUnauthorized("bad token"), Terminal},
		{"forbidden", apierrors.NewForbidden(gr, "web", errors.New("cannot patch")), Terminal},
		{"RBAC escalation", apierrors.NewForbidden(schema.GroupResource{Group: "rbac.authorization.k8s.io", Resource: "roles"}, "greedy",
			errors.New(`user "system:serviceaccount:ferry-system:ferry-env-staging" is attempting to grant RBAC permissions not currently held`)), Verdict},
		{"git auth", fmt.Errorf("http://x/r.git ls-remote: %w (check the token file): %w", auth, errors.New("authentication required")), Terminal},
		{"marked", Mark(Terminal, errors.New("health: invalid interval")), Terminal},
		{"mark overrides", Mark(Verdict, reset), Verdict},
		{"invalid", invalid, Verdict},
		{"wrapped invalid", fmt.Errorf("Deployment/ns/web dry-run failed (Invalid): %w", invalid), Verdict},
		{"bad request", apierrors.NewBadRequest("bad"), Verdict},
		{"not found", apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, "gone"), Verdict},
		{"joined invalid and reset", errors.Join(reset, invalid), Verdict},
		{"joined reset and unknown", errors.Join(errors.New("odd"), reset), Transient},
		{"joined forbidden and reset", errors.Join(reset, apierrors.NewForbidden(gr, "web", errors.New("no"))), Terminal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Classify(tc.err); got != tc.want {
				t.Errorf("Classify(%v) = %s, want %s", tc.err, got, tc.want)
			}
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o deadline reached" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestOfDefaults(t *testing.T) {
	if got := Of(errors.New("render: no kustomization"), Verdict); got != Verdict {
		t.Errorf("unknown error with default Verdict: %s", got)
	}
	if got := Of(apierrors.NewServiceUnavailable("x"), Verdict); got != Transient {
		t.Errorf("known error keeps its kind over the default: %s", got)
	}
}

func TestSentinelIs(t *testing.T) {
	s := New(Transient, "remote unreachable")
	err := fmt.Errorf("x: %w: %w", s, errors.New("cause"))
	if !errors.Is(err, s) {
		t.Fatal("errors.Is does not find the sentinel")
	}
	if err.Error() != "x: remote unreachable: cause" {
		t.Fatalf("text: %q", err.Error())
	}
	if Mark(Terminal, nil) != nil {
		t.Fatal("Mark(nil) is not nil")
	}
}
