package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/cluster"
	"ferry.dev/ferry/manifests"
)

// PartOfLabel marks every object of ferry's install; Uninstall deletes
// only objects that carry it with the value "ferry".
const PartOfLabel = "app.kubernetes.io/part-of"

// UninstallOptions says which install Uninstall removes.
type UninstallOptions struct {
	// Namespace is ferry's own namespace; default ferry-system.
	Namespace string
	// Timeout bounds the wait for the namespace to be gone; default 5m.
	Timeout time.Duration
	// Out receives progress.
	Out io.Writer
}

// DefaultUninstallOptions returns namespace ferry-system, a five minute
// wait and progress to io.Discard.
func DefaultUninstallOptions() UninstallOptions {
	return UninstallOptions{Namespace: manifests.DefaultNamespace, Timeout: 5 * time.Minute, Out: io.Discard}
}

// Uninstall removes ferry's install from the cluster of cfg: its Namespace
// (and with it the Deployment, Service, RBAC, state ConfigMaps, Lease,
// credential Secret and the environments' ServiceAccounts), its ClusterRole
// and ClusterRoleBinding, and the RBAC of the environments'
// ServiceAccounts (environments.yaml: labelled ferry.dev/scope-of). It deletes
// exactly the install's cluster-scoped objects by name, and only those that
// carry PartOfLabel=ferry; it leaves everything ferry applied for the
// environments in place. It does not touch git: the install directory stays
// in the repository until someone removes it.
func Uninstall(ctx context.Context, cfg *rest.Config, opts UninstallOptions) error {
	if opts.Namespace == "" {
		opts.Namespace = manifests.DefaultNamespace
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultUninstallOptions().Timeout
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	c, err := cluster.NewClient(cfg)
	if err != nil {
		return err
	}
	targets, err := installed(ctx, opts.Namespace)
	if err != nil {
		return err
	}
	grants, err := environmentRBAC(ctx, c, opts.Namespace)
	if err != nil {
		return err
	}
	targets = append(targets, grants...)
	// The Namespace goes first: its pods stop, so no running ferry puts
	// the cluster RBAC back.
	var errs []error
	for _, o := range targets {
		if err := deleteOwned(ctx, c, o, opts.Out); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return waitGone(ctx, c, targets[0], opts)
}

// installed returns the install's cluster-scoped objects as rendered for
// namespace, the Namespace first. Their names depend only on the
// namespace, so any configuration renders them.
func installed(ctx context.Context, namespace string) ([]*unstructured.Unstructured, error) {
	mopts := manifests.DefaultOptions()
	mopts.Namespace = namespace
	mopts.ConfigYAML = []byte("namespace: " + namespace + "\n")
	objs, err := manifests.Render(ctx, mopts)
	if err != nil {
		return nil, err
	}
	var ns, rest []*unstructured.Unstructured
	for _, o := range objs {
		switch {
		case o.GetNamespace() != "":
		case o.GetKind() == "Namespace":
			ns = append(ns, o)
		default:
			rest = append(rest, o)
		}
	}
	if len(ns) != 1 {
		return nil, fmt.Errorf("install manifests: %d Namespaces, want 1", len(ns))
	}
	return append(ns, rest...), nil
}

// deleteOwned deletes the live object named like o when it carries
// PartOfLabel=ferry.
func deleteOwned(ctx context.Context, c client.Client, o *unstructured.Unstructured, out io.Writer) error {
	subject := o.GetKind() + " " + o.GetName()
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(o.GroupVersionKind())
	err := c.Get(ctx, client.ObjectKeyFromObject(o), live)
	switch {
	case apierrors.IsNotFound(err):
		fmt.Fprintf(out, "  %s: not found\n", subject)
		return nil
	case err != nil:
		return fmt.Errorf("%s: %w", subject, err)
	case live.GetLabels()[PartOfLabel] != "ferry":
		fmt.Fprintf(out, "  %s: kept, it lacks the label %s=ferry, so ferry did not install it\n", subject, PartOfLabel)
		return nil
	}
	if err := c.Delete(ctx, live, client.PropagationPolicy("Background")); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("%s: %w", subject, err)
	}
	fmt.Fprintf(out, "  %s: deleted\n", subject)
	return nil
}

// waitGone waits until the object o names no longer exists.
func waitGone(ctx context.Context, c client.Client, o *unstructured.Unstructured, opts UninstallOptions) error {
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	subject := o.GetKind() + " " + o.GetName()
	for {
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(o.GroupVersionKind())
		err := c.Get(ctx, client.ObjectKeyFromObject(o), live)
		switch {
		case apierrors.IsNotFound(err):
			fmt.Fprintf(opts.Out, "  %s: gone\n", subject)
			return nil
		case err == nil && live.GetLabels()[PartOfLabel] != "ferry":
			return nil // kept above
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: still terminating after %s: see kubectl get namespace %s -o yaml (finalizers)", subject, opts.Timeout, o.GetName())
		case <-tick.C:
		}
	}
}

// ScopeOfLabel marks the RBAC of an environment's ServiceAccount (see
// scope.RBAC).
const ScopeOfLabel = "ferry.dev/scope-of"

// environmentRBAC lists the RoleBindings, ClusterRoleBindings and
// ClusterRoles of the environments' ServiceAccounts of the install in
// namespace: those labelled ScopeOfLabel and PartOfLabel=ferry, see
// ofInstall.
func environmentRBAC(ctx context.Context, c client.Client, namespace string) ([]*unstructured.Unstructured, error) {
	var all []*unstructured.Unstructured
	for _, kind := range []string{"RoleBindingList", "ClusterRoleBindingList", "ClusterRoleList"} {
		list := &unstructured.UnstructuredList{}
		list.SetAPIVersion("rbac.authorization.k8s.io/v1")
		list.SetKind(kind)
		if err := c.List(ctx, list, client.HasLabels{ScopeOfLabel}, client.MatchingLabels{PartOfLabel: "ferry"}); err != nil {
			return nil, fmt.Errorf("list %s: %w", kind, err)
		}
		for i := range list.Items {
			all = append(all, &list.Items[i])
		}
	}
	return ofInstall(all, namespace), nil
}

// ofInstall keeps, of the environments' RBAC objects, those of the install
// in namespace: the bindings whose subjects are ServiceAccounts there, and
// the ClusterRoles only those bindings name. Another install in the same
// cluster keeps its own.
func ofInstall(objs []*unstructured.Unstructured, namespace string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	roles := map[string]bool{}
	for _, o := range objs {
		if o.GetKind() == "ClusterRole" {
			continue
		}
		subjects, _, _ := unstructured.NestedSlice(o.Object, "subjects")
		ours := len(subjects) > 0
		for _, s := range subjects {
			m, _ := s.(map[string]any)
			if m["kind"] != "ServiceAccount" || m["namespace"] != namespace {
				ours = false
			}
		}
		if !ours {
			continue
		}
		out = append(out, o)
		if kind, _, _ := unstructured.NestedString(o.Object, "roleRef", "kind"); kind == "ClusterRole" {
			name, _, _ := unstructured.NestedString(o.Object, "roleRef", "name")
			roles[name] = true
		}
	}
	for _, o := range objs {
		if o.GetKind() == "ClusterRole" && roles[o.GetName()] {
			out = append(out, o)
		}
	}
	return out
}
