package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"code.gitea.io/sdk/gitea"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/config"
	"ferry.dev/ferry/reconciler"
	"ferry.dev/ferry/sandbox"
	"ferry.dev/ferry/server"
	"ferry.dev/ferry/state"
)

func mttrFiles(annotation string) map[string]string {
	return map[string]string{
		"envs/staging/kustomization.yaml": "resources:\n  - deployment.yaml\n",
		"envs/staging/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}` + annotation + `
    spec:
      containers:
        - name: web
          image: registry.invalid/web:v1
`,
	}
}

// BenchmarkMTTR measures the time from pushing a commit whose pods
// crash-loop to (1) ferry's revert commit in git and (2) the cluster back
// on the last healthy objects with a healthy verdict on the revert.
func BenchmarkMTTR(b *testing.B) {
	needCluster(b)
	forge := needForge(b)
	var toRevert, toRecovered []time.Duration
	for b.Loop() {
		for round := range rounds {
			a, c := mttrRound(b, forge, round)
			toRevert, toRecovered = append(toRevert, a), append(toRecovered, c)
		}
	}
	fmt.Printf("\nMTTR (bad commit pushed → ...), median of %d: revert commit in git %s, cluster back on the last healthy revision %s\n",
		rounds, median(toRevert).Round(time.Millisecond), median(toRecovered).Round(time.Millisecond))
	b.ReportMetric(median(toRevert).Seconds(), "s-to-revert-commit")
	b.ReportMetric(median(toRecovered).Seconds(), "s-to-recovered")
}

func mttrRound(b *testing.B, forge *sandbox.Gitea, round int) (toRevert, toRecovered time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := startBenchEnv(ctx, b, forge, fmt.Sprintf("mttr-%d", round), "1s")
	defer e.stop()
	wc, store, ns, good, c := e.wc, e.store, e.ns, e.first, newClient(b)
	wait := e.wait
	verdict := e.verdict
	wait("healthy first deploy", func() bool { v, ok := verdict(good); return ok && v.Outcome == state.OutcomeHealthy })

	start := time.Now()
	bad, err := wc.CommitAndPush(ctx, mttrFiles("\n      annotations: {"+sandbox.FailAnnotation+": "+sandbox.FailCrashLoop+"}"), "Deploy a crashing web")
	if err != nil {
		b.Fatal(err)
	}
	var revert string
	wait("revert commit in git", func() bool {
		v, ok := verdict(bad)
		if ok && strings.HasPrefix(v.Action.String(), "reverted by ") {
			revert = strings.TrimPrefix(v.Action.String(), "reverted by ")
			return true
		}
		return false
	})
	toRevert = time.Since(start)
	wait("cluster back on the last healthy revision", func() bool {
		st, err := store.Load(ctx, "staging")
		if err != nil || st.LastHealthy == nil || !strings.HasPrefix(st.LastHealthy.Commit, revert) {
			return false
		}
		d := &appsv1.Deployment{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, d); err != nil {
			return false
		}
		return d.Spec.Template.Annotations[sandbox.FailAnnotation] == "" && d.Status.UpdatedReplicas == 3 && d.Status.AvailableReplicas == 3 && d.Status.ReadyReplicas == 3
	})
	return toRevert, time.Since(start)
}

// benchEnv is one environment of a benchmark: a repository on the forge
// and ferry reconciling it in this process, with its HTTP server.
type benchEnv struct {
	wc      *sandbox.Clone
	store   *state.Store
	ns      string
	first   string
	addr    string
	stop    func()
	wait    func(what string, cond func() bool)
	verdict func(commit string) (state.Verdict, bool)
}

func startBenchEnv(ctx context.Context, b *testing.B, forge *sandbox.Gitea, name, interval string) *benchEnv {
	ns, stateNS := newNamespace(b, "bench-env"), newNamespace(b, "bench-state")
	repo := name + "-" + ns
	if _, err := forge.CreateRepo(repo); err != nil {
		b.Fatal(err)
	}
	wc, err := forge.Clone(ctx, repo, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	first, err := wc.CommitAndPush(ctx, mttrFiles(""), "Deploy web")
	if err != nil {
		b.Fatal(err)
	}
	tokenFile := filepath.Join(b.TempDir(), "token")
	_ = os.WriteFile(tokenFile, []byte(forge.Token), 0o600)
	cfg, err := config.Parse(fmt.Appendf(nil, `namespace: %s
environments:
  - name: staging
    source: {url: %s, branch: main, path: envs/staging, interval: %s, auth: {tokenFile: %s}}
    cluster: {kubeconfig: %s}
    namespace: %s
    health: {timeout: 2m, interval: 250ms}
    onFailure: revert
`, stateNS, forge.CloneURL(repo), interval, tokenFile, cluster.Kubeconfig, ns))
	if err != nil {
		b.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	m, err := reconciler.NewManager(runCtx, cfg, reconciler.Options{CacheDir: b.TempDir(), Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	sopts := server.DefaultServerOptions()
	sopts.WebhookSecret, sopts.Log = []byte("bench-secret"), slog.New(slog.DiscardHandler)
	srv := &http.Server{Handler: server.NewServer(m, sopts), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	done := make(chan struct{})
	go func() { defer close(done); _ = m.Run(runCtx) }()
	store, _ := m.Store("staging")
	e := &benchEnv{wc: wc, store: store, ns: ns, first: first, addr: l.Addr().String(),
		stop: func() { cancel(); <-done; _ = srv.Close() }}
	e.wait = func(what string, cond func() bool) {
		deadline := time.Now().Add(2 * time.Minute)
		for !cond() {
			if time.Now().After(deadline) {
				b.Fatalf("%s: %s not reached", name, what)
			}
			// why a sleep: the poll interval of this deadline wait; a
			// ticker would do the same, and 20ms is the resolution of the
			// times measured.
			time.Sleep(20 * time.Millisecond)
		}
	}
	e.verdict = func(commit string) (state.Verdict, bool) {
		st, err := store.Load(ctx, "staging")
		if err != nil {
			return state.Verdict{}, false
		}
		return st.VerdictFor(commit)
	}
	return e
}

// BenchmarkWebhookLatency measures, with polling at one hour, the time
// from a push returning to ferry reconciling the pushed commit, through
// Gitea's signed webhook.
func BenchmarkWebhookLatency(b *testing.B) {
	needCluster(b)
	forge := needForge(b)
	ctx := context.Background()
	e := startBenchEnv(ctx, b, forge, "hook", "1h")
	defer e.stop()
	repo := "hook-" + e.ns
	if _, _, err := forge.Client.CreateRepoHook(forge.User, repo, gitea.CreateHookOption{
		Type: gitea.HookTypeGitea, Active: true, Events: []string{"push"},
		Config: map[string]string{"url": "http://" + e.addr + "/hooks/gitea", "content_type": "json", "secret": "bench-secret"},
	}); err != nil {
		b.Fatal(err)
	}
	e.wait("first deploy", func() bool { _, ok := e.verdict(e.first); return ok })
	var lat []time.Duration
	for b.Loop() {
		for i := range 5 {
			files := mttrFiles("")
			files["envs/staging/deployment.yaml"] = strings.Replace(files["envs/staging/deployment.yaml"], "web:v1", fmt.Sprintf("web:v1.%d", i+1), 1)
			sha, err := e.wc.CommitAndPush(ctx, files, fmt.Sprintf("Deploy v1.%d", i+1))
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			e.wait("reconcile of the pushed commit", func() bool {
				st, err := e.store.Load(ctx, "staging")
				return err == nil && st.Target != nil && st.Target.Commit == sha
			})
			lat = append(lat, time.Since(start))
			e.wait("verdict", func() bool { _, ok := e.verdict(sha); return ok })
		}
	}
	fmt.Printf("\nwebhook push → reconcile of the pushed commit (poll interval 1h), median of %d: %s (max %s)\n",
		len(lat), median(lat).Round(time.Millisecond), slices.Max(lat).Round(time.Millisecond))
	b.ReportMetric(median(lat).Seconds(), "s-push-to-reconcile")
}
