// Package cluster turns a configured cluster into what talks to it: a REST
// config and a client. Bootstrap, uninstall, run, the one-shot commands and
// the reconciler all get theirs here, so every client of ferry has the
// same identity (user agent "ferry"), the same rate limits (none on the
// client side: the API server's priority and fairness limits) and the same
// kubeconfig lookup.
//
// It imports only config.
package cluster

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/config"
)

// RESTConfig loads the REST config of a configured cluster: its kubeconfig
// and context, or, when empty, $KUBECONFIG, ~/.kube/config or the
// in-cluster ServiceAccount. Client-side rate limiting is off; the API
// server's priority and fairness does the limiting. Its requests count on
// Requests.
func RESTConfig(cl config.Cluster) (*rest.Config, error) {
	cfg, _, err := restConfig(cl)
	return cfg, err
}

// InCluster reports whether ferry reaches a configured cluster as the pod's
// own ServiceAccount (no kubeconfig found), where each environment's
// requests impersonate its ServiceAccount by default
// (config.Environment.ServiceAccountName).
func InCluster(cl config.Cluster) (bool, error) {
	_, in, err := restConfig(cl)
	return in, err
}

func restConfig(cl config.Cluster) (*rest.Config, bool, error) {
	inCluster := false
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if cl.Kubeconfig != "" {
		rules.ExplicitPath = cl.Kubeconfig
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: cl.Context}).ClientConfig()
	if err != nil {
		if cl.Kubeconfig == "" {
			if ic, ierr := rest.InClusterConfig(); ierr == nil {
				cfg, err, inCluster = ic, nil, true
			}
		}
		if err != nil {
			return nil, false, fmt.Errorf("kubeconfig %q: %w (set cluster.kubeconfig, $KUBECONFIG, or run in a cluster)", cl.Kubeconfig, err)
		}
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = -1, -1
	cfg.UserAgent = "ferry"
	return Requests.Wrap(cfg), inCluster, nil
}

// Impersonate returns a copy of cfg that acts as the ServiceAccount
// namespace/name (user system:serviceaccount:<namespace>:<name>), so the
// API server checks that account's RBAC rather than ferry's own. ferry's
// own identity needs the right to impersonate it.
func Impersonate(cfg *rest.Config, namespace, name string) (*rest.Config, error) {
	if namespace == "" || name == "" {
		return nil, fmt.Errorf("impersonate ServiceAccount %q in namespace %q: both are needed", name, namespace)
	}
	out := rest.CopyConfig(cfg)
	// No groups are sent: for a ServiceAccount the API server adds its
	// groups itself, while groups sent would each need the impersonate
	// right on groups, which ferry's install does not grant.
	out.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + namespace + ":" + name}
	return out, nil
}

// NewClient returns a client for cfg.
func NewClient(cfg *rest.Config) (client.Client, error) {
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cfg.Host, err)
	}
	return c, nil
}

// Client returns a client for a configured cluster, see [RESTConfig].
func Client(cl config.Cluster) (client.Client, error) {
	cfg, err := RESTConfig(cl)
	if err != nil {
		return nil, err
	}
	return NewClient(cfg)
}

// EnsureNamespace creates namespace name unless it exists. A client that
// may not create namespaces is not an error: the namespace may well be
// there, and the first write into it says so if it is not.
func EnsureNamespace(ctx context.Context, c client.Client, name string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) && !apierrors.IsForbidden(err) {
		return fmt.Errorf("ferry namespace %s: %w", name, err)
	}
	return nil
}
