// Package bench measures ferry against its baselines on the local kwok
// cluster, in the same run: `kubectl apply --server-side`, fluxcd/pkg/ssa's
// ApplyAllStaged with default options, and the `kustomize build` CLI. Every
// client has client-side rate limiting off. Run it with `make bench`.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/pkg/ssa"
	"github.com/go-git/go-billy/v5/memfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"

	"ferry.dev/ferry/apply"
	fcluster "ferry.dev/ferry/cluster"
	"ferry.dev/ferry/render"
	"ferry.dev/ferry/sandbox"
)

const (
	objectsN = 1000
	rounds   = 3
)

var (
	cluster     *sandbox.Cluster
	clusterOnce sync.Once
	clusterErr  error
)

func TestMain(m *testing.M) {
	// controller-runtime's clients log through a global logger; unset, it
	// prints a stack trace saying so. Its warnings go to stderr as text.
	ctrllog.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if os.Getenv("FERRY_BENCH_CHILD") != "" {
		os.Exit(child())
	}
	code := m.Run()
	printTargets()
	if forge != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = forge.Stop(ctx)
	}
	if cluster != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = cluster.Stop(ctx)
	}
	os.Exit(code)
}

var (
	forge     *sandbox.Gitea
	forgeOnce sync.Once
	forgeErr  error
)

// needForge starts the package's Gitea on first use.
func needForge(b *testing.B) *sandbox.Gitea {
	forgeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		forge, forgeErr = sandbox.StartGitea(ctx)
	})
	if forgeErr != nil {
		b.Fatal(forgeErr)
	}
	return forge
}

// needCluster starts the package's cluster on first use, so `go test`
// without -bench starts nothing.
func needCluster(b *testing.B) {
	clusterOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if _, err := sandbox.Reap(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "bench: reap:", err)
		}
		cluster, clusterErr = sandbox.StartCluster(ctx, sandbox.DefaultClusterOptions())
	})
	if clusterErr != nil {
		b.Fatal(clusterErr)
	}
}

// overlay returns the files of an overlay of objectsN objects: ConfigMaps,
// Deployments (no replicas, so the scheduler adds no noise) and Services.
func overlay(version string) map[string]string {
	files := map[string]string{}
	var resources []string
	for i := range objectsN {
		var doc string
		switch {
		case i < objectsN*6/10:
			doc = fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%04d\ndata:\n  version: %q\n  payload: %q\n", i, version, strings.Repeat("x", 200))
		case i < objectsN*8/10:
			doc = fmt.Sprintf("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: dep-%04d\nspec:\n  replicas: 0\n  selector:\n    matchLabels: {app: dep-%04d}\n  template:\n    metadata:\n      labels: {app: dep-%04d}\n    spec:\n      containers:\n        - name: app\n          image: registry.invalid/app:%s\n          ports: [{containerPort: 8080}]\n", i, i, i, version)
		default:
			doc = fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-%04d\nspec:\n  selector: {app: dep-%04d}\n  ports: [{port: 80, targetPort: 8080}]\n", i, i)
		}
		name := fmt.Sprintf("obj-%04d.yaml", i)
		files["app/"+name] = doc
		resources = append(resources, "  - "+name)
	}
	files["app/kustomization.yaml"] = "resources:\n" + strings.Join(resources, "\n") + "\n"
	return files
}

// changeOne changes one ConfigMap of the overlay.
func changeOne(files map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range files {
		out[k] = v
	}
	out["app/obj-0000.yaml"] = strings.Replace(out["app/obj-0000.yaml"], "payload:", "changed: \"yes\"\n  payload:", 1)
	return out
}

func withNamespace(files map[string]string, ns string) map[string]string {
	out := map[string]string{}
	for k, v := range files {
		out[k] = v
	}
	out["app/kustomization.yaml"] = "namespace: " + ns + "\n" + files["app/kustomization.yaml"]
	return out
}

