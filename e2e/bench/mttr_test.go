package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/config"
	"ferry.dev/ferry/e2e/harness"
	"ferry.dev/ferry/reconciler"
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
	ctx := context.Background()
	forge, err := harness.StartGitea(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = forge.Stop(context.Background()) }()
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

func mttrRound(b *testing.B, forge *harness.Gitea, round int) (toRevert, toRecovered time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns, stateNS := newNamespace(b, "mttr"), newNamespace(b, "mttr-state")
	repo := fmt.Sprintf("mttr-%d-%s", round, ns)
	if _, err := forge.CreateRepo(repo); err != nil {
		b.Fatal(err)
	}
	wc, err := forge.Clone(ctx, repo, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	good, err := wc.CommitAndPush(ctx, mttrFiles(""), "Deploy web")
	if err != nil {
		b.Fatal(err)
	}
	tokenFile := filepath.Join(b.TempDir(), "token")
	_ = os.WriteFile(tokenFile, []byte(forge.Token), 0o600)
	cfg, err := config.Parse(fmt.Appendf(nil, `namespace: %s
environments:
  - name: staging
    source: {url: %s, branch: main, path: envs/staging, interval: 1s, auth: {tokenFile: %s}}
    cluster: {kubeconfig: %s}
    namespace: %s
    health: {timeout: 2m, interval: 250ms}
    onFailure: revert
`, stateNS, forge.CloneURL(repo), tokenFile, cluster.Kubeconfig, ns))
	if err != nil {
		b.Fatal(err)
	}
	m, err := reconciler.NewManager(ctx, cfg, reconciler.Options{CacheDir: b.TempDir(), Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = m.Run(ctx) }()
	defer func() { cancel(); <-done }()
	store, _ := m.Store("staging")
	c := newClient(b)
	wait := func(what string, cond func() bool) {
		deadline := time.Now().Add(2 * time.Minute)
		for !cond() {
			if time.Now().After(deadline) {
				b.Fatalf("round %d: %s not reached", round, what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	verdict := func(commit string) (reconciler.Verdict, bool) {
		st, err := store.Load(ctx, "staging")
		if err != nil {
			return reconciler.Verdict{}, false
		}
		return st.VerdictFor(commit)
	}
	wait("healthy first deploy", func() bool { v, ok := verdict(good); return ok && v.Outcome == reconciler.OutcomeHealthy })

	start := time.Now()
	bad, err := wc.CommitAndPush(ctx, mttrFiles("\n      annotations: {"+harness.FailAnnotation+": "+harness.FailCrashLoop+"}"), "Deploy a crashing web")
	if err != nil {
		b.Fatal(err)
	}
	var revert string
	wait("revert commit in git", func() bool {
		v, ok := verdict(bad)
		if ok && strings.HasPrefix(v.Action, "reverted by ") {
			revert = strings.TrimPrefix(v.Action, "reverted by ")
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
		return d.Spec.Template.Annotations[harness.FailAnnotation] == "" && d.Status.UpdatedReplicas == 3 && d.Status.AvailableReplicas == 3 && d.Status.ReadyReplicas == 3
	})
	return toRevert, time.Since(start)
}
