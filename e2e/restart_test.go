package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/apply"
)

// buildFerry builds the ferry binary once per test run.
func buildFerry(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ferry")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "../cmd/ferry")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ferry: %v\n%s", err, out)
	}
	return bin
}

func startFerryProcess(t *testing.T, bin, configPath string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "run", "--config", configPath)
	logf, err := os.Create(filepath.Join(t.TempDir(), "ferry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			data, _ := os.ReadFile(logf.Name())
			t.Logf("ferry log:\n%s", data)
		}
	})
	return cmd
}

// TestKillDuringApply: ferry killed in the middle of applying a revision
// converges after a restart, and its inventory holds every object.
func TestKillDuringApply(t *testing.T) {
	const n = 400
	files := map[string]string{}
	for i := range n {
		files[fmt.Sprintf("envs/staging/cm-%03d.yaml", i)] = fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%03d\ndata:\n  i: %q\n", i, fmt.Sprint(i))
	}
	e := newTestEnv(t, files)
	commit, _ := e.wc.Git(t.Context(), "rev-parse", "HEAD")
	bin := buildFerry(t)
	cfgPath := filepath.Join(t.TempDir(), "ferry.yaml")
	if err := os.WriteFile(cfgPath, []byte(e.configYAML()+"server: {addr: \"127.0.0.1:0\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	owned := func() int {
		list := &corev1.ConfigMapList{}
		if err := e.c.List(t.Context(), list, client.InNamespace(e.ns), client.MatchingLabels{apply.OwnerLabel: e.name}); err != nil {
			t.Fatal(err)
		}
		return len(list.Items)
	}

	first := startFerryProcess(t, bin, cfgPath)
	var at int
	eventually(t, 2*time.Minute, func() (bool, string) {
		at = owned()
		return at > 0, "nothing applied yet"
	})
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = first.Process.Wait()
	at = owned()
	t.Logf("killed with %d of %d objects applied", at, n)
	if at == n {
		t.Log("the whole apply finished before the kill; the restart still has to keep everything")
	}

	second := startFerryProcess(t, bin, cfgPath)
	requireHealthy(t, e.waitVerdict(t, commit, 3*time.Minute))
	if got := owned(); got != n {
		t.Fatalf("%d objects after restart, want %d", got, n)
	}
	if inv := e.state(t).Inventory; len(inv) != n {
		t.Fatalf("inventory holds %d objects, want %d", len(inv), n)
	}

	// SIGTERM stops ferry cleanly.
	if err := second.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- second.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("ferry run after SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("ferry run did not stop within 20s of SIGTERM")
	}
}
