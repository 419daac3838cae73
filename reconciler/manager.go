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

// Manager runs the reconcilers of the configured environments: all of them
// (Run), or those this replica holds while replicas share them (RunShared).
// Every replica wires every environment, so it can read any environment's
// state, serve its page and badges, and ask its holder to reconcile.
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
	log    *slog.Logger
	// watches see reconcile requests on the state ConfigMaps, one per
	// cluster holding state.
	watches []*requestWatch

	mu sync.Mutex
	// local are the environments whose loop runs in this process.
	local map[string]*localEnv
	// handed is the newest reconcile request handed to each loop.
	handed map[string]string
}

// localEnv is an environment whose loop runs in this process.
type localEnv struct {
	// ctx is its run's context: it ends when the run ends (the lease is
	// lost or handed back), and with it the plans of its pull requests.
	ctx context.Context
	// plans asks for a poll of its open pull requests now.
	plans chan struct{}
}

// NewManager wires every environment of cfg: one persistent clone per
// repository URL, one client and state store per cluster, and links each
// environment to the one it promotes into.
func NewManager(ctx context.Context, cfg *config.Config, opts Options) (*Manager, error) {
	opts.Metrics.Init(envNames(cfg)...)
	opts = opts.withDefaults()
	m := &Manager{cfg: cfg, envs: map[string]*Reconciler{}, pulls: opts.Forge, planEvery: time.Minute,
		plans: newPlanQueue(planWorkers, planWaiting, planRemember, planDeadline), log: opts.Log,
		local: map[string]*localEnv{}, handed: map[string]string{}}
	if t, ok := opts.Forge.(forge.Trust); ok {
		m.trust = t
	}
	w := newWiring(cfg, opts)
	m.wiring = w
	renderer := render.NewRenderer(render.DefaultOptions())
	passes := newPassSlots(0)
	var errs []error
	for _, env := range cfg.Environments {
		m.planEvery = min(m.planEvery, env.Source.Interval)
		r, err := w.reconciler(ctx, env.Name, renderer)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		r.wakePeer, r.passes = m.wake, passes
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
	watches, err := newRequestWatches(cfg, m.offer)
	if err != nil {
		return nil, err
	}
	m.watches = watches
	// The stores answer from what they last read or wrote while the watch
	// shows nobody else wrote since: a converged pass reads no state.
	for _, env := range cfg.Environments {
		for _, w := range watches {
			if w.cluster == env.Cluster {
				m.envs[env.Name].store.Follow(w.resourceVersion)
			}
		}
	}
	return m, nil
}

// Run runs every environment in this process until ctx is done.
func (m *Manager) Run(ctx context.Context) error {
	return m.RunShared(ctx, func(ctx context.Context, work func(context.Context, string)) error {
		var wg sync.WaitGroup
		for name := range m.envs {
			wg.Go(func() { work(ctx, name) })
		}
		wg.Wait()
		return nil
	})
}

// RunShared runs the environments this replica holds until ctx is done.
// hold (lease.Pool.Run in `ferry run`) calls work(ctx, env) while this
// replica holds env, and ends work's context when it no longer does; work
// returns once the environment's loop stopped. Meanwhile the state
// ConfigMaps are watched, so a reconcile request recorded by any replica or
// command reaches the environment's loop at once.
func (m *Manager) RunShared(ctx context.Context, hold func(ctx context.Context, work func(context.Context, string)) error) error {
	m.wiring.startWatches(ctx)
	for _, w := range m.watches {
		w.start(ctx)
	}
	var mu sync.Mutex
	var errs []error
	err := hold(ctx, func(ctx context.Context, name string) {
		if err := m.runEnv(ctx, name); err != nil {
			m.log.Error("environment stopped", "environment", name, "error", err)
			mu.Lock()
			errs = append(errs, fmt.Errorf("environment %s: %w", name, err))
			mu.Unlock()
		}
	})
	m.plans.wait() // the plans end with their environment's run
	for _, w := range m.watches {
		w.stop()
	}
	mu.Lock()
	defer mu.Unlock()
	return errors.Join(append(errs, err)...)
}

// runEnv runs one environment's loop, and the polls of its open pull
// requests, until ctx is done.
func (m *Manager) runEnv(ctx context.Context, name string) error {
	r, ok := m.envs[name]
	if !ok {
		return fmt.Errorf("environment %q is not configured", name)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	le := &localEnv{ctx: ctx, plans: make(chan struct{}, 1)}
	m.mu.Lock()
	m.local[name], m.handed[name] = le, ""
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.local, name)
		m.mu.Unlock()
	}()
	// A request recorded while no replica ran the environment (or before
	// this one took it over) is handed to the loop now.
	if st, err := r.store.Load(ctx, name); err == nil {
		if at, err := r.store.Requested(ctx, name); err == nil {
			m.offer(name, at, st.Handled)
		}
	}
	var wg sync.WaitGroup
	if m.pulls != nil && r.notify.reporter != nil && r.notify.hasRepo {
		wg.Go(func() { m.pollPullRequests(ctx, r, le.plans) })
	}
	err := r.Run(ctx)
	cancel()
	wg.Wait()
	return err
}

// offer hands a reconcile request (the RequestedAt value at, of which the
// state says handled was the last one handled) to env's loop, once, if
// the loop runs here; pull requests into its branch are polled too.
func (m *Manager) offer(env, at, handled string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	le, ok := m.local[env]
	if !ok || at == "" || at <= handled || at == m.handed[env] {
		return
	}
	m.handed[env] = at
	m.envs[env].request(at)
	select {
	case le.plans <- struct{}{}:
	default:
	}
}

// isLocal returns env's run when its loop runs in this process.
func (m *Manager) isLocal(env string) (*localEnv, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	le, ok := m.local[env]
	return le, ok
}

// Trigger asks env for an immediate poll of its branch and a reconcile:
// directly when its loop runs in this process, else through its state
// ConfigMap, which the replica holding env watches. It returns false if
// there is no such environment or the request could not be recorded.
func (m *Manager) Trigger(ctx context.Context, env string) bool {
	r, ok := m.envs[env]
	if !ok {
		return false
	}
	if _, local := m.isLocal(env); local {
		r.Trigger()
		return true
	}
	if _, err := r.store.Request(ctx, env, time.Now()); err != nil {
		m.log.Error("request a reconcile from the replica holding the environment", "environment", env, "error", err)
		return false
	}
	return true
}

// wake is how a loop wakes another environment that may wait on it (poll
// false: reconcile the current revision again) or whose branch it pushed
// to (poll true): directly when that environment runs in this process, else
// through a reconcile request on its state ConfigMap.
func (m *Manager) wake(ctx context.Context, env string, poll bool) {
	r, ok := m.envs[env]
	if !ok {
		return
	}
	if _, local := m.isLocal(env); local {
		if poll {
			r.watcher.Trigger()
		} else {
			r.Poke()
		}
		return
	}
	if _, err := r.store.Request(ctx, env, time.Now()); err != nil {
		m.log.Error("wake the replica holding the environment", "environment", env, "error", err)
	}
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

// pullRequestLister lists the open pull requests into a branch.
type pullRequestLister interface {
	OpenPullRequests(ctx context.Context, repo forge.Repo, base string) ([]forge.PullRequest, error)
}
