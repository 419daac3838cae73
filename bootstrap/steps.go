package bootstrap

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/fluxcd/pkg/ssa"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/apply"
	"ferry.dev/ferry/manifests"
	"ferry.dev/ferry/state"
)

// Outcomes of the credentials step, in Result.Secret.
const (
	secretCreated   = "created"
	secretUpdated   = "updated"
	secretUnchanged = "unchanged"
)

// commit commits the install directory when its content changed, and
// pushes it.
func (r *run) commit(ctx context.Context) error {
	dir := r.opts.InstallPath()
	co := r.plan.checkout
	msg := fmt.Sprintf("Install ferry in %s\n\nImage %s in namespace %s; ferry manages itself from %s.", r.opts.Environment, r.plan.image, r.opts.Namespace, dir)
	if !r.plan.first {
		msg = fmt.Sprintf("Update ferry in %s: %s", r.opts.Environment, r.plan.image)
	}
	hash, changed, err := co.commit(dir, r.plan.files, msg, r.opts.Author)
	if err != nil {
		return fmt.Errorf("commit %s: %w", dir, err)
	}
	if hash.IsZero() {
		r.res.Commit = co.tip.String()
		fmt.Fprintf(r.out, "  %s on %s is up to date at %s, no commit\n", dir, r.opts.Branch, state.Short(co.tip.String()))
		return nil
	}
	if err := co.push(ctx, r.repo); err != nil {
		return fmt.Errorf("push %s to %s: %w (if the branch moved meanwhile, run bootstrap again)", r.opts.Branch, r.opts.Repo, err)
	}
	r.res.Commit, r.res.Pushed = hash.String(), true
	fmt.Fprintf(r.out, "  committed %s to %s and pushed: %s (%s)\n", state.Short(hash.String()), r.opts.Branch, dir, strings.Join(changed, ", "))
	return nil
}

// applier applies with ferry's field manager and owner label, as ferry
// itself will when it reconciles its own environment: no drift between the
// two.
func (r *run) applier() *apply.Applier {
	opts := apply.DefaultOptions()
	opts.Environment, opts.DefaultNamespace = r.opts.Environment, r.opts.Namespace
	return apply.New(r.client, opts)
}

// namespace applies ferry's Namespace first, so that the credential Secret
// exists before the Deployment's pods look for it.
func (r *run) namespace(ctx context.Context) error {
	ns, _ := r.splitNamespace()
	cs, err := r.applier().Apply(ctx, ns)
	if err != nil {
		return fmt.Errorf("namespace %s: %w", r.opts.Namespace, err)
	}
	r.res.Changes = ssa.NewChangeSet()
	r.record(cs)
	return nil
}

// splitNamespace returns ferry's Namespace object and the other objects.
func (r *run) splitNamespace() (ns, rest []*unstructured.Unstructured) {
	for _, o := range r.plan.objects {
		if o.GetKind() == "Namespace" && o.GroupVersionKind().Group == "" {
			ns = append(ns, o)
		} else {
			rest = append(rest, o)
		}
	}
	return ns, rest
}

// record adds a change set to the result and prints what changed.
func (r *run) record(cs *ssa.ChangeSet) {
	counts := map[ssa.Action]int{}
	for _, e := range cs.Entries {
		counts[e.Action]++
		if e.Action != ssa.UnchangedAction {
			fmt.Fprintf(r.out, "  %s %s\n", e.Action, e.Subject)
		}
	}
	r.res.Changes.Append(cs.Entries)
	if n := counts[ssa.UnchangedAction]; n > 0 {
		fmt.Fprintf(r.out, "  %d unchanged\n", n)
	}
}

// credentials creates or updates the git credential Secret, which is never
// committed. It writes only when the content differs.
func (r *run) credentials(ctx context.Context) error {
	data := map[string][]byte{}
	c := r.opts.Credentials
	if c.Token != "" {
		data[manifests.TokenKey] = []byte(c.Token)
	} else {
		data[manifests.PasswordKey] = []byte(c.Password)
	}
	key := client.ObjectKey{Namespace: r.opts.Namespace, Name: manifests.CredentialsSecret}
	subject := "Secret " + key.String()
	s := &corev1.Secret{}
	err := r.client.Get(ctx, key, s)
	switch {
	case apierrors.IsNotFound(err):
		s = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name,
				Labels: map[string]string{"app.kubernetes.io/part-of": "ferry"}},
			Type: corev1.SecretTypeOpaque,
			Data: data,
		}
		if err := r.client.Create(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", subject, err)
		}
		r.res.Secret = secretCreated
	case err != nil:
		return fmt.Errorf("%s: %w", subject, err)
	case maps.EqualFunc(s.Data, data, bytes.Equal):
		r.res.Secret = secretUnchanged
	default:
		s.Data = data
		if err := r.client.Update(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", subject, err)
		}
		r.res.Secret = secretUpdated
	}
	fmt.Fprintf(r.out, "  %s %s (git credentials, never committed)\n", r.res.Secret, subject)
	return nil
}

// apply applies the rest of the install with server-side apply.
func (r *run) apply(ctx context.Context) error {
	_, rest := r.splitNamespace()
	cs, err := r.applier().Apply(ctx, rest)
	if cs != nil {
		r.record(cs)
	}
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	return nil
}

// wait polls the Deployment until its rollout is complete and it is
// Available, printing each change of progress.
func (r *run) wait(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	key := client.ObjectKey{Namespace: r.opts.Namespace, Name: manifests.Name}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := ""
	for {
		d := &appsv1.Deployment{}
		err := r.client.Get(ctx, key, d)
		progress, done := "", false
		if err != nil {
			progress = err.Error()
		} else {
			progress, done = rollout(d)
		}
		if progress != last {
			fmt.Fprintf(r.out, "  Deployment %s: %s\n", key, progress)
			last = progress
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("Deployment %s: not Available after %s (%s): see kubectl -n %s describe deployment %s, and its pods' events",
				key, r.opts.Timeout, last, key.Namespace, key.Name)
		case <-tick.C:
		}
	}
}

// rollout describes a Deployment's progress and reports whether its
// current generation is fully rolled out and Available.
func rollout(d *appsv1.Deployment) (string, bool) {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	available := false
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue {
			available = true
		}
	}
	msg := fmt.Sprintf("%d/%d ready, %d/%d updated", s.ReadyReplicas, want, s.UpdatedReplicas, want)
	if s.Replicas > want {
		msg += fmt.Sprintf(", %d old terminating", s.Replicas-s.UpdatedReplicas)
	}
	done := s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want &&
		s.ReadyReplicas == want && s.Replicas == want && available
	if done {
		msg += ", Available"
	}
	return msg, done
}
