package render

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
)

// withKustomization is overlayRepo with envs/staging's kustomization replaced,
// plus extra files.
func withKustomization(k string, extra files) files {
	return with(with(overlayRepo, files{"envs/staging/kustomization.yaml": k}), extra)
}

func TestRenderRefusesRemoteBases(t *testing.T) {
	runErrCases(t, []errCase{{
		name: "https base",
		fs:   withKustomization("resources:\n- https://github.com/example/app//base?ref=v1\n", nil),
		dir:  "envs/staging",
		is:   errRemote,
		want: []string{`envs/staging/kustomization.yaml: resources entry "https://github.com/example/app//base?ref=v1": remote bases are disabled`},
	}, {
		name: "github shorthand, even where it exists as a local directory",
		fs: withKustomization("resources:\n- github.com/example/app\n", files{
			"envs/staging/github.com/example/app/kustomization.yaml": "resources: []\n",
		}),
		dir:  "envs/staging",
		is:   errRemote,
		want: []string{`resources entry "github.com/example/app": remote bases are disabled`},
	}, {
		name: "scp-style address",
		fs:   withKustomization("resources:\n- git@git.example.com:org/app.git//base\n", nil),
		dir:  "envs/staging",
		is:   errRemote,
		want: []string{`resources entry "git@git.example.com:org/app.git//base": remote bases are disabled`},
	}, {
		name: "git:: prefix",
		fs:   withKustomization("resources:\n- git::https://git.example.com/org/app.git\n", nil),
		dir:  "envs/staging",
		is:   errRemote,
	}, {
		name: "remote file",
		fs:   withKustomization("resources:\n- https://raw.example.com/org/app/main/deploy.yaml\n", nil),
		dir:  "envs/staging",
		is:   errRemote,
	}, {
		name: "unknown host path, which kustomize would try to clone",
		fs:   withKustomization("resources:\n- git.example.com/org/app/base\n", nil),
		dir:  "envs/staging",
		is:   errRemote,
		want: []string{`resources entry "git.example.com/org/app/base": does not exist in the repository, and remote bases are disabled`},
	}, {
		name: "deprecated bases field",
		fs:   withKustomization("bases:\n- https://github.com/example/app//base\n", nil),
		dir:  "envs/staging",
		is:   errRemote,
		want: []string{`resources entry "https://github.com/example/app//base": remote bases are disabled`},
	}, {
		name: "remote component",
		fs:   withKustomization("resources: [../../base]\ncomponents:\n- https://github.com/example/components//tls\n", nil),
		dir:  "envs/staging",
		is:   errRemote,
		want: []string{`components entry "https://github.com/example/components//tls"`},
	}, {
		name: "remote base inside a base names the base's kustomization",
		fs: with(overlayRepo, files{
			"base/kustomization.yaml": "resources:\n- deployment.yaml\n- https://github.com/example/shared//base\n",
		}),
		dir:  "envs/staging",
		is:   errRemote,
		want: []string{`base/kustomization.yaml: resources entry "https://github.com/example/shared//base": remote bases are disabled`},
	}, {
		name: "remote patch, openapi, configuration, transformer and generator file",
		fs: withKustomization(`resources: [../../base]
patches:
- path: https://example.com/patch.yaml
openapi:
  path: https://example.com/schema.json
configurations:
- https://example.com/config.yaml
transformers:
- https://example.com/transformer.yaml
configMapGenerator:
- name: settings
  files: [app=https://example.com/app.properties]
  envs: [https://example.com/app.env]
`, nil),
		dir: "envs/staging",
		is:  errRemote,
		want: []string{
			`patches entry "https://example.com/patch.yaml"`,
			`openapi entry "https://example.com/schema.json"`,
			`configurations entry "https://example.com/config.yaml"`,
			`transformers entry "https://example.com/transformer.yaml"`,
			`configMapGenerator "settings" entry "https://example.com/app.properties"`,
			`configMapGenerator "settings" entry "https://example.com/app.env"`,
		},
	}})
}

