package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/sandbox"
	"ferry.dev/ferry/state"
)

const (
	fleetEnvs  = 10
	handEdits  = 20
	badCommits = 5
)

// fleetFigures are what BenchmarkFleet measured.
type fleetFigures struct {
	requestsPerMinute float64
	peakRSSMiB        float64
	// peakAnonMiB is the highest anonymous RSS sampled (heap, stacks);
	// fileMiB the file-backed RSS then (the executable's mapped pages).
	peakAnonMiB, fileMiB float64
	edit                 []time.Duration
	revert               []time.Duration
}

// BenchmarkFleet runs `ferry run` as a process with fleetEnvs environments
// of objectsN objects each, from one repository, on a one-minute interval.
// Once they are healthy and settled it counts ferry's API requests over a
// minute (ferry_api_requests_total), times hand edits until ferry restored
// them, and reads the process's peak RSS. A second process, following one
// small environment, times a failing pod's status to the revert commit in
// git.
func BenchmarkFleet(b *testing.B) {
	needCluster(b)
	g := needForge(b)
	// Built as the image builds it (manifests/Dockerfile): its memory is
	// what is measured, and a static binary maps less than a cgo one.
	bin := filepath.Join(b.TempDir(), "ferry")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "../../cmd/ferry")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	for b.Loop() {
		f := fleet(b, g, bin)
		f.revert = revertLatency(b, g, bin)
		printFleet(b, f)
	}
}

func fleet(b *testing.B, g *sandbox.Gitea, bin string) *fleetFigures {
	ctx := context.Background()
	c := newClient(b)
	repo := fmt.Sprintf("fleet-%d", time.Now().UnixNano())
	files := map[string]string{}
	var envs, nss []string
	for i := range fleetEnvs {
		ns := newNamespace(b, "fleet")
		nss = append(nss, ns)
		env := fmt.Sprintf("fleet-%d", i)
		for k, v := range withNamespace(overlay("v1"), ns) {
			// Headless: ten times 200 Services would use up the local
			// cluster's service IP range.
			v = strings.Replace(v, "spec:\n  selector:", "spec:\n  clusterIP: None\n  selector:", 1)
			files["envs/"+env+"/"+strings.TrimPrefix(k, "app/")] = v
		}
		envs = append(envs, fmt.Sprintf(`  - name: %s
    source: {url: %s, branch: main, path: envs/%s, interval: 1m, auth: {tokenFile: %%[1]s}}
    cluster: {kubeconfig: %%[2]s}
    namespace: %s
    health: {timeout: 10m, interval: 2s}
`, env, g.CloneURL(repo), env, ns))
	}
	push(b, g, repo, files)
	addr := freeAddr(b)
	cfgPath := writeFerryConfig(b, g, addr, strings.Join(envs, ""))
	proc := sandbox.StartFerry(b, bin, cfgPath)
	defer stopFerry(proc)
	mem := sampleMemory(proc.Process.Pid)
	defer mem.stop()

	start := time.Now()
	waitAll(b, c, cfgNamespace(cfgPath), fleetEnvs, 15*time.Minute)
	b.Logf("fleet: %d environments of %d objects healthy after %s", fleetEnvs, objectsN, time.Since(start).Round(time.Second))
	// why a sleep: the controllers' first writes after the cold apply
	// (Deployment revisions) settle, and the drift watch absorbs them.
	time.Sleep(15 * time.Second)
	before := metric(b, addr, "ferry_api_requests_total")
	// why a sleep: the measurement is requests over one minute of quiet.
	time.Sleep(time.Minute)
	f := &fleetFigures{requestsPerMinute: metric(b, addr, "ferry_api_requests_total") - before}

	// Hand edits: a ConfigMap of some environment, edited as kubectl edit
	// does, until ferry has restored it.
	for i := range handEdits {
		ns := nss[i%len(nss)]
		name := fmt.Sprintf("cm-%04d", (i*37)%(objectsN*6/10))
		cm := &corev1.ConfigMap{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, cm); err != nil {
			b.Fatal(err)
		}
		w, err := cluster.Client.CoreV1().ConfigMaps(ns).Watch(ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String(), ResourceVersion: cm.ResourceVersion})
		if err != nil {
			b.Fatal(err)
		}
		cm.Data["version"] = "edited"
		t0 := time.Now()
		if err := c.Update(ctx, cm, client.FieldOwner("kubectl-edit")); err != nil {
			b.Fatal(err)
		}
		if at, ok := restored(w, 30*time.Second); ok {
			f.edit = append(f.edit, at.Sub(t0))
		} else {
			b.Fatalf("hand edit of %s/%s not restored within 30s", ns, name)
		}
		w.Stop()
	}
	f.peakRSSMiB = peakRSS(b, proc.Process.Pid)
	f.peakAnonMiB, f.fileMiB = mem.peak()
	return f
}

