package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"

	"ferry.dev/ferry/cluster"
	"ferry.dev/ferry/config"
	"ferry.dev/ferry/forge"
	"ferry.dev/ferry/lease"
	"ferry.dev/ferry/reconciler"
	"ferry.dev/ferry/server"
)

func newRunCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "run",
		Short: "Run the reconciler for every configured environment",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			log := newLogger(cfg.Log.Level)
			if limit := setMemoryLimit(cgroupMemoryFiles); limit > 0 {
				log.Info("soft memory limit from the container's", "bytes", limit)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			f, err := newForge(cfg, log)
			if err != nil {
				return err
			}
			m, err := reconciler.NewManager(ctx, cfg, f.managerOptions(cfg, log))
			if err != nil {
				return err
			}
			log.Info("ferry started", "environments", len(cfg.Environments), "addr", cfg.Server.Addr)
			err = serve(ctx, cfg, m, f, log)
			log.Info("ferry stopped")
			return err
		},
	}
}

// serve runs the manager, the status reporter and ferry's HTTP endpoints
// (badges, status API and page, webhooks, metrics, probes) until ctx is done.
func serve(ctx context.Context, cfg *config.Config, m *reconciler.Manager, f *link, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	opts := server.DefaultServerOptions()
	opts.WebhookSecret, opts.Registry, opts.Log = f.secret, f.registry, log
	opts.Version = clientVersion()
	// Ready only while the API server answers: a replica cut off from it
	// takes no webhooks it could not act on.
	opts.Ready = func() bool {
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		err := m.Ready(rctx)
		if err != nil {
			log.Warn("not ready", "error", err)
		}
		return err == nil
	}
	opts.OnPullRequest = func(repo forge.Repo, number int, head, base string) {
		m.PlanPullRequest(ctx, repo, number, head, base) // queued: returns at once
	}
	srv := &http.Server{Addr: cfg.Server.Addr, Handler: server.NewServer(m, opts), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "addr", cfg.Server.Addr, "error", err)
			cancel()
		}
	}()
	if f.reporter != nil {
		go f.reporter.Run(ctx)
	}
	err := runShared(ctx, cfg, m, log)
	shutdown, stop := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer stop()
	if f.reporter != nil {
		_ = f.reporter.Flush(shutdown)
	}
	_ = srv.Shutdown(shutdown)
	return err
}

// link is ferry's link to the forge: the status reporter, the webhook
// secret and the metrics registry.
type link struct {
	reporter *forge.Reporter
	provider forge.Provider
	secret   []byte
	registry *prometheus.Registry
	metrics  *server.Metrics
}

// newForge builds the reporter from the configuration's report section.
func newForge(cfg *config.Config, log *slog.Logger) (*link, error) {
	f := &link{registry: prometheus.NewRegistry()}
	f.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "ferry_api_requests_total",
			Help: "Requests ferry made to API servers (a watch counts once, when it starts)."},
			func() float64 { return float64(cluster.Requests.Load()) }))
	var err error
	if f.metrics, err = server.NewMetrics(f.registry); err != nil {
		return nil, err
	}
	rc := cfg.Report
	if rc.WebhookSecretFile != "" {
		if f.secret, err = readSecret(rc.WebhookSecretFile); err != nil {
			return nil, fmt.Errorf("report.webhookSecretFile: %w", err)
		}
	}
	if rc.Provider == "" {
		return f, nil
	}
	var token string
	if rc.TokenFile != "" {
		if token, err = readSecretString(rc.TokenFile); err != nil {
			return nil, fmt.Errorf("report.tokenFile: %w", err)
		}
	}
	switch rc.Provider {
	case config.ProviderGitHub:
		f.provider, err = forge.NewGitHub(rc.URL, token)
	case config.ProviderGitLab:
		f.provider, err = forge.NewGitLab(rc.URL, token)
	case config.ProviderGitea:
		f.provider, err = forge.NewGitea(rc.URL, token)
	case config.ProviderWebhook:
		f.provider = forge.NewWebhook(rc.URL, f.secret)
	}
	if err != nil {
		return nil, fmt.Errorf("report.provider %s: %w", rc.Provider, err)
	}
	ropts := forge.DefaultReporterOptions()
	ropts.Log = log
	f.reporter = forge.NewReporter(f.provider, ropts)
	return f, nil
}

// managerOptions passes the forge to the reconcilers.
func (f *link) managerOptions(cfg *config.Config, log *slog.Logger) reconciler.Options {
	o := reconciler.Options{Log: log, Reporter: f.reporter, Metrics: f.metrics, ExternalURL: cfg.Server.ExternalURL}
	if f.provider != nil {
		o.Forge = f.provider
	}
	if p, ok := f.provider.(forge.PullRequests); ok {
		o.PullRequests = p
	}
	return o
}

func readSecret(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return bytes.TrimSpace(data), nil
}

func readSecretString(path string) (string, error) {
	b, err := readSecret(path)
	return string(b), err
}

// runShared runs the manager. When ferry runs as a pod (POD_NAME set, as
// the install manifests do), the replicas share the environments: each
// environment runs on the replica holding its Lease ferry-env-<name> in
// ferry's namespace, and a SIGTERM stops this replica's environments and
// releases their Leases at once. Elsewhere every environment runs here.
func runShared(ctx context.Context, cfg *config.Config, m *reconciler.Manager, log *slog.Logger) error {
	identity := os.Getenv("POD_NAME")
	if identity == "" {
		return m.Run(ctx)
	}
	rc, err := cluster.RESTConfig(config.Cluster{})
	if err != nil {
		return err
	}
	clients, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("leases: %w", err)
	}
	opts := lease.DefaultOptions()
	opts.Namespace, opts.Identity, opts.Log = cfg.Namespace, identity, log
	pool := lease.New(clients, m.Environments(), opts)
	log.Info("sharing environments with the other replicas", "identity", identity, "namespace", cfg.Namespace)
	return m.RunShared(ctx, pool.Run)
}
