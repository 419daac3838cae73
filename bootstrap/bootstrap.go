// Package bootstrap installs ferry into a cluster so that ferry manages
// itself. It checks first that everything it will do is allowed (preflight)
// and changes nothing until every check passes; then it commits ferry's
// install directory into the repository, creates the git credential Secret,
// applies the install with server-side apply and waits for the Deployment
// to be Available.
//
// The committed directory holds the install manifests and ferry.yaml, whose
// one environment follows that directory: ferry applies its own install, so
// an upgrade is a commit. Every step is idempotent: a second run with the
// same options makes no commit and writes nothing to the cluster.
package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"time"

	"github.com/fluxcd/pkg/ssa"
	"github.com/go-git/go-git/v5/plumbing"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/manifests"
	"ferry.dev/ferry/render"
)

// Options says where ferry is installed from and into.
type Options struct {
	// Repo is the repository's HTTPS URL, without credentials.
	Repo string
	// Branch is the branch the install is committed to; it is created when
	// missing.
	Branch string
	// Path is the install directory in the repository; default
	// clusters/<Environment>/ferry (see [Options.InstallPath]).
	Path string
	// Environment names the environment in ferry.yaml that manages ferry's
	// own install: the owner label of the install objects and the name of
	// its state. Required, a DNS-1123 label; conventionally the cluster's
	// name, so that two clusters bootstrapped into one repository get two
	// directories.
	Environment string
	// Credentials authenticate to the repository; they must allow pushing.
	Credentials Credentials
	// Namespace is ferry's own namespace; default ferry-system.
	Namespace string
	// Image is ferry's container image. Empty keeps the image the
	// committed install names, or, on a first install,
	// manifests.DefaultImage. A new image is an upgrade, committed.
	Image string
	// Replicas is the Deployment's size; default 2.
	Replicas int32
	// Timeout bounds the wait for the Deployment to be Available;
	// default 5m.
	Timeout time.Duration
	// SOPSAgeKey, when set, is an age identity file (age-keygen's output)
	// that bootstrap puts into the Secret SOPSKeysSecret in Namespace,
	// under the key identity.agekey: never committed. Environments name
	// that Secret in decryption.secretRef to decrypt their SOPS-encrypted
	// files with it.
	SOPSAgeKey []byte
	// SOPSKeysSecret names the Secret of SOPSAgeKey; default sops-keys.
	// One Secret per environment keeps staging's key from production's.
	SOPSKeysSecret string
	// Author signs the install commits.
	Author Author
	// Out receives progress, one line per check and step.
	Out io.Writer
}

// Credentials authenticate to the repository over HTTPS: a token (sent as
// the password of user "git", as ferry sends it), or Username with
// Password. The values, never committed, go into the Secret
// manifests.CredentialsSecret.
type Credentials struct {
	// Username goes with Password; with a token the user is "git".
	Username string
	// Token is an access token with write access to the repository.
	Token string
	// Password is Username's password (or a token the forge wants with
	// the real user name).
	Password string
}

// Author is the name and email on the commits bootstrap makes.
type Author struct {
	// Name and Email sign the commit as author and committer.
	Name, Email string
}

// DefaultSOPSKeysSecret is the default name of the Secret holding the SOPS
// age key that bootstrap --sops-age-key creates.
const DefaultSOPSKeysSecret = "sops-keys"

// SOPSAgeKeyName is the key of the age identity in that Secret.
const SOPSAgeKeyName = "identity" + render.AgeKeySuffix

// DefaultOptions returns branch main, namespace ferry-system, two replicas,
// a five minute wait, author "ferry", progress to io.Discard, and the SOPS
// key Secret sops-keys.
func DefaultOptions() Options {
	return Options{
		Branch:    "main",
		Namespace: manifests.DefaultNamespace,
		Replicas:  manifests.DefaultReplicas,
		Timeout:   5 * time.Minute,
		Author:    Author{Name: "ferry", Email: "ferry@localhost"},
		Out:       io.Discard,

		SOPSKeysSecret: DefaultSOPSKeysSecret,
	}
}

// InstallPath is the install directory: Path, or
// clusters/<Environment>/ferry.
func (o Options) InstallPath() string {
	if o.Path != "" {
		return path.Clean(o.Path)
	}
	return path.Join("clusters", o.Environment, "ferry")
}