// memorySampler reads a process's anonymous and file-backed RSS every
// 100 ms and keeps the highest anonymous figure: VmHWM alone does not say
// how much of the peak is the executable's pages, mapped from the page
// cache and the same for one environment as for ten.
type memorySampler struct {
	mu         sync.Mutex
	anon, file float64
	done       chan struct{}
}

func sampleMemory(pid int) *memorySampler {
	m := &memorySampler{done: make(chan struct{})}
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-m.done:
				return
			case <-tick.C:
			}
			data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			if err != nil {
				return
			}
			anon, file := statusKB(data, "RssAnon:")/1024, statusKB(data, "RssFile:")/1024
			m.mu.Lock()
			if anon > m.anon {
				m.anon, m.file = anon, file
			}
			m.mu.Unlock()
		}
	}()
	return m
}

func (m *memorySampler) stop() { close(m.done) }

func (m *memorySampler) peak() (anon, file float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.anon, m.file
}

// statusKB reads a "Name: N kB" line of /proc/<pid>/status; 0 if absent.
func statusKB(status []byte, name string) float64 {
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, name); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb
		}
	}
	return 0
}

// restored waits for the watched ConfigMap to carry the rendering's value
// again, and returns when the watch saw it.
func restored(w watch.Interface, timeout time.Duration) (time.Time, bool) {
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				return time.Time{}, false
			}
			if cm, isCM := ev.Object.(*corev1.ConfigMap); isCM && cm.Data["version"] == "v1" {
				return time.Now(), true
			}
		case <-deadline:
			return time.Time{}, false
		}
	}
}

