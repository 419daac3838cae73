package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/apply"
	"ferry.dev/ferry/config"
	"ferry.dev/ferry/health"
	"ferry.dev/ferry/render"
	"ferry.dev/ferry/report"
	"ferry.dev/ferry/source"
)

// Options configures a Manager beyond the configuration file.
type Options struct {
	// CacheDir holds the persistent git clones (default: the user cache
	// directory's ferry/git).
	CacheDir string
	// Log receives structured logs (default slog.Default()).
	Log *slog.Logger
	// PullRequests opens promotion pull requests (pull-request mode).
	PullRequests PullRequests
	// Forge lists open pull requests, to plan them; nil plans only those
	// announced by webhooks.
	Forge pullRequestLister
	// Reporter posts commit statuses; nil posts none.
	Reporter *report.Reporter
	// Metrics records Prometheus metrics; nil records none.
	Metrics *report.Metrics
	// ExternalURL is where people reach ferry, for the links in statuses.
	ExternalURL string
}

func (o Options) withDefaults() Options {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.CacheDir == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			dir = os.TempDir()
		}
		o.CacheDir = filepath.Join(dir, "ferry", "git")
	}
	return o
}

// Manager runs the reconcilers of every configured environment.
type Manager struct {
	cfg  *config.Config
	envs map[string]*Reconciler
	// Clients holds a client per environment's cluster, for the CLI.
	clients map[string]client.Client
	stores  map[string]*Store
	planned planned
	pulls   pullRequestLister
	// planEvery is how often open pull requests are polled for plans.
	planEvery time.Duration
}

