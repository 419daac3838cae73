package main

import (
	"context"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"ferry.dev/ferry/config"
	"ferry.dev/ferry/e2e/harness"
	"ferry.dev/ferry/reconciler"
)

//go:embed devapp
var devApp embed.FS

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

// sandbox is what ferry dev runs, torn down by close.
type sandbox struct {
	out     io.Writer
	cluster *harness.Cluster
	forge   *harness.Gitea
	clone   *harness.Clone
	work    string
	closers []func()
}

func (s *sandbox) say(format string, args ...any) {
	fmt.Fprintf(s.out, "ferry dev │ "+format+"\n", args...)
}

func (s *sandbox) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}

func runDev(ctx context.Context, out io.Writer, addr string, story, exitAfter bool) error {
	s := &sandbox{out: out}
	defer s.close()
	if _, err := harness.Reap(ctx); err != nil {
		s.say("reaping earlier sandboxes: %v", err)
	}
	work, err := os.MkdirTemp("", "ferry-dev-")
	if err != nil {
		return err
	}
	s.work = work
	s.closers = append(s.closers, func() { _ = os.RemoveAll(work) })
	if err := s.start(ctx); err != nil {
		return err
	}
	cfgPath, err := s.seed(ctx)
	if err != nil {
		return err
	}
	cfg, err := config.Load(cfgPath, nil)
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
	d := &devStory{s: s, m: m}
	if story {
		if err := d.play(ctx); err != nil {
			return err
		}
	}
	if exitAfter {
		s.say("story done; tearing down")
		return nil
	}
	s.say("clone the sandbox and push your own commits:")
	s.say("  git -c http.extraHeader=\"Authorization: %s\" clone %s", s.forge.BasicAuthHeader(), s.forge.CloneURL("shop"))
	s.say("Gitea: %s (user %s, password %s). Ctrl-C tears everything down.", s.forge.URL, s.forge.User, s.forge.Password)
	<-ctx.Done()
	s.say("tearing down")
	return nil
}

func logFile(s *sandbox, work string) io.Writer {
	f, err := os.Create(filepath.Join(work, "ferry.log"))
	if err != nil {
		return io.Discard
	}
	s.say("ferry's log: %s", f.Name())
	s.closers = append(s.closers, func() { _ = f.Close() })
	return f
}

func (s *sandbox) start(ctx context.Context) error {
	if _, err := harness.Tools(); err != nil {
		return fmt.Errorf("%w (make demo builds it)", err)
	}
	start := time.Now()
	c, err := harness.StartCluster(ctx, harness.DefaultClusterOptions())
	if err != nil {
		return err
	}
	s.cluster = c
	s.closers = append(s.closers, func() { _ = c.Stop(context.WithoutCancel(ctx)) })
	s.say("cluster %s up in %s (kubeconfig %s)", c.Name, time.Since(start).Round(time.Millisecond), c.Kubeconfig)
	start = time.Now()
	g, err := harness.StartGitea(ctx)
	if err != nil {
		return err
	}
	s.forge = g
	s.closers = append(s.closers, func() { _ = g.Stop(context.WithoutCancel(ctx)) })
	s.say("Gitea up at %s in %s", g.URL, time.Since(start).Round(time.Millisecond))
	return nil
}

// seed creates the sample repository, its branches and namespaces, and
// writes ferry's configuration.
func (s *sandbox) seed(ctx context.Context) (string, error) {
	if _, err := s.forge.CreateRepo("shop"); err != nil {
		return "", err
	}
	clone, err := s.forge.Clone(ctx, "shop", filepath.Join(s.work, "shop"))
	if err != nil {
		return "", err
	}
	s.clone = clone
	files := map[string]string{}
	err = fs.WalkDir(devApp, "devapp", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := devApp.ReadFile(p)
		files[strings.TrimPrefix(p, "devapp/")] = string(data)
		return err
	})
	if err != nil {
		return "", err
	}
	sha, err := clone.CommitAndPush(ctx, files, "Add the shop")
	if err != nil {
		return "", err
	}
	if err := clone.Push(ctx, "main:production"); err != nil {
		return "", err
	}
	s.say("repository shop: main and production at %s (%s)", sha[:7], s.forge.CloneURL("shop"))
	for _, ns := range []string{"staging", "production"} {
		obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
		if _, err := s.cluster.Client.CoreV1().Namespaces().Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			return "", fmt.Errorf("namespace %s: %w", ns, err)
		}
	}
	tokenFile := filepath.Join(s.work, "git-token")
	if err := os.WriteFile(tokenFile, []byte(s.forge.Token), 0o600); err != nil {
		return "", err
	}
	cfg := fmt.Sprintf(`namespace: ferry-system
environments:
  - name: staging
    source: {url: %[1]s, branch: main, path: envs/staging, interval: 2s, auth: {tokenFile: %[2]s}}
    cluster: {kubeconfig: %[3]s}
    namespace: staging
    health: {timeout: 1m, interval: 500ms, soak: 3s}
    onFailure: revert
    promote: {to: production, mode: push}
  - name: production
    source: {url: %[1]s, branch: production, path: envs/production, interval: 2s, auth: {tokenFile: %[2]s}}
    cluster: {kubeconfig: %[3]s}
    namespace: production
    health: {timeout: 1m, interval: 500ms, soak: 3s}
    onFailure: revert
`, s.forge.CloneURL("shop"), tokenFile, s.cluster.Kubeconfig)
	path := filepath.Join(s.work, "ferry.yaml")
	s.say("configuration: %s", path)
	return path, os.WriteFile(path, []byte(cfg), 0o600)
}