// Result is what a bootstrap did.
type Result struct {
	// Commit is the branch's tip holding the install, pushed by this run or
	// found there.
	Commit string
	// Pushed says whether this run committed and pushed.
	Pushed bool
	// Secret is what happened to the credential Secret: "created",
	// "updated" or "unchanged".
	Secret string
	// SOPSKeys is what happened to the SOPS key Secret: "created",
	// "updated", "unchanged", or "" when no key was given.
	SOPSKeys string
	// Changes lists every install object with what apply did to it.
	Changes *ssa.ChangeSet
}

// Changed reports whether this run changed the repository or the cluster.
func (r *Result) Changed() bool {
	if r.Pushed || r.Secret != secretUnchanged || (r.SOPSKeys != "" && r.SOPSKeys != secretUnchanged) || r.Changes == nil {
		return true
	}
	for _, e := range r.Changes.Entries {
		if e.Action != ssa.UnchangedAction {
			return true
		}
	}
	return false
}

// ErrPreflight marks a bootstrap refused by its preflight checks; nothing
// was changed. The error lists every failed check with its fix.
var ErrPreflight = errors.New("preflight failed, nothing was changed")

// run is one bootstrap: what the steps share.
type run struct {
	opts    Options
	cfg     *rest.Config
	client  client.Client
	clients kubernetes.Interface
	out     io.Writer
	repo    *remote
	tip     plumbing.Hash // the branch's tip before bootstrap; zero if missing
	plan    *plan
	res     Result
}

// step is one named phase of a bootstrap.
type step struct {
	name string
	do   func(ctx context.Context) error
}

// Run bootstraps ferry into the cluster of cfg: preflight, commit, then
// namespace, credentials, apply and wait. A failed preflight returns an
// error wrapping ErrPreflight before anything changed.
func Run(ctx context.Context, cfg *rest.Config, opts Options) (*Result, error) {
	opts = withDefaults(opts)
	r := &run{opts: opts, cfg: cfg, out: opts.Out}
	steps := []step{
		{"preflight", r.preflight},
		{"commit", r.commit},
		{"namespace", r.namespace},
		{"credentials", r.credentials},
		{"decryption keys", r.sopsKeys},
		{"apply", r.apply},
		{"wait", r.wait},
	}
	for _, s := range steps {
		fmt.Fprintf(r.out, "► %s\n", s.name)
		if err := s.do(ctx); err != nil {
			return &r.res, err
		}
	}
	r.printEndpoints()
	return &r.res, nil
}

// withDefaults fills what opts leaves empty from DefaultOptions.
func withDefaults(o Options) Options {
	d := DefaultOptions()
	if o.Branch == "" {
		o.Branch = d.Branch
	}
	if o.Namespace == "" {
		o.Namespace = d.Namespace
	}
	if o.Replicas == 0 {
		o.Replicas = d.Replicas
	}
	if o.Timeout <= 0 {
		o.Timeout = d.Timeout
	}
	if o.Author.Name == "" || o.Author.Email == "" {
		o.Author = d.Author
	}
	if o.Out == nil {
		o.Out = d.Out
	}
	if o.SOPSKeysSecret == "" {
		o.SOPSKeysSecret = d.SOPSKeysSecret
	}
	return o
}

func (r *run) printEndpoints() {
	base := fmt.Sprintf("http://%s.%s.svc:%d", manifests.Name, r.opts.Namespace, manifests.Port)
	fmt.Fprintf(r.out, `ferry is running in namespace %[1]s and manages itself from %[2]s (branch %[3]s, %[4]s).
  webhooks: %[5]s/hooks/<provider>   (github, gitlab or gitea; point the repository's push webhook here)
  badge:    %[5]s/badge/%[6]s.svg
  These are in-cluster addresses of the Service %[7]s/%[8]s: expose it (an Ingress), or try
  kubectl -n %[7]s port-forward svc/%[8]s %[9]d  and open http://127.0.0.1:%[9]d/badge/%[6]s.svg
`, r.opts.Namespace, r.opts.Repo, r.opts.Branch, r.opts.InstallPath(), base, r.opts.Environment,
		r.opts.Namespace, manifests.Name, manifests.Port)
}
