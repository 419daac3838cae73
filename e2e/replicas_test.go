package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"ferry.dev/ferry/lease"
)

// replica is one `ferry run` process of TestReplicas.
type replica struct {
	id, addr string
	cmd      *exec.Cmd
	log      string
}

// replicaSet is TestReplicas' fixture: six environments, each following
// its own branch env-<n> of one repository at app/, shared by ferry
// processes started with POD_NAME set, as the install's Deployment does.
type replicaSet struct {
	*fixture
	bin, secret string
	envs        []string
	nss         map[string]string // environment → namespace
}

const replicaEnvs = 6

func newReplicaSet(t *testing.T) *replicaSet {
	t.Helper()
	f := newFixture(t, "e1", "rs-", map[string]string{"app/cm.yaml": appConfigMap("0")}, "Initial app")
	rs := &replicaSet{fixture: f, nss: map[string]string{}, secret: "replica-hook-secret"}
	var refspecs []string
	for n := 1; n <= replicaEnvs; n++ {
		env := fmt.Sprintf("e%d", n)
		rs.envs = append(rs.envs, env)
		rs.nss[env] = newNamespace(t)
		refspecs = append(refspecs, fmt.Sprintf("main:env-%d", n))
	}
	if err := f.wc.Push(t.Context(), refspecs...); err != nil {
		t.Fatal(err)
	}
	rs.bin = buildFerry(t)
	return rs
}

func appConfigMap(v string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  v: \"" + v + "\"\n"
}

// config is one replica's configuration: the same environments for all,
// its own listen address. The branches are polled every 10 minutes, so
// anything sooner comes from the webhook or a takeover.
func (rs *replicaSet) config(t *testing.T, addr string) string {
	t.Helper()
	secretFile := filepath.Join(t.TempDir(), "hook-secret")
	if err := os.WriteFile(secretFile, []byte(rs.secret), 0o600); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "namespace: %s\nserver: {addr: %q}\nreport: {provider: gitea, url: %q, tokenFile: %s, webhookSecretFile: %s}\nenvironments:\n",
		rs.stateNS, addr, strings.TrimSuffix(forge.URL, "/"), rs.tokenFile, secretFile)
	for n, env := range rs.envs {
		fmt.Fprintf(&b, `  - name: %s
    source: {url: %s, branch: env-%d, path: app, interval: 10m, auth: {tokenFile: %s}}
    cluster: {kubeconfig: %s}
    namespace: %s
    health: {timeout: 1m, interval: 250ms}
`, env, forge.CloneURL(rs.repo), n+1, rs.tokenFile, cluster.Kubeconfig, rs.nss[env])
	}
	return b.String()
}

// start runs one replica as identity id until the test ends.
func (rs *replicaSet) start(t *testing.T, id string) *replica {
	t.Helper()
	r := &replica{id: id, addr: freeAddr(t), log: filepath.Join(t.TempDir(), id+".log")}
	r.cmd = exec.Command(rs.bin, "run", "--config", writeConfig(t, rs.config(t, r.addr)))
	logf, err := os.Create(r.log)
	if err != nil {
		t.Fatal(err)
	}
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	r.cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+t.TempDir(), "POD_NAME="+id, "KUBECONFIG="+cluster.Kubeconfig)
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		if t.Failed() {
			data, _ := os.ReadFile(r.log)
			t.Logf("replica %s log:\n%s", id, data)
		}
	})
	return r
}

// leases returns the Lease of every environment that has one.
func (rs *replicaSet) leases(t *testing.T) map[string]coordinationv1.Lease {
	t.Helper()
	out := map[string]coordinationv1.Lease{}
	for _, env := range rs.envs {
		l, err := cluster.Client.CoordinationV1().Leases(rs.stateNS).Get(t.Context(), "ferry-env-"+env, metav1.GetOptions{})
		if err == nil {
			out[env] = *l
		}
	}
	return out
}

// holders returns each environment's holder ("" when none).
func (rs *replicaSet) holders(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for env, l := range rs.leases(t) {
		if l.Spec.HolderIdentity != nil {
			out[env] = *l.Spec.HolderIdentity
		}
	}
	return out
}

// held returns the environments each replica holds.
func held(holders map[string]string) map[string][]string {
	out := map[string][]string{}
	for env, h := range holders {
		out[h] = append(out[h], env)
	}
	for _, envs := range out {
		slices.Sort(envs)
	}
	return out
}

// pushTo commits a new value of the ConfigMap on env's branch and returns
// the commit.
func (rs *replicaSet) pushTo(t *testing.T, env, v string) string {
	t.Helper()
	branch := "env-" + strings.TrimPrefix(env, "e")
	rs.git(t, "fetch", "--quiet", "origin")
	rs.git(t, "checkout", "--quiet", "-B", branch, "origin/"+branch)
	return rs.push(t, map[string]string{"app/cm.yaml": appConfigMap(v)}, nil, "Set "+env+" to "+v)
}

