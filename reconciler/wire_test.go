package reconciler

import (
	"path/filepath"
	"strings"
	"testing"

	"ferry.dev/ferry/config"
)

// TestOneShotCommandsShareTheWiring pins that the one-shot commands go
// through wire: an unknown environment is named, and a cluster that cannot
// be reached says what to set, before any git or cluster call.
func TestOneShotCommandsShareTheWiring(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-kubeconfig")
	cfg, err := config.Parse([]byte(`
environments:
  - name: dev
    source: {url: https://git.example.com/app.git, branch: main, path: .}
    cluster: {kubeconfig: ` + missing + `}
`))
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{CacheDir: t.TempDir()}
	ctx := t.Context()
	for name, call := range map[string]func(env string) error{
		"LoadState": func(env string) error { _, err := LoadState(ctx, cfg, env, opts); return err },
		"Release":   func(env string) error { _, err := Release(ctx, cfg, env, "abcdef0", opts); return err },
		"Rollback":  func(env string) error { _, err := Rollback(ctx, cfg, env, "", opts); return err },
		"Plan":      func(env string) error { _, err := PlanEnvironment(ctx, cfg, env, "", opts); return err },
	} {
		if err := call("nope"); err == nil || err.Error() != `environment "nope" is not configured` {
			t.Errorf("%s of an unknown environment: %v", name, err)
		}
		if err := call("dev"); err == nil || !strings.HasPrefix(err.Error(), "environment dev: kubeconfig") || !strings.Contains(err.Error(), "set cluster.kubeconfig") {
			t.Errorf("%s without a cluster: %v", name, err)
		}
	}
	if _, err := NewManager(ctx, cfg, opts); err == nil || !strings.Contains(err.Error(), "environment dev: kubeconfig") {
		t.Errorf("NewManager without a cluster: %v", err)
	}
}
