package reconciler

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"ferry.dev/ferry/apply"
	"ferry.dev/ferry/cluster"
	"ferry.dev/ferry/config"
	"ferry.dev/ferry/forge"
	"ferry.dev/ferry/health"
	"ferry.dev/ferry/render"
	"ferry.dev/ferry/scope"
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
	actors  map[actorKey]client.Client
	repos   map[string]*source.Repository
	// watches are shared by the environments that act as one identity.
	watches map[actorKey]*apply.Watches
}

// actorKey names the identity an environment's requests are made as: a
// ServiceAccount of ferry's namespace on a cluster.
type actorKey struct {
	cluster        config.Cluster
	serviceAccount string
}

func newWiring(cfg *config.Config, opts Options) *wiring {
	return &wiring{cfg: cfg, opts: opts.withDefaults(), clients: map[config.Cluster]client.Client{},
		actors: map[actorKey]client.Client{}, repos: map[string]*source.Repository{}, watches: map[actorKey]*apply.Watches{}}
}

// wired is one environment's parts: its configuration, its cluster's
// client and its state store. The clone is opened on demand (repository),
// so commands that only read state need no git credentials.
type wired struct {
	env *config.Environment
	// client is ferry's own identity: its state, Events and credentials,
	// in its own namespace.
	client client.Client
	// actor is the environment's identity: every request made for it
	// (dry-run, apply, prune, health reads, plans) impersonates its
	// ServiceAccount, so the API server enforces its scope too. Without a
	// ServiceAccount (outside a cluster, none configured) it is client.
	actor client.Client
	store *state.Store
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
	actor, err := w.actor(env, c)
	if err != nil {
		return nil, fmt.Errorf("environment %s: %w", name, err)
	}
	return &wired{env: env, client: c, actor: actor, store: state.NewStore(c, w.cfg.Namespace)}, nil
}

// actor returns the client env's requests are made with: one that
// impersonates its ServiceAccount (config.Environment.ServiceAccountName),
// or own when it has none.
func (w *wiring) actor(env *config.Environment, own client.Client) (client.Client, error) {
	inCluster, err := cluster.InCluster(env.Cluster)
	if err != nil {
		return nil, err
	}
	sa := env.ServiceAccountName(inCluster)
	if sa == "" {
		return own, nil
	}
	key := actorKey{cluster: env.Cluster, serviceAccount: sa}
	if c, ok := w.actors[key]; ok {
		return c, nil
	}
	cfg, err := w.actorConfig(env, sa)
	if err != nil {
		return nil, err
	}
	c, err := cluster.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	w.actors[key] = c
	return c, nil
}

// actorConfig is the REST config of env's identity: its cluster's,
// impersonating sa when sa is set.
func (w *wiring) actorConfig(env *config.Environment, sa string) (*rest.Config, error) {
	cfg, err := cluster.RESTConfig(env.Cluster)
	if err != nil || sa == "" {
		return cfg, err
	}
	return cluster.Impersonate(cfg, w.cfg.Namespace, sa)
}

// watchesOf returns the watches of wd's identity, shared by every
// environment acting as it.
func (w *wiring) watchesOf(wd *wired) (*apply.Watches, error) {
	inCluster, err := cluster.InCluster(wd.env.Cluster)
	if err != nil {
		return nil, err
	}
	sa := wd.env.ServiceAccountName(inCluster)
	key := actorKey{cluster: wd.env.Cluster, serviceAccount: sa}
	if ws, ok := w.watches[key]; ok {
		return ws, nil
	}
	cfg, err := w.actorConfig(wd.env, sa)
	if err != nil {
		return nil, err
	}
	ws, err := apply.NewWatches(cfg, wd.actor.RESTMapper())
	if err != nil {
		return nil, err
	}
	w.watches[key] = ws
	return ws, nil
}

// startWatches lets the watches of every identity start; they end with ctx.
func (w *wiring) startWatches(ctx context.Context) {
	for _, ws := range w.watches {
		ws.Start(ctx)
	}
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
	return apply.New(wd.actor, aopts)
}

// scope is the environment's scope, for the scope check.
func (wd *wired) scope() scope.Scope {
	e := wd.env
	return scope.Scope{Environment: e.Name, Namespaces: e.Scope.Namespaces, ClusterKinds: e.Scope.ClusterKinds,
		ClusterAdmin: e.Scope.ClusterAdmin, DefaultNamespace: e.Namespace}
}

// limits are the environment's render limits.
func (wd *wired) limits() render.Limits {
	l := wd.env.Limits
	return render.Limits{MaxFileBytes: int64(l.MaxFileBytes), MaxObjects: l.MaxObjects, MaxRenderBytes: int64(l.MaxRenderBytes), Timeout: l.RenderTimeout}
}

// namespaced answers the scope check from the API server's discovery, as
// the environment's identity sees it.
func (wd *wired) namespaced() scope.NamespacedFunc {
	return func(gvk schema.GroupVersionKind) (bool, error) {
		return apiutil.IsGVKNamespaced(gvk, wd.actor.RESTMapper())
	}
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
		AllowDestructive: env.AllowDestructive, Scope: wd.scope(), Namespaced: wd.namespaced(), Limits: wd.limits(),
		DriftCheckInterval: env.DriftCheckInterval},
		source.NewWatcher(repo, env.Source.Branch, wopts), renderer, wd.applier(), health.NewChecker(wd.actor), wd.store, w.opts.Log)
	watches, err := w.watchesOf(wd)
	if err != nil {
		return nil, fmt.Errorf("environment %s: %w", name, err)
	}
	r.watches = watches
	r.applier.SetWatches(watches)
	r.checker.SetChanges(r.drift)
	watches.OnChange(r.onChange)
	// The key Secret is ferry's, in ferry's namespace: read with ferry's
	// own client, as the state is.
	r.keys = keyLoader{decryption: env.Decryption, client: wd.client, namespace: w.cfg.Namespace}
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
