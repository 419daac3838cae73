package reconciler

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"ferry.dev/ferry/state"
)

func TestReady(t *testing.T) {
	down := false
	c := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithInterceptorFuncs(interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if down {
				return apierrors.NewServiceUnavailable("the API server is restarting")
			}
			return c.Get(ctx, key, obj, opts...)
		},
	}).Build()
	r := New(Environment{Name: "staging"}, nil, nil, nil, nil, state.NewStore(c, "ferry"), slog.New(slog.DiscardHandler))
	m := &Manager{envs: map[string]*Reconciler{"staging": r}}
	if err := m.Ready(t.Context()); err != nil {
		t.Fatalf("Ready with the API server up: %v", err)
	}
	down = true
	err := m.Ready(t.Context())
	if err == nil || !strings.Contains(err.Error(), "environment staging") || !strings.Contains(err.Error(), "restarting") {
		t.Fatalf("Ready with the API server down: %v", err)
	}
}