func writeDir(t testing.TB, files map[string]string) string {
	dir := t.TempDir()
	for k, v := range files {
		p := filepath.Join(dir, k)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func gitTree(t fataler, files map[string]string) *object.Tree {
	fs := memfs.New()
	repo, err := git.Init(memory.NewStorage(), fs)
	if err != nil {
		t.Fatal(err)
	}
	wt, _ := repo.Worktree()
	for k, v := range files {
		f, err := fs.Create(k)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = f.Write([]byte(v))
		_ = f.Close()
		if _, err := wt.Add(k); err != nil {
			t.Fatal(err)
		}
	}
	h, err := wt.Commit("bench", &git.CommitOptions{Author: &object.Signature{Name: "b", Email: "b@ferry.invalid", When: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := repo.CommitObject(h)
	tree, _ := c.Tree()
	return tree
}

func renderObjects(t testing.TB, files map[string]string) []*unstructured.Unstructured {
	res, err := render.NewRenderer(render.DefaultOptions()).Render(context.Background(), gitTree(t, files), "app")
	if err != nil {
		t.Fatal(err)
	}
	return res.Objects
}

func newClient(t testing.TB) client.Client {
	c, err := client.New(cluster.Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newNamespace(t testing.TB, prefix string) string {
	ns, err := cluster.NewNamespace(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

// tool is one way to apply an overlay directory or its rendered objects.
type tool struct {
	name  string
	apply func(t testing.TB, dir string, objs []*unstructured.Unstructured)
}

func tools(t testing.TB) []tool {
	bin, err := sandbox.Tools()
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t)
	return []tool{
		{"kubectl apply --server-side", func(t testing.TB, dir string, _ []*unstructured.Unstructured) {
			// The rendered YAML, as kubectl would get it from a pipeline.
			out, err := exec.Command(filepath.Join(bin, "kubectl"), "--kubeconfig", cluster.Kubeconfig,
				"apply", "--server-side", "--field-manager", "kubectl-bench", "-f", filepath.Join(dir, "rendered.yaml")).CombinedOutput()
			if err != nil {
				t.Fatalf("kubectl: %v\n%s", err, out)
			}
		}},
		{"ssa ApplyAllStaged (defaults)", func(t testing.TB, _ string, objs []*unstructured.Unstructured) {
			rm := ssa.NewResourceManager(c, polling.NewStatusPoller(c, c.RESTMapper(), polling.Options{}), ssa.Owner{Field: "ssa-bench", Group: "bench.ferry.dev"})
			if _, err := rm.ApplyAllStaged(context.Background(), copyAll(objs), ssa.DefaultApplyOptions()); err != nil {
				t.Fatal(err)
			}
		}},
		{"ferry", ferryTool(t)},
	}
}

// ferryRequests counts the requests of ferry's applier in BenchmarkApply1000.
var ferryRequests = &fcluster.Counter{}

var (
	ferryOnce  sync.Once
	ferryApply func(t testing.TB, _ string, objs []*unstructured.Unstructured)
)

// ferryTool applies with one Applier per namespace, with watches shared
// by all, as ferry run keeps them from one reconcile to the next; its
// requests count on ferryRequests.
func ferryTool(t testing.TB) func(t testing.TB, _ string, objs []*unstructured.Unstructured) {
	ferryOnce.Do(func() { ferryApply = newFerryTool(t) })
	return ferryApply
}

func newFerryTool(t testing.TB) func(t testing.TB, _ string, objs []*unstructured.Unstructured) {
	cfg := ferryRequests.Wrap(rest.CopyConfig(cluster.Config))
	c, err := fcluster.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := apply.NewWatches(cfg, c.RESTMapper())
	if err != nil {
		t.Fatal(err)
	}
	ws.Start(context.Background())
	appliers := map[string]*apply.Applier{}
	return func(t testing.TB, _ string, objs []*unstructured.Unstructured) {
		ns := objs[0].GetNamespace()
		a, ok := appliers[ns]
		if !ok {
			opts := apply.DefaultOptions()
			opts.Environment = "bench"
			a = apply.New(c, opts)
			a.SetWatches(ws)
			appliers[ns] = a
		}
		if _, err := a.Apply(context.Background(), copyAll(objs)); err != nil {
			t.Fatal(err)
		}
	}
}

func copyAll(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, len(objs))
	for i, o := range objs {
		out[i] = o.DeepCopy()
	}
	return out
}

func renderedYAML(t testing.TB, objs []*unstructured.Unstructured) []byte {
	var buf bytes.Buffer
	for _, o := range objs {
		data, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		buf.WriteString("---\n")
		buf.Write(data)
	}
	return buf.Bytes()
}

// deleteNamespace deletes ns and waits until it is gone, so that the next
// tool starts on a quiet cluster (a namespace of 1000 objects takes a few
// seconds to go, and holds 200 of the cluster's service IPs meanwhile).
func deleteNamespace(b *testing.B, ns string) {
	ctx := context.Background()
	_ = cluster.Client.CoreV1().Namespaces().Delete(ctx, ns, deleteOpts)
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); {
		if _, err := cluster.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			return
		}
		time.Sleep(200 * time.Millisecond) // why a sleep: polling the namespace's deletion, untimed
	}
	b.Fatalf("namespace %s still there 2m after its deletion", ns)
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkApply1000 times a cold apply, a no-op reconcile and a reconcile
// after a one-object change of 1000 objects, for each tool, interleaved
// over rounds, and reports medians and ratios against the baselines.
func BenchmarkApply1000(b *testing.B) {
	base := overlay("v1")
	phases := []string{"cold apply", "no-op", "1-object change"}
	results := map[string]map[string][]time.Duration{}
	requests := map[string][]int64{}
	needCluster(b)
	for b.Loop() {
		for round := range rounds {
			for _, tl := range tools(b) {
				ns := newNamespace(b, "bench")
				files := withNamespace(base, ns)
				changed := withNamespace(changeOne(base), ns)
				objs, objs2 := renderObjects(b, files), renderObjects(b, changed)
				dir, dir2 := b.TempDir(), b.TempDir()
				_ = os.WriteFile(filepath.Join(dir, "rendered.yaml"), renderedYAML(b, objs), 0o644)
				_ = os.WriteFile(filepath.Join(dir2, "rendered.yaml"), renderedYAML(b, objs2), 0o644)
				steps := []struct {
					dir  string
					objs []*unstructured.Unstructured
				}{{dir, objs}, {dir, objs}, {dir2, objs2}}
				if results[tl.name] == nil {
					results[tl.name] = map[string][]time.Duration{}
				}
				for i, s := range steps {
					if i == 1 {
						// why a sleep: the controllers write the new objects
						// (Deployment revisions) within moments of their
						// creation; a reconcile comes an interval later, after
						// ferry's drift watch has taken those writes in. One
						// untimed pass stands for that, for every tool.
						time.Sleep(3 * time.Second)
						tl.apply(b, s.dir, s.objs)
					}
					before := ferryRequests.Load()
					start := time.Now()
					tl.apply(b, s.dir, s.objs)
					results[tl.name][phases[i]] = append(results[tl.name][phases[i]], time.Since(start))
					if tl.name == "ferry" {
						requests[phases[i]] = append(requests[phases[i]], ferryRequests.Load()-before)
					}
				}
				b.Logf("round %d %s done", round+1, tl.name)
				deleteNamespace(b, ns)
			}
		}
	}
	fmt.Printf("\n%d objects (600 ConfigMaps, 200 Deployments, 200 Services), median of %d rounds, client-side rate limits off\n", objectsN, rounds)
	fmt.Printf("%-32s %14s %14s %16s\n", "", phases[0], phases[1], phases[2])
	for _, name := range []string{"kubectl apply --server-side", "ssa ApplyAllStaged (defaults)", "ferry"} {
		fmt.Printf("%-32s", name)
		for _, p := range phases {
			fmt.Printf(" %14s", median(results[name][p]).Round(time.Millisecond))
		}
		fmt.Println()
	}
	fmt.Printf("%-32s", "ferry API requests")
	for _, p := range phases {
		r := slices.Clone(requests[p])
		slices.Sort(r)
		fmt.Printf(" %14d", r[len(r)/2])
		b.ReportMetric(float64(r[len(r)/2]), "ferry-requests-"+strings.ReplaceAll(p, " ", "-"))
	}
	fmt.Println()
	ratio := func(p string) float64 {
		return float64(median(results["ferry"][p])) / float64(median(results["kubectl apply --server-side"][p]))
	}
	medianOf := func(p string) int64 {
		r := slices.Clone(requests[p])
		slices.Sort(r)
		return r[len(r)/2]
	}
	measured(0, "%.2f× (%s)", ratio("no-op"), median(results["ferry"]["no-op"]).Round(time.Millisecond))
	measured(1, "%d by the applier (a whole pass: TestConvergedReconcileCostsFewRequests)", medianOf("no-op"))
	measured(2, "%.2f× (%d requests)", ratio("1-object change"), medianOf("1-object change"))
	measured(7, "%.2f× (%d requests, %s)", ratio("cold apply"), medianOf("cold apply"), median(results["ferry"]["cold apply"]).Round(time.Millisecond))
	for _, baseline := range []string{"kubectl apply --server-side", "ssa ApplyAllStaged (defaults)"} {
		fmt.Printf("%-32s", "ferry / "+strings.Fields(baseline)[0])
		for _, p := range phases {
			r := float64(median(results["ferry"][p])) / float64(median(results[baseline][p]))
			fmt.Printf(" %13.2fx", r)
			b.ReportMetric(r, fmt.Sprintf("ferry/%s-%s", strings.Fields(baseline)[0], strings.ReplaceAll(p, " ", "-")))
		}
		fmt.Println()
	}
}

// BenchmarkRender1000 times ferry's render of the overlay straight from a
// git tree against `kustomize build` of the same overlay on disk.
func BenchmarkRender1000(b *testing.B) {
	bin, err := sandbox.Tools()
	if err != nil {
		b.Fatal(err)
	}
	files := overlay("v1")
	dir := writeDir(b, files)
	tree := gitTree(b, files)
	var kust, cold, cached []time.Duration
	r := render.NewRenderer(render.DefaultOptions())
	for b.Loop() {
		for range rounds {
			start := time.Now()
			if out, err := exec.Command(filepath.Join(bin, "kustomize"), "build", filepath.Join(dir, "app")).CombinedOutput(); err != nil {
				b.Fatalf("kustomize build: %v\n%s", err, out[:min(len(out), 2000)])
			}
			kust = append(kust, time.Since(start))
			start = time.Now()
			if _, err := render.NewRenderer(render.DefaultOptions()).Render(context.Background(), tree, "app"); err != nil {
				b.Fatal(err)
			}
			cold = append(cold, time.Since(start))
			start = time.Now()
			if _, err := r.Render(context.Background(), tree, "app"); err != nil {
				b.Fatal(err)
			}
			cached = append(cached, time.Since(start))
		}
	}
	fmt.Printf("\nrender of %d objects, median of %d: kustomize build %s, ferry cold %s (%.2fx), ferry same commit %s (%.4fx)\n",
		objectsN, rounds, median(kust).Round(time.Millisecond), median(cold).Round(time.Millisecond),
		float64(median(cold))/float64(median(kust)), median(cached).Round(time.Microsecond), float64(median(cached))/float64(median(kust)))
	b.ReportMetric(float64(median(cold))/float64(median(kust)), "ferry-cold/kustomize")
}

// BenchmarkPeakRSS runs ferry's render and cold apply of 1000 objects in a
// fresh process and reports that process's peak resident set size.
func BenchmarkPeakRSS(b *testing.B) {
	needCluster(b)
	for b.Loop() {
		ns := newNamespace(b, "bench-rss")
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "FERRY_BENCH_CHILD="+ns, "FERRY_BENCH_KUBECONFIG="+cluster.Kubeconfig)
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("child: %v\n%s", err, out)
		}
		var res struct{ MaxRSSKiB int64 }
		if err := json.Unmarshal(lastLine(out), &res); err != nil {
			b.Fatalf("child output: %v\n%s", err, out)
		}
		fmt.Printf("\nferry peak RSS rendering and applying %d objects: %.1f MiB\n", objectsN, float64(res.MaxRSSKiB)/1024)
		b.ReportMetric(float64(res.MaxRSSKiB)/1024, "peak-RSS-MiB")
	}
}

func lastLine(out []byte) []byte {
	lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
	return lines[len(lines)-1]
}

// child renders and applies the overlay into $FERRY_BENCH_CHILD and prints
// its peak RSS as JSON.
func child() int {
	ns := os.Getenv("FERRY_BENCH_CHILD")
	cfg, err := clientConfig(os.Getenv("FERRY_BENCH_KUBECONFIG"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	files := withNamespace(overlay("v1"), ns)
	res, err := render.NewRenderer(render.DefaultOptions()).Render(context.Background(), gitTree(exitOnFatal{}, files), "app")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	opts := apply.DefaultOptions()
	opts.Environment = "bench"
	if _, err := apply.New(c, opts).Apply(context.Background(), res.Objects); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Printf("{\"MaxRSSKiB\": %d}\n", ru.Maxrss)
	return 0
}