// revertLatency follows one small environment whose commits turn its pods
// into a crash loop, and times each failing pod status, as a watch sees
// it, to the revert commit on the branch.
func revertLatency(b *testing.B, g *sandbox.Gitea, bin string) []time.Duration {
	ctx := context.Background()
	c := newClient(b)
	ns := newNamespace(b, "canary")
	repo := fmt.Sprintf("canary-%d", time.Now().UnixNano())
	good := func(tag string) map[string]string {
		return map[string]string{"envs/canary/kustomization.yaml": "namespace: " + ns + "\nresources: [deployment.yaml]\n",
			"envs/canary/deployment.yaml": fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
      annotations: {tag: %q}
    spec:
      containers: [{name: web, image: registry.invalid/web:v1}]
`, tag)}
	}
	bad := func(tag string) map[string]string {
		files := good(tag)
		files["envs/canary/deployment.yaml"] = strings.Replace(files["envs/canary/deployment.yaml"], "annotations: {", fmt.Sprintf("annotations: {%s: %s, ", sandbox.FailAnnotation, sandbox.FailCrashLoop), 1)
		return files
	}
	wc := push(b, g, repo, good("0"))
	addr := freeAddr(b)
	cfgPath := writeFerryConfig(b, g, addr, fmt.Sprintf(`  - name: canary
    source: {url: %s, branch: main, path: envs/canary, interval: 1s, auth: {tokenFile: %%[1]s}}
    cluster: {kubeconfig: %%[2]s}
    namespace: %s
    health: {timeout: 2m, interval: 2s}
    onFailure: revert
`, g.CloneURL(repo), ns))
	proc := sandbox.StartFerry(b, bin, cfgPath)
	defer stopFerry(proc)
	stateNS := cfgNamespace(cfgPath)
	waitAll(b, c, stateNS, 1, 3*time.Minute)
	var out []time.Duration
	for i := range badCommits {
		pods, err := cluster.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			b.Fatal(err)
		}
		w, err := cluster.Client.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: pods.ResourceVersion})
		if err != nil {
			b.Fatal(err)
		}
		sha, err := wc.CommitAndPush(ctx, bad(fmt.Sprintf("bad-%d", i)), "a bad change")
		if err != nil {
			b.Fatal(err)
		}
		failing := time.Time{}
		for failing.IsZero() {
			ev, ok := <-w.ResultChan()
			if !ok {
				b.Fatal("pod watch ended")
			}
			if p, isPod := ev.Object.(*corev1.Pod); isPod && crashLooping(p) {
				failing = time.Now()
			}
		}
		w.Stop()
		for {
			tip, err := wc.Git(ctx, "ls-remote", "origin", "refs/heads/main")
			if err != nil {
				b.Fatal(err)
			}
			if f := strings.Fields(tip); len(f) > 0 && f[0] != sha {
				out = append(out, time.Since(failing))
				break
			}
			if time.Since(failing) > 2*time.Minute {
				b.Fatalf("no revert of %s within 2m of its failing pod", sha[:7])
			}
			time.Sleep(10 * time.Millisecond) // why a sleep: polling the branch, finer than the figure
		}
		if _, err := wc.Git(ctx, "pull", "--rebase", "origin", "main"); err != nil {
			b.Fatal(err)
		}
		waitAll(b, c, stateNS, 1, 3*time.Minute)
	}
	return out
}

func crashLooping(p *corev1.Pod) bool {
	for _, s := range p.Status.ContainerStatuses {
		if s.State.Waiting != nil && s.State.Waiting.Reason == "CrashLoopBackOff" {
			return true
		}
	}
	return false
}

func push(b *testing.B, g *sandbox.Gitea, repo string, files map[string]string) *sandbox.Clone {
	if _, err := g.CreateRepo(repo); err != nil {
		b.Fatal(err)
	}
	wc, err := g.Clone(context.Background(), repo, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := wc.CommitAndPush(context.Background(), files, "initial"); err != nil {
		b.Fatal(err)
	}
	return wc
}

func freeAddr(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// writeFerryConfig writes a configuration with its own state namespace,
// the server on addr, and the environments envs (a format with %[1]s for
// the token file and %[2]s for the kubeconfig).
func writeFerryConfig(b *testing.B, g *sandbox.Gitea, addr, envs string) string {
	dir := b.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte(g.Token), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg := fmt.Sprintf("namespace: %s\nserver: {addr: %q}\nenvironments:\n", newNamespace(b, "ferry"), addr) +
		fmt.Sprintf(envs, token, cluster.Kubeconfig)
	path := filepath.Join(dir, "ferry.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	return path
}

func cfgNamespace(path string) string {
	data, _ := os.ReadFile(path)
	first, _, _ := strings.Cut(string(data), "\n")
	return strings.TrimSpace(strings.TrimPrefix(first, "namespace:"))
}

func stopFerry(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// waitAll waits until n environments in ferry's namespace are Healthy.
func waitAll(b *testing.B, c client.Client, ns string, n int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for {
		store := state.NewStore(c, ns)
		cms := &corev1.ConfigMapList{}
		if err := c.List(context.Background(), cms, client.InNamespace(ns)); err != nil {
			b.Fatal(err)
		}
		healthy, phases := 0, []string{}
		for _, cm := range cms.Items {
			env, ok := strings.CutPrefix(cm.Name, "ferry-state-")
			if !ok {
				continue
			}
			st, err := store.Load(context.Background(), env)
			if err != nil {
				b.Fatal(err)
			}
			if st.Phase == state.PhaseHealthy {
				healthy++
			}
			phases = append(phases, fmt.Sprintf("%s %s %s", env, st.Phase, st.Message))
		}
		if healthy >= n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d environments healthy after %s: %v", healthy, n, timeout, phases)
		}
		time.Sleep(time.Second) // why a sleep: polling the state, far coarser than what is measured
	}
}

// metric reads one unlabelled series from ferry's /metrics.
func metric(b *testing.B, addr, name string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				b.Fatal(err)
			}
			return f
		}
	}
	b.Fatalf("%s not in ferry's metrics", name)
	return 0
}

// peakRSS reads a process's peak resident set size (VmHWM) in MiB.
func peakRSS(b *testing.B, pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	kb := statusKB(data, "VmHWM:")
	if kb == 0 {
		b.Fatal("no VmHWM")
	}
	return kb / 1024
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func printFleet(b *testing.B, f *fleetFigures) {
	fmt.Printf("\n%d environments x %d objects, ferry run as a process, interval 1m\n", fleetEnvs, objectsN)
	fmt.Printf("  steady-state API requests per minute: %.0f\n", f.requestsPerMinute)
	fmt.Printf("  hand edit -> corrected (%d edits): p50 %s, p95 %s\n", len(f.edit),
		percentile(f.edit, 0.5).Round(time.Millisecond), percentile(f.edit, 0.95).Round(time.Millisecond))
	fmt.Printf("  failing pod status -> revert commit in git (%d commits): p50 %s, max %s\n", len(f.revert),
		percentile(f.revert, 0.5).Round(time.Millisecond), percentile(f.revert, 1).Round(time.Millisecond))
	fmt.Printf("  peak RSS: %.1f MiB; highest anonymous RSS sampled %.1f MiB, with %.1f MiB of the executable's file pages mapped\n",
		f.peakRSSMiB, f.peakAnonMiB, f.fileMiB)
	measured(3, "%s / %s (%d edits)", percentile(f.edit, 0.5).Round(time.Millisecond), percentile(f.edit, 0.95).Round(time.Millisecond), len(f.edit))
	measured(4, "%s (%d commits)", percentile(f.revert, 0.5).Round(time.Millisecond), len(f.revert))
	measured(5, "%.0f", f.requestsPerMinute)
	measured(6, "%.0f MiB (anonymous at most %.0f MiB, file pages %.0f MiB)", f.peakRSSMiB, f.peakAnonMiB, f.fileMiB)
	b.ReportMetric(f.requestsPerMinute, "requests/min")
	b.ReportMetric(float64(percentile(f.edit, 0.5))/1e6, "edit-p50-ms")
	b.ReportMetric(float64(percentile(f.edit, 0.95))/1e6, "edit-p95-ms")
	b.ReportMetric(float64(percentile(f.revert, 0.5))/1e6, "revert-p50-ms")
	b.ReportMetric(f.peakRSSMiB, "peak-RSS-MiB")
	b.ReportMetric(f.peakAnonMiB, "peak-anon-RSS-MiB")
}
