package sandbox

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

//go:embed app
var sampleApp embed.FS

// SampleRepo is the name of the sample application's repository.
const SampleRepo = "shop"

// Sample is the sample application seeded on a forge and a cluster: a
// repository with branches main (staging) and production, a namespace per
// environment, and ferry's configuration for both.
type Sample struct {
	// Clone is a working copy of the repository, on main.
	Clone *Clone
	// Commit is the first commit, the tip of main and production.
	Commit string
	// ConfigPath is ferry's configuration: staging follows main and
	// promotes to production by push; both revert on failure.
	ConfigPath string
}

// SampleFiles returns the sample application's files, slash path → content:
// a kustomize base (Deployment, Service, ConfigMap) and one overlay per
// environment under envs/.
func SampleFiles() (map[string]string, error) {
	files := map[string]string{}
	err := fs.WalkDir(sampleApp, "app", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := sampleApp.ReadFile(p)
		files[strings.TrimPrefix(p, "app/")] = string(data)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sample application: %w", err)
	}
	return files, nil
}

// SeedSample creates the sample repository on g, its branches and the
// namespaces staging and production on c, and writes the forge token and
// ferry's configuration under work.
func SeedSample(ctx context.Context, c *Cluster, g *Gitea, work string) (*Sample, error) {
	files, err := SampleFiles()
	if err != nil {
		return nil, err
	}
	if _, err := g.CreateRepo(SampleRepo); err != nil {
		return nil, err
	}
	clone, err := g.Clone(ctx, SampleRepo, filepath.Join(work, SampleRepo))
	if err != nil {
		return nil, err
	}
	sha, err := clone.CommitAndPush(ctx, files, "Add the shop")
	if err != nil {
		return nil, err
	}
	if err := clone.Push(ctx, "main:production"); err != nil {
		return nil, err
	}
	for _, ns := range []string{"staging", "production"} {
		obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
		if _, err := c.Client.CoreV1().Namespaces().Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("namespace %s: %w", ns, err)
		}
	}
	tokenFile := filepath.Join(work, "git-token")
	if err := os.WriteFile(tokenFile, []byte(g.Token), 0o600); err != nil {
		return nil, err
	}
	cfg := "namespace: ferry-system\nenvironments:\n"
	for _, e := range []struct{ name, branch, promote string }{
		{"staging", "main", "    promote: {to: production, mode: push}\n"},
		{"production", "production", ""},
	} {
		cfg += fmt.Sprintf(`  - name: %[1]s
    source: {url: %[3]s, branch: %[2]s, path: envs/%[1]s, interval: 2s, auth: {tokenFile: %[4]s}}
    cluster: {kubeconfig: %[5]s}
    namespace: %[1]s
    health: {timeout: 1m, interval: 500ms, soak: 3s}
    onFailure: revert
`, e.name, e.branch, g.CloneURL(SampleRepo), tokenFile, c.Kubeconfig) + e.promote
	}
	path := filepath.Join(work, "ferry.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	return &Sample{Clone: clone, Commit: sha, ConfigPath: path}, nil
}
