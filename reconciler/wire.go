package reconciler

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/apply"
	"ferry.dev/ferry/cluster"
	"ferry.dev/ferry/config"
	"ferry.dev/ferry/forge"
	"ferry.dev/ferry/health"
	"ferry.dev/ferry/render"
	"ferry.dev/ferry/source"
	"ferry.dev/ferry/state"
)

// wiring turns configuration into the parts of environments. `ferry run`
// (NewManager) and the one-shot commands (LoadState, Release, Rollback,
// PlanEnvironment) build their environments through it alone. Environments
// on one cluster share a client; environments following one repository
// with the same credentials share a clone.
type wiring struct {
	cfg     *config.Config
	opts    Options
	clients map[config.Cluster]client.Client
	repos   map[string]*source.Repository
}

func newWiring(cfg *config.Config, opts Options) *wiring {
	return &wiring{cfg: cfg, opts: opts.withDefaults(), clients: map[config.Cluster]client.Client{}, repos: map[string]*source.Repository{}}
}

// wired is one environment's parts: its configuration, its cluster's
// client and its state store. The clone is opened on demand (repository),
// so commands that only read state need no git credentials.
type wired struct {
	env    *config.Environment
	client client.Client
	store  *state.Store
}

// wire returns the parts of the environment called name.
func (w *wiring) wire(name string) (*wired, error) {
	env, ok := w.cfg.Environment(name)
	if !ok {
		return nil, fmt.Errorf("environment %q is not configured", name)
	}
	c, ok := w.clients[env.Cluster]
	if !ok {
		var err error
		if c, err = cluster.Client(env.Cluster); err != nil {
			return nil, fmt.Errorf("environment %s: %w", name, err)
		}
		w.clients[env.Cluster] = c
	}
	return &wired{env: env, client: c, store: state.NewStore(c, w.cfg.Namespace)}, nil
}

// wireWithRepository is wire, plus the environment's clone.
func (w *wiring) wireWithRepository(ctx context.Context, name string) (*wired, *source.Repository, error) {
	wd, err := w.wire(name)
	if err != nil {
		return nil, nil, err
	}
	repo, err := w.repository(ctx, wd)
	return wd, repo, err
}

// repository opens the clone of the environment's repository with its
// credentials.
func (w *wiring) repository(ctx context.Context, wd *wired) (*source.Repository, error) {
	src := wd.env.Source
	key := src.URL + "\x00" + src.Auth.TokenFile + src.Auth.SSHKeyFile + src.Auth.SecretRef
	if repo, ok := w.repos[key]; ok {
		return repo, nil
	}
	creds, err := credentials(ctx, wd.client, w.cfg.Namespace, src.Auth)
	if err != nil {
		return nil, fmt.Errorf("environment %s: %w", wd.env.Name, err)
	}
	repo, err := source.Open(src.URL, creds, w.opts.CacheDir)
	if err != nil {
		return nil, fmt.Errorf("environment %s: %w", wd.env.Name, err)
	}
	w.repos[key] = repo
	return repo, nil
}

// applier returns the environment's applier.
func (wd *wired) applier() *apply.Applier {
	aopts := apply.DefaultOptions()
	aopts.Environment, aopts.DefaultNamespace, aopts.Force = wd.env.Name, wd.env.Namespace, wd.env.Force
	return apply.New(wd.client, aopts)
}

// reconciler wires the Reconciler of the environment called name. Its
// promotion target is linked later, once every environment exists.
func (w *wiring) reconciler(ctx context.Context, name string, renderer *render.Renderer) (*Reconciler, error) {
	wd, repo, err := w.wireWithRepository(ctx, name)
	if err != nil {
		return nil, err
	}
	env := wd.env
	hopts, err := env.Health.Options()
	if err != nil {
		return nil, fmt.Errorf("environment %s: %w", name, err)
	}
	wopts := source.DefaultWatchOptions()
	wopts.Interval = env.Source.Interval
	r := New(Environment{Name: env.Name, Path: env.Source.Path, Interval: env.Source.Interval, Prune: env.PruneEnabled(), Health: hopts,
		Repo: repo, Branch: env.Source.Branch, OnFailure: env.OnFailure, MaxPruneFraction: env.MaxPruneFraction,
		AllowDestructive: env.AllowDestructive},
		source.NewWatcher(repo, env.Source.Branch, wopts), renderer, wd.applier(), health.NewChecker(wd.client), wd.store, w.opts.Log)
	r.notify = notifier{reporter: w.opts.Reporter, metrics: w.opts.Metrics, externalURL: w.opts.ExternalURL, events: true}
	if fr, err := forge.ParseRepo(env.Source.URL); err == nil {
		r.notify.repo, r.notify.hasRepo = fr, true
	}
	return r, nil
}

// ensureNamespaces creates ferry's namespace on every cluster wired.
func (w *wiring) ensureNamespaces(ctx context.Context) error {
	for _, c := range w.clients {
		if err := cluster.EnsureNamespace(ctx, c, w.cfg.Namespace); err != nil {
			return err
		}
	}
	return nil
}

// credentials resolves an environment's git credentials. Files are read at
// every use by the source package; a Secret is read once here.
func credentials(ctx context.Context, c client.Client, namespace string, a config.Auth) (source.Credentials, error) {
	creds := source.Credentials{TokenFile: a.TokenFile, Username: a.Username, PasswordFile: a.PasswordFile,
		SSHKeyFile: a.SSHKeyFile, KnownHostsFile: a.KnownHostsFile}
	if a.SecretRef == "" {
		return creds, nil
	}
	s := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: a.SecretRef}, s); err != nil {
		return creds, fmt.Errorf("git credentials Secret %s/%s: %w", namespace, a.SecretRef, err)
	}
	creds.Token = string(s.Data["token"])
	creds.Username = string(s.Data["username"])
	creds.Password = string(s.Data["password"])
	creds.SSHKey = s.Data["identity"]
	creds.KnownHosts = s.Data["known_hosts"]
	return creds, nil
}