func TestRenderInlinePatchesAndTransformersAreNotPaths(t *testing.T) {
	fs := withKustomization(`resources: [../../base]
patchesStrategicMerge:
- |-
  apiVersion: apps/v1
  kind: Deployment
  metadata: {name: web}
  spec: {replicas: 4}
transformers:
- |-
  apiVersion: builtin
  kind: LabelTransformer
  metadata: {name: team}
  labels: {team: payments}
  fieldSpecs: [{path: metadata/labels, create: true}]
`, nil)
	res := mustRender(t, fs, "envs/staging")
	dep := find(t, res.Objects, "Deployment", "web")
	if dep.GetLabels()["team"] != "payments" {
		t.Errorf("labels = %v, want team=payments from the inline transformer", dep.GetLabels())
	}
}

func TestLooksRemote(t *testing.T) {
	tests := []struct {
		entry string
		want  bool
	}{
		{"https://github.com/org/repo//base?ref=v1", true},
		{"HTTP://example.com/x.yaml", true},
		{"ssh://git@example.com/org/repo.git", true},
		{"file:///srv/git/repo.git", true},
		{"git::https://example.com/org/repo", true},
		{"git@github.com:org/repo.git", true},
		{"deploy@git.example.com:org/repo", true},
		{"github.com/org/repo", true},
		{"GitHub.com:org/repo", true},
		{"../../base", false},
		{"deployment.yaml", false},
		{"github.com.yaml", false},
		{"envs/github.com/org", false},
		{"user@host.yaml", true}, // an scp-style address to kustomize
	}
	for _, tt := range tests {
		if got := looksRemote(tt.entry); got != tt.want {
			t.Errorf("looksRemote(%q) = %v, want %v", tt.entry, got, tt.want)
		}
	}
}

func TestIsInline(t *testing.T) {
	tests := []struct {
		entry string
		want  bool
	}{
		{"patch.yaml", false},
		{"../base", false},
		{"{apiVersion: builtin, kind: LabelTransformer}", true},
		{"apiVersion: v1\nkind: ConfigMap\n", true},
		{"kind: Deployment", true},
		{"[a, b]", false},
	}
	for _, tt := range tests {
		if got := isInline(tt.entry); got != tt.want {
			t.Errorf("isInline(%q) = %v, want %v", tt.entry, got, tt.want)
		}
	}
}

// fakeGit puts a `git` on PATH that records that it ran, and returns the
// file it records into.
func fakeGit(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	marker := filepath.Join(dir, "git-ran")
	script := "#!/bin/sh\necho \"$@\" >> " + marker + "\nexit 1\n"
	if err := os.WriteFile(filepath.Join(dir, "git"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	return marker
}

// TestRenderRunsNoGitAndNoNetwork renders overlays with remote entries and
// checks that no git process ran and no HTTP request was made. The
// "kustomize alone" subtest shows the harness sees both when kustomize runs
// without ferry's check.
func TestRenderRunsNoGitAndNoNetwork(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: remote}\n"))
	}))
	defer srv.Close()
	marker := fakeGit(t)

	entries := []string{
		srv.URL + "/deploy.yaml",
		srv.URL + "/org/app.git//base",
		"github.com/example/app/base?ref=v1",
		"git@git.example.com:org/app.git",
		"git.example.com/org/app",
	}
	r := NewRenderer(DefaultOptions())
	for _, e := range entries {
		tree := commitFiles(t, withKustomization("resources:\n- "+e+"\n", nil))
		if _, err := r.Render(t.Context(), tree, "envs/staging"); err == nil || !strings.Contains(err.Error(), "remote bases are disabled") {
			t.Errorf("resource %s: error = %v, want remote bases are disabled", e, err)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		b, _ := os.ReadFile(marker)
		t.Errorf("git ran: %s", b)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("%d HTTP requests were made", n)
	}

	t.Run("kustomize alone", func(t *testing.T) {
		build := func(entry string) {
			tree := commitFiles(t, withKustomization("resources:\n- "+entry+"\n", nil))
			kustomizeMu.Lock()
			defer kustomizeMu.Unlock()
			_, _ = krusty.MakeKustomizer(kustomizeOptions()).Run(NewTreeFS(tree), "/repo/envs/staging")
		}
		build("github.com/example/app/base?ref=v1")
		if _, err := os.Stat(marker); err != nil {
			t.Errorf("kustomize alone did not run git (%v): the harness cannot see a clone", err)
		}
		build(srv.URL + "/deploy.yaml")
		if hits.Load() == 0 {
			t.Errorf("kustomize alone made no HTTP request: the harness cannot see a fetch")
		}
	})
}