// NewManager wires every environment of cfg: one persistent clone per
// repository URL, one client per cluster, one state store per cluster.
func NewManager(ctx context.Context, cfg *config.Config, opts Options) (*Manager, error) {
	opts = opts.withDefaults()
	opts.Metrics.Init(envNames(cfg)...)
	m := &Manager{cfg: cfg, envs: map[string]*Reconciler{}, clients: map[string]client.Client{}, stores: map[string]*Store{},
		pulls: opts.Forge, planEvery: time.Minute}
	for _, e := range cfg.Environments {
		m.planEvery = min(m.planEvery, e.Source.Interval)
	}
	renderer := render.NewRenderer(render.DefaultOptions())
	repos := map[string]*source.Repository{}
	clusters := map[config.Cluster]client.Client{}
	var errs []error
	for _, env := range cfg.Environments {
		c, ok := clusters[env.Cluster]
		if !ok {
			var err error
			if c, err = NewClient(env.Cluster); err != nil {
				errs = append(errs, fmt.Errorf("environment %s: %w", env.Name, err))
				continue
			}
			clusters[env.Cluster] = c
		}
		creds, err := credentials(ctx, c, cfg.Namespace, env.Source.Auth)
		if err != nil {
			errs = append(errs, fmt.Errorf("environment %s: %w", env.Name, err))
			continue
		}
		key := env.Source.URL + "\x00" + env.Source.Auth.TokenFile + env.Source.Auth.SSHKeyFile + env.Source.Auth.SecretRef
		repo, ok := repos[key]
		if !ok {
			if repo, err = source.Open(env.Source.URL, creds, opts.CacheDir); err != nil {
				errs = append(errs, fmt.Errorf("environment %s: %w", env.Name, err))
				continue
			}
			repos[key] = repo
		}
		wopts := source.DefaultWatchOptions()
		wopts.Interval = env.Source.Interval
		w := source.NewWatcher(repo, env.Source.Branch, wopts)
		aopts := apply.DefaultOptions()
		aopts.Environment, aopts.DefaultNamespace, aopts.Force = env.Name, env.Namespace, env.Force
		hopts, err := env.Health.Options()
		if err != nil {
			errs = append(errs, fmt.Errorf("environment %s: %w", env.Name, err))
			continue
		}
		store := NewStore(c, cfg.Namespace)
		r := New(Environment{Name: env.Name, Path: env.Source.Path, Interval: env.Source.Interval, Prune: env.PruneEnabled(), Health: hopts,
			Repo: repo, Branch: env.Source.Branch, OnFailure: env.OnFailure, MaxPruneFraction: env.MaxPruneFraction,
			AllowDestructive: env.AllowDestructive},
			w, renderer, apply.New(c, aopts), health.NewChecker(c), store, opts.Log)
		r.notify = notifier{reporter: opts.Reporter, metrics: opts.Metrics, externalURL: opts.ExternalURL, client: c, namespace: cfg.Namespace}
		if repo, err := report.ParseRepo(env.Source.URL); err == nil {
			r.notify.repo, r.notify.hasRepo = repo, true
		}
		m.envs[env.Name], m.clients[env.Name], m.stores[env.Name] = r, c, store
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, env := range cfg.Environments {
		// Fan-out, requires, dependsOn and windows are read by config and
		// the pipeline package; the loop runs them in the next change.
		if env.Promote != nil && (len(env.Promote.To) > 1 || env.Promote.Window != nil) || len(env.Requires) > 0 || len(env.DependsOn) > 0 {
			errs = append(errs, fmt.Errorf("environment %s: promote to several environments, promote.window, requires and dependsOn are not run yet", env.Name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, env := range cfg.Environments {
		if env.Promote != nil {
			m.envs[env.Name].env.Promote = &Promotion{Target: m.envs[env.Promote.To[0]], RequireSoak: env.Promote.RequireSoak,
				PullRequest: env.Promote.Mode == config.PromotePullRequest}
			m.envs[env.Name].pulls = opts.PullRequests
		}
	}
	for _, c := range clusters {
		if err := ensureNamespace(ctx, c, cfg.Namespace); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Run runs every environment until ctx is done.
func (m *Manager) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, 0, len(m.envs))
	var mu sync.Mutex
	for _, r := range m.envs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.Run(ctx); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("environment %s: %w", r.Name(), err))
				mu.Unlock()
			}
		}()
	}
	if m.pulls != nil && postsStatuses(m) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(m.planEvery)
			defer tick.Stop()
			for {
				m.pollPullRequests(ctx, m.pulls)
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Trigger asks env for an immediate poll; false if there is no such environment.
func (m *Manager) Trigger(env string) bool {
	r, ok := m.envs[env]
	if ok {
		r.Trigger()
	}
	return ok
}

// Store returns the state store of env's cluster.
func (m *Manager) Store(env string) (*Store, bool) {
	s, ok := m.stores[env]
	return s, ok
}

// NewClient returns a client for a configured cluster: its kubeconfig and
// context, or, when empty, $KUBECONFIG, ~/.kube/config or the in-cluster
// ServiceAccount. Client-side rate limiting is off; the API server's
// priority and fairness does the limiting.
func NewClient(cl config.Cluster) (client.Client, error) {
	cfg, err := RESTConfig(cl)
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cfg.Host, err)
	}
	return c, nil
}

// RESTConfig loads the REST config of a configured cluster.
func RESTConfig(cl config.Cluster) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if cl.Kubeconfig != "" {
		rules.ExplicitPath = cl.Kubeconfig
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: cl.Context}).ClientConfig()
	if err != nil {
		if cl.Kubeconfig == "" {
			if ic, ierr := rest.InClusterConfig(); ierr == nil {
				cfg, err = ic, nil
			}
		}
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %q: %w (set cluster.kubeconfig, $KUBECONFIG, or run in a cluster)", cl.Kubeconfig, err)
		}
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = -1, -1
	cfg.UserAgent = "ferry"
	return cfg, nil
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

func ensureNamespace(ctx context.Context, c client.Client, name string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) && !apierrors.IsForbidden(err) {
		return fmt.Errorf("ferry namespace %s: %w", name, err)
	}
	return nil
}

func envNames(cfg *config.Config) []string {
	out := make([]string, 0, len(cfg.Environments))
	for _, e := range cfg.Environments {
		out = append(out, e.Name)
	}
	return out
}

// postsStatuses reports whether any environment posts statuses, which plans need.
func postsStatuses(m *Manager) bool {
	for _, r := range m.envs {
		if r.notify.reporter != nil {
			return true
		}
	}
	return false
}

// pullRequestLister lists the open pull requests into a branch.
type pullRequestLister interface {
	OpenPullRequests(ctx context.Context, repo report.Repo, base string) ([]report.PullRequest, error)
}
