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

	"ferry.dev/ferry/config"
	"ferry.dev/ferry/forge"
	"ferry.dev/ferry/render"
	"ferry.dev/ferry/server"
	"ferry.dev/ferry/state"
)

// Options configures a Manager beyond the configuration file.
type Options struct {
	// CacheDir holds the persistent git clones (default: the user cache
	// directory's ferry/git).
	CacheDir string
	// Log receives structured logs (default slog.Default()).
	Log *slog.Logger
	// PullRequests opens promotion pull requests (pull-request mode).
	PullRequests forge.PullRequests
	// Forge lists open pull requests, to plan them; nil plans only those
	// announced by webhooks.
	Forge pullRequestLister
	// Reporter posts commit statuses; nil posts none.
	Reporter *forge.Reporter
	// Metrics records Prometheus metrics; nil records none.
	Metrics *server.Metrics
	// ExternalURL is where people reach ferry, for the links in statuses.
	ExternalURL string
	// Now is the clock of decisions (promotion windows, verdict times);
	// nil is time.Now. Tests move it to open and close windows.
	Now func() time.Time
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
	cfg   *config.Config
	envs  map[string]*Reconciler
	plans *planQueue
	trust forge.Trust
	pulls pullRequestLister
	// planEvery is how often open pull requests are polled for plans.
	planEvery time.Duration
	// wiring holds the watches, started by Run.
	wiring *wiring
}

// NewManager wires every environment of cfg: one persistent clone per
// repository URL, one client and state store per cluster, and links each
// environment to the one it promotes into.
func NewManager(ctx context.Context, cfg *config.Config, opts Options) (*Manager, error) {
	opts.Metrics.Init(envNames(cfg)...)
	m := &Manager{cfg: cfg, envs: map[string]*Reconciler{}, pulls: opts.Forge, planEvery: time.Minute,
		plans: newPlanQueue(planWorkers, planWaiting, planRemember, planDeadline)}
	if t, ok := opts.Forge.(forge.Trust); ok {
		m.trust = t
	}
	w := newWiring(cfg, opts)
	m.wiring = w
	renderer := render.NewRenderer(render.DefaultOptions())
	var errs []error
	for _, env := range cfg.Environments {
		m.planEvery = min(m.planEvery, env.Source.Interval)
		r, err := w.reconciler(ctx, env.Name, renderer)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		m.envs[env.Name] = r
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	graph := cfg.Graph()
	for _, env := range cfg.Environments {
		r := m.envs[env.Name]
		r.graph, r.peers = graph, m.envs
		if opts.Now != nil {
			r.now = opts.Now
		}
		for _, d := range env.DependsOn {
			r.deps = append(r.deps, m.envs[d])
		}
		if env.Promote == nil {
			continue
		}
		window, err := env.Promote.Window.Parse()
		if err != nil {
			return nil, fmt.Errorf("environment %s: promote.window: %w", env.Name, err)
		}
		p := &Promotion{RequireSoak: env.Promote.RequireSoak, PullRequest: env.Promote.Mode == config.PromotePullRequest, Window: window}
		for _, to := range env.Promote.To {
			p.Targets = append(p.Targets, m.envs[to])
		}
		r.env.Promote, r.pulls = p, opts.PullRequests
	}
	if err := w.ensureNamespaces(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

// Run runs every environment until ctx is done.
func (m *Manager) Run(ctx context.Context) error {
	m.wiring.startWatches(ctx)
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
	m.plans.wait() // the plans end with ctx
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
func (m *Manager) Store(env string) (*state.Store, bool) {
	r, ok := m.envs[env]
	if !ok {
		return nil, false
	}
	return r.store, true
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
	OpenPullRequests(ctx context.Context, repo forge.Repo, base string) ([]forge.PullRequest, error)
}
