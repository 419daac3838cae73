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
// (and with it the Deployment, Service, RBAC, state ConfigMaps, Lease and
// credential Secret) and its ClusterRole and ClusterRoleBinding. It deletes
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