// hook delivers a signed Gitea push event for env's branch to a replica,
// and returns the environments it triggered.
func (rs *replicaSet) hook(t *testing.T, to *replica, env, after string) []string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"ref": "refs/heads/env-" + strings.TrimPrefix(env, "e"), "after": after,
		"repository": map[string]any{"full_name": forge.User + "/" + rs.repo},
	})
	mac := hmac.New(sha256.New, []byte(rs.secret))
	mac.Write(body)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+to.addr+"/hooks/gitea", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Gitea-Event", "push")
	req.Header.Set("X-Gitea-Delivery", fmt.Sprintf("replicas-%d", time.Now().UnixNano()))
	req.Header.Set("X-Gitea-Signature", hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var res struct {
		Triggered []string `json:"triggered"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(data, &res) != nil {
		t.Fatalf("webhook to %s: %d %s", to.id, resp.StatusCode, data)
	}
	return res.Triggered
}

// TestReplicas: three `ferry run` replicas share six environments through
// one Lease each. The environments spread over the replicas (two each,
// each held by exactly one) and all of them are reconciled; every replica
// serves the same status from the state ConfigMaps; a webhook to a replica
// that does not hold an environment makes its holder reconcile at once
// (the branches are polled only every 10 minutes); a replica killed with
// SIGKILL hands its environments to the others within 5 s of its leases
// expiring, and they go on; a SIGTERM hands them over at once.
func TestReplicas(t *testing.T) {
	rs := newReplicaSet(t)
	replicas := map[string]*replica{}
	for _, id := range []string{"ferry-a", "ferry-b", "ferry-c"} {
		replicas[id] = rs.start(t, id)
	}

	// Spread: every environment held, two by each replica.
	var holders map[string]string
	eventually(t, 90*time.Second, func() (bool, string) {
		holders = rs.holders(t)
		by := held(holders)
		ok := len(holders) == replicaEnvs
		for id := range replicas {
			ok = ok && len(by[id]) == 2
		}
		return ok, fmt.Sprintf("holders %v", by)
	})
	t.Logf("spread: %v", held(holders))
	start := rs.tip(t, "env-1")
	for _, env := range rs.envs {
		requireHealthy(t, rs.waitVerdict(t, env, start, time.Minute))
	}
	for _, r := range replicas {
		httpGet(t, "http://"+r.addr+"/readyz")
	}
	// The status of an environment is the same on every replica, whichever holds it.
	for _, r := range replicas {
		body := httpGet(t, "http://"+r.addr+"/api/v1/environments/e1")
		if !strings.Contains(body, start) {
			t.Errorf("replica %s shows e1 without its verdict on %s: %s", r.id, start[:7], body)
		}
	}

	// A webhook to a replica that does not hold the environment.
	env := "e3"
	holder := holders[env]
	var other *replica
	for id, r := range replicas {
		if id != holder {
			other = r
			break
		}
	}
	commit := rs.pushTo(t, env, "hooked")
	sent := time.Now()
	if got := rs.hook(t, other, env, commit); !slices.Equal(got, []string{env}) {
		t.Fatalf("webhook to %s triggered %v, want [%s]", other.id, got, env)
	}
	requireHealthy(t, rs.waitVerdict(t, env, commit, 30*time.Second))
	took := time.Since(sent)
	t.Logf("webhook to %s (not the holder %s): %s verified after %s", other.id, holder, env, took.Round(10*time.Millisecond))
	if took > 15*time.Second {
		t.Errorf("the holder reconciled %s after the webhook, want at once", took)
	}

	// SIGKILL: the victim's environments move once their leases expire.
	victim := replicas[holders["e1"]]
	lost := held(rs.holders(t))[victim.id]
	if err := victim.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	delete(replicas, victim.id)
	time.Sleep(200 * time.Millisecond) // a renewal in flight at the kill lands
	last := rs.leases(t)
	next := map[string]string{}
	for _, e := range lost {
		next[e] = rs.pushTo(t, e, "after-kill")
	}
	takeover := map[string]time.Duration{}
	eventually(t, time.Minute, func() (bool, string) {
		for env, l := range rs.leases(t) {
			h := ""
			if l.Spec.HolderIdentity != nil {
				h = *l.Spec.HolderIdentity
			}
			if _, done := takeover[env]; done || !slices.Contains(lost, env) || h == "" || h == victim.id {
				continue
			}
			old := last[env]
			expiry := old.Spec.RenewTime.Add(time.Duration(*old.Spec.LeaseDurationSeconds) * time.Second)
			takeover[env] = l.Spec.AcquireTime.Sub(expiry)
			t.Logf("%s: %s's lease expired at %s; %s took it %s later", env, victim.id, expiry.Format("15:04:05.000"), h, takeover[env].Round(10*time.Millisecond))
		}
		return len(takeover) == len(lost), fmt.Sprintf("taken over: %v of %v", takeover, lost)
	})
	for env, d := range takeover {
		if d > 5*time.Second {
			t.Errorf("%s was taken over %s after its lease expired, want within 5s", env, d)
		}
	}
	for env, c := range next {
		requireHealthy(t, rs.waitVerdict(t, env, c, time.Minute))
	}
	by := held(rs.holders(t))
	for id := range replicas {
		if len(by[id]) == 0 {
			t.Errorf("after the kill, %s holds nothing: %v", id, by)
		}
	}

	// SIGTERM: the leases are released at once, and the last replica takes all.
	var leaving, staying *replica
	for _, r := range replicas {
		if leaving == nil {
			leaving = r
		} else {
			staying = r
		}
	}
	termed := time.Now()
	stopFerryProcess(t, leaving.cmd)
	eventually(t, 20*time.Second, func() (bool, string) {
		by := held(rs.holders(t))
		return len(by[staying.id]) == replicaEnvs, fmt.Sprintf("holders %v", by)
	})
	handover := time.Since(termed)
	t.Logf("SIGTERM of %s: %s holds all %d environments after %s", leaving.id, staying.id, replicaEnvs, handover.Round(10*time.Millisecond))
	if handover > 10*time.Second {
		t.Errorf("handover after SIGTERM took %s, want about the time to stop plus one retry", handover)
	}
	final := rs.pushTo(t, "e2", "last")
	if got := rs.hook(t, staying, "e2", final); !slices.Equal(got, []string{"e2"}) {
		t.Fatalf("webhook triggered %v", got)
	}
	requireHealthy(t, rs.waitVerdict(t, "e2", final, 30*time.Second))
}

// TestLeaseLost: a replica that loses one environment's Lease (here another
// holder takes it over, as after a long cut from the API server) stops that
// environment's work alone, keeps the others, and competes for the lost
// one again: once the other holder stops renewing, it runs it again.
func TestLeaseLost(t *testing.T) {
	ns := newNamespace(t)
	opts := lease.DefaultOptions()
	opts.Namespace, opts.Identity = ns, "ferry-a"
	opts.LeaseDuration, opts.RenewDeadline, opts.RetryPeriod = 3*time.Second, 2*time.Second, 250*time.Millisecond
	opts.Log = slog.New(slog.NewTextHandler(&testWriter{t: t}, nil))
	pool := lease.New(cluster.Client, []string{"a", "b"}, opts)
	var mu sync.Mutex
	running := map[string]bool{}
	starts := map[string]int{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- pool.Run(ctx, func(ctx context.Context, name string) {
			mu.Lock()
			running[name] = true
			starts[name]++
			mu.Unlock()
			<-ctx.Done()
			mu.Lock()
			running[name] = false
			mu.Unlock()
		})
	}()
	// seen checks cond on the work's state and says what it was.
	seen := func(cond func(running map[string]bool, starts map[string]int) bool) (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return cond(running, starts), fmt.Sprintf("running %v, starts %v", running, starts)
	}
	eventually(t, 20*time.Second, func() (bool, string) {
		return seen(func(running map[string]bool, _ map[string]int) bool { return running["a"] && running["b"] })
	})

	// Another holder takes ferry-env-a and renews it.
	leases := cluster.Client.CoordinationV1().Leases(ns)
	steal := func() {
		l, err := leases.Get(t.Context(), "ferry-env-a", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		now := metav1.NewMicroTime(time.Now())
		thief := "thief"
		l.Spec.HolderIdentity, l.Spec.RenewTime, l.Spec.AcquireTime = &thief, &now, &now
		if _, err := leases.Update(t.Context(), l, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) {
			t.Fatal(err)
		}
	}
	stolen := time.Now()
	stealing, stopStealing := context.WithCancel(t.Context())
	go func() {
		for stealing.Err() == nil {
			steal()
			time.Sleep(200 * time.Millisecond)
		}
	}()
	eventually(t, 10*time.Second, func() (bool, string) {
		return seen(func(running map[string]bool, _ map[string]int) bool { return !running["a"] })
	})
	t.Logf("the work of a stopped %s after its lease was taken", time.Since(stolen).Round(10*time.Millisecond))
	consistently(t, 3*time.Second, func() (bool, string) {
		return seen(func(running map[string]bool, _ map[string]int) bool { return running["b"] && !running["a"] })
	})
	select {
	case err := <-done:
		t.Fatalf("the pool returned (%v) when one lease was lost", err)
	default:
	}

	// The thief stops renewing: a runs here again once its lease expires.
	stopStealing()
	eventually(t, 15*time.Second, func() (bool, string) {
		return seen(func(running map[string]bool, starts map[string]int) bool {
			return running["a"] && starts["a"] == 2 && starts["b"] == 1
		})
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ferry-env-a", "ferry-env-b"} {
		l, err := leases.Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if h := l.Spec.HolderIdentity; h != nil && *h != "" {
			t.Errorf("%s still held by %s after the pool stopped", name, *h)
		}
	}
	if _, err := leases.Get(t.Context(), "ferry-replica-ferry-a", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the presence lease outlives the pool: %v", err)
	}
}
