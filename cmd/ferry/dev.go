package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"ferry.dev/ferry/config"
	"ferry.dev/ferry/reconciler"
	"ferry.dev/ferry/sandbox"
	"ferry.dev/ferry/state"
)

func newDevCmd() *cobra.Command {
	var addr string
	var noStory, exitAfter bool
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a local sandbox: a simulated cluster, a local forge, ferry with two environments, and a scripted story",
		Long: `ferry dev starts, on 127.0.0.1 only, a kwok control plane and a Gitea forge
from the tools/ toolchain (make tools), a sample application repository with
branches main (staging) and production, and ferry reconciling both. It then
plays a story: a good change is promoted, a bad change is reverted. It stays
up until Ctrl-C, which tears everything down.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return runDev(ctx, cmd.OutOrStdout(), addr, !noStory, exitAfter)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:9090", "address of ferry's status page, badges and webhooks")
	cmd.Flags().BoolVar(&noStory, "no-story", false, "set everything up and wait, without the scripted changes")
	cmd.Flags().BoolVar(&exitAfter, "exit-after-story", false, "tear down and exit after the story instead of waiting for Ctrl-C")
	return cmd
}

// devRun is what ferry dev runs, torn down by close.
type devRun struct {
	out     io.Writer
	cluster *sandbox.Cluster
	forge   *sandbox.Gitea
	sample  *sandbox.Sample
	closers []func()
}

func (s *devRun) say(format string, args ...any) {
	fmt.Fprintf(s.out, "ferry dev │ "+format+"\n", args...)
}

func (s *devRun) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}

func runDev(ctx context.Context, out io.Writer, addr string, story, exitAfter bool) error {
	s := &devRun{out: out}
	defer s.close()
	if _, err := sandbox.Reap(ctx); err != nil {
		s.say("reaping earlier sandboxes: %v", err)
	}
	work, err := os.MkdirTemp("", "ferry-dev-")
	if err != nil {
		return err
	}
	s.closers = append(s.closers, func() { _ = os.RemoveAll(work) })
	if err := s.start(ctx); err != nil {
		return err
	}
	if s.sample, err = sandbox.SeedSample(ctx, s.cluster, s.forge, work); err != nil {
		return err
	}
	s.say("repository %s: main and production at %s (%s)", sandbox.SampleRepo, s.sample.Commit[:7], s.forge.CloneURL(sandbox.SampleRepo))
	s.say("configuration: %s", s.sample.ConfigPath)
	cfg, err := config.Load(s.sample.ConfigPath, nil)
	if err != nil {
		return err
	}
	cfg.Server.Addr = addr
	log := slog.New(slog.NewJSONHandler(logFile(s, work), nil))
	f, err := newForge(cfg, log)
	if err != nil {
		return err
	}
	mopts := f.managerOptions(cfg, log)
	mopts.CacheDir = filepath.Join(work, "cache")
	m, err := reconciler.NewManager(ctx, cfg, mopts)
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- serve(runCtx, cfg, m, f, log) }()
	s.closers = append(s.closers, func() { cancel(); <-done })
	s.say("ferry is running: staging follows main, production follows production")
	s.say("status page: http://%s/environments/staging   badges: http://%s/badge/staging.svg", addr, addr)
	if story {
		st := &sandbox.Story{Sample: s.sample, Observe: observe(m), Out: out}
		if err := st.Play(ctx); err != nil {
			return err
		}
	}
	if exitAfter {
		s.say("story done; tearing down")
		return nil
	}
	s.say("clone the sandbox and push your own commits:")
	s.say("  git -c http.extraHeader=\"Authorization: %s\" clone %s", s.forge.BasicAuthHeader(), s.forge.CloneURL(sandbox.SampleRepo))
	s.say("Gitea: %s (user %s, password %s). Ctrl-C tears everything down.", s.forge.URL, s.forge.User, s.forge.Password)
	<-ctx.Done()
	s.say("tearing down")
	return nil
}

// observe reports, from ferry's state store, the phase of an environment
// while it works on a commit, and its verdict and decision once it decided.
func observe(m *reconciler.Manager) sandbox.Observer {
	return func(ctx context.Context, env, commit string) (string, bool, error) {
		store, ok := m.Store(env)
		if !ok {
			return "", false, fmt.Errorf("environment %s: not configured", env)
		}
		st, err := store.Load(ctx, env)
		if err != nil {
			return "", false, err
		}
		if v, ok := st.VerdictFor(commit); ok && !v.Action.IsZero() {
			line := fmt.Sprintf("  %s @ %s: %s", env, state.Short(commit), v.Outcome)
			if v.Reason != "" && v.Outcome != state.OutcomeHealthy {
				line += " (" + v.Reason + ")"
			}
			if v.Action.Kind != state.ActionNone {
				line += " → " + v.Action.String()
			}
			return line, true, nil
		}
		if st.Target != nil && st.Target.Commit == commit {
			return fmt.Sprintf("  %s @ %s: %s %s", env, state.Short(commit), st.Phase, st.Message), false, nil
		}
		return "", false, nil
	}
}

func logFile(s *devRun, work string) io.Writer {
	f, err := os.Create(filepath.Join(work, "ferry.log"))
	if err != nil {
		return io.Discard
	}
	s.say("ferry's log: %s", f.Name())
	s.closers = append(s.closers, func() { _ = f.Close() })
	return f
}

func (s *devRun) start(ctx context.Context) error {
	if _, err := sandbox.Tools(); err != nil {
		return fmt.Errorf("%w (make demo builds it)", err)
	}
	start := time.Now()
	c, err := sandbox.StartCluster(ctx, sandbox.DefaultClusterOptions())
	if err != nil {
		return err
	}
	s.cluster = c
	s.closers = append(s.closers, func() { _ = c.Stop(context.WithoutCancel(ctx)) })
	s.say("cluster %s up in %s (kubeconfig %s)", c.Name, time.Since(start).Round(time.Millisecond), c.Kubeconfig)
	start = time.Now()
	g, err := sandbox.StartGitea(ctx)
	if err != nil {
		return err
	}
	s.forge = g
	s.closers = append(s.closers, func() { _ = g.Stop(context.WithoutCancel(ctx)) })
	s.say("Gitea up at %s in %s", g.URL, time.Since(start).Round(time.Millisecond))
	return nil
}
