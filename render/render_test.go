package render

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// overlayRepo is a base with two overlays, the layout ferry's environments
// share.
var overlayRepo = files{
	"base/kustomization.yaml": `resources:
- deployment.yaml
- service.yaml
`,
	"base/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        envFrom:
        - configMapRef:
            name: settings
`,
	"base/service.yaml": `apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
`,
	"envs/staging/kustomization.yaml": `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- ../../base
namespace: staging
namePrefix: staging-
images:
- name: nginx
  newTag: "1.27"
patches:
- path: replicas.yaml
configMapGenerator:
- name: settings
  literals:
  - MODE=staging
  files:
  - app.properties
`,
	"envs/staging/replicas.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
`,
	"envs/staging/app.properties": "color=blue\n",
	"envs/production/kustomization.yaml": `resources:
- ../../base
namespace: production
images:
- name: nginx
  newName: registry.example.com/nginx
  digest: sha256:0000000000000000000000000000000000000000000000000000000000000000
`,
}

// with returns a copy of base with changes applied.
func with(base files, changes files) files {
	out := maps.Clone(base)
	maps.Copy(out, changes)
	return out
}

// ids lists objects as "Kind namespace/name".
func ids(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, fmt.Sprintf("%s %s/%s", o.GetKind(), o.GetNamespace(), o.GetName()))
	}
	return out
}

func render(t *testing.T, fs files, dir string) (*Result, error) {
	t.Helper()
	return NewRenderer(DefaultOptions()).Render(t.Context(), commitFiles(t, fs), dir)
}

func mustRender(t *testing.T, fs files, dir string) *Result {
	t.Helper()
	res, err := render(t, fs, dir)
	if err != nil {
		t.Fatalf("Render(%s): %v", dir, err)
	}
	return res
}

func find(t *testing.T, objs []*unstructured.Unstructured, kind, prefix string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && strings.HasPrefix(o.GetName(), prefix) {
			return o
		}
	}
	t.Fatalf("no %s named %s* in %v", kind, prefix, ids(objs))
	return nil
}

func TestRenderOverlay(t *testing.T) {
	res := mustRender(t, overlayRepo, "envs/staging")
	cm := find(t, res.Objects, "ConfigMap", "staging-settings-")
	// kustomize's legacy kind order; generated names carry a content hash.
	want := []string{
		"ConfigMap staging/" + cm.GetName(),
		"Service staging/staging-web",
		"Deployment staging/staging-web",
	}
	if got := ids(res.Objects); !equal(got, want) {
		t.Errorf("objects = %v, want %v", got, want)
	}

	dep := find(t, res.Objects, "Deployment", "staging-web")
	if n, _, _ := unstructured.NestedInt64(dep.Object, "spec", "replicas"); n != 3 {
		t.Errorf("replicas = %d, want 3 (from the patch)", n)
	}
	containers, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	c := containers[0].(map[string]any)
	if c["image"] != "nginx:1.27" {
		t.Errorf("image = %v, want nginx:1.27 (images transformer)", c["image"])
	}
	ref := c["envFrom"].([]any)[0].(map[string]any)["configMapRef"].(map[string]any)["name"]
	if ref != cm.GetName() {
		t.Errorf("envFrom configMapRef = %v, want the generated %s", ref, cm.GetName())
	}
	data, _, _ := unstructured.NestedStringMap(cm.Object, "data")
	if data["MODE"] != "staging" || data["app.properties"] != "color=blue\n" {
		t.Errorf("configMap data = %v", data)
	}
	if !strings.HasPrefix(res.Digest, "sha256:") || len(res.Digest) != len("sha256:")+64 {
		t.Errorf("digest = %q, want sha256:<64 hex>", res.Digest)
	}

	prod := mustRender(t, overlayRepo, "envs/production")
	if got, want := ids(prod.Objects), []string{"Service production/web", "Deployment production/web"}; !equal(got, want) {
		t.Errorf("production objects = %v, want %v", got, want)
	}
	dep = find(t, prod.Objects, "Deployment", "web")
	containers, _, _ = unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	if img := containers[0].(map[string]any)["image"]; img != "registry.example.com/nginx@sha256:0000000000000000000000000000000000000000000000000000000000000000" {
		t.Errorf("production image = %v", img)
	}
	if prod.Digest == res.Digest {
		t.Errorf("staging and production have the same digest")
	}
}

func equal(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }

func TestRenderPlainDirectory(t *testing.T) {
	fs := files{
		"envs/plain/b.yaml": `# leading comment
---
apiVersion: v1
kind: ConfigMap
metadata: {name: b1}
data: {when: 2024-01-02}
---
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: b2}
- apiVersion: v1
  kind: Secret
  metadata: {name: b3}
`,
		"envs/plain/a.json":          `{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}`,
		"envs/plain/sub/c.yml":       "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: c, namespace: ns}\n",
		"envs/plain/a.yaml.d/x.YAML": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
		"envs/plain/README.md":       "# not a manifest\n",
		"envs/plain/empty.yaml":      "---\n# nothing\n",
		"envs/plain/link.yaml":       "-> ../shared/d.yaml",
		"envs/shared/d.yaml":         "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: d}\n",
	}
	res := mustRender(t, fs, "envs/plain")
	want := []string{
		"Namespace /a",        // a.json
		"ConfigMap /x",        // a.yaml.d/x.YAML
		"ConfigMap /b1",       // b.yaml, document order
		"ConfigMap /b2",       // the List, flattened
		"Secret /b3",          //
		"ConfigMap /d",        // link.yaml, followed inside the repository
		"ServiceAccount ns/c", // sub/c.yml
	}
	if got := ids(res.Objects); !equal(got, want) {
		t.Errorf("objects = %v, want %v", got, want)
	}
	if when, _, _ := unstructured.NestedString(res.Objects[2].Object, "data", "when"); when != "2024-01-02" {
		t.Errorf("timestamp value = %q, want the text 2024-01-02", when)
	}
}

// errCase is a repository that must fail to render, and what the error must
// say.
type errCase struct {
	name string
	fs   files
	dir  string
	is   error    // errors.Is target, if any
	want []string // substrings of the error
}

func runErrCases(t *testing.T, tests []errCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := render(t, tt.fs, tt.dir)
			if err == nil {
				t.Fatalf("Render(%s) = %v, want an error", tt.dir, ids(res.Objects))
			}
			t.Logf("error: %v", err)
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %v", err, tt.is)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestRenderBrokenManifests(t *testing.T) {
	runErrCases(t, []errCase{{
		name: "broken YAML in a plain directory names file and line",
		fs: files{"envs/staging/deploy.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: name: web
spec: {}
`},
		dir:  "envs/staging",
		want: []string{"envs/staging render: envs/staging/deploy.yaml: yaml: line 3:"},
	}, {
		name: "lines count from the start of the file, not the document",
		fs: files{"envs/staging/two.yaml": `apiVersion: v1
kind: ConfigMap
metadata: {name: one}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: two
  labels: a: b
`},
		dir:  "envs/staging",
		want: []string{"envs/staging/two.yaml: yaml: line 9:"},
	}, {
		name: "every broken file is reported",
		fs: files{
			"envs/staging/a.yaml": "a: [\n",
			"envs/staging/b.yaml": "apiVersion: v1\nkind: ConfigMap\nkind: Secret\n",
		},
		dir:  "envs/staging",
		want: []string{"envs/staging/a.yaml: yaml: line", "envs/staging/b.yaml: yaml: unmarshal errors:\n  line 3: mapping key \"kind\" already defined at line 2"},
	}, {
		name: "object without kind",
		fs:   files{"envs/staging/cm.yaml": "apiVersion: v1\nmetadata: {name: x}\n"},
		dir:  "envs/staging",
		want: []string{"envs/staging/cm.yaml: line 1: object has no kind"},
	}, {
		name: "broken kustomization file names file and line",
		fs: files{"envs/staging/kustomization.yaml": `resources:
- a.yaml
 - b.yaml: [
`},
		dir:  "envs/staging",
		want: []string{"envs/staging/kustomization.yaml: invalid Kustomization: yaml: line 3:"},
	}, {
		name: "broken YAML in a kustomization's resource names the file",
		fs: with(overlayRepo, files{"base/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: name: web
`}),
		dir:  "envs/staging",
		want: []string{"envs/staging render: kustomize build:", "deployment.yaml", "line 3"},
	}, {
		name: "plain directory without manifests",
		fs:   files{"envs/staging/README.md": "nothing to see\n"},
		dir:  "envs/staging",
		is:   errNoManifests,
		want: []string{"envs/staging render: envs/staging: no kustomization and no YAML or JSON files"},
	}, {
		name: "directory missing",
		fs:   overlayRepo,
		dir:  "envs/qa",
		is:   errMissing,
		want: []string{"envs/qa render: envs/qa: does not exist in the repository"},
	}, {
		name: "directory is a file",
		fs:   overlayRepo,
		dir:  "base/service.yaml",
		want: []string{"base/service.yaml: not a directory"},
	}})
}

func TestRenderKustomizeErrors(t *testing.T) {
	runErrCases(t, []errCase{{
		name: "missing resource",
		fs: with(overlayRepo, files{"envs/staging/kustomization.yaml": `resources:
- ../../base
- missing.yaml
`}),
		dir:  "envs/staging",
		is:   errMissing,
		want: []string{`envs/staging render: envs/staging/kustomization.yaml: resources entry "missing.yaml": does not exist in the repository`},
	}, {
		name: "missing resource in a base",
		fs: with(overlayRepo, files{"base/kustomization.yaml": `resources:
- deployment.yaml
- gone.yaml
`}),
		dir:  "envs/staging",
		is:   errMissing,
		want: []string{`envs/staging/kustomization.yaml: resources entry "../../base": base/kustomization.yaml: resources entry "gone.yaml": does not exist`},
	}, {
		name: "missing patch file",
		fs: with(overlayRepo, files{"envs/staging/kustomization.yaml": `resources: [../../base]
patches:
- path: nope.yaml
`}),
		dir:  "envs/staging",
		is:   errMissing,
		want: []string{`envs/staging/kustomization.yaml: patches entry "nope.yaml": does not exist`},
	}, {
		name: "missing configMapGenerator file",
		fs: with(overlayRepo, files{"envs/staging/kustomization.yaml": `resources: [../../base]
configMapGenerator:
- name: settings
  files: [key=nope.properties]
`}),
		dir:  "envs/staging",
		is:   errMissing,
		want: []string{`envs/staging/kustomization.yaml: configMapGenerator "settings" entry "nope.properties": does not exist`},
	}, {
		name: "patch with no target, from kustomize itself",
		fs: with(overlayRepo, files{"envs/staging/replicas.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: nope
spec:
  replicas: 3
`}),
		dir:  "envs/staging",
		want: []string{"envs/staging render: kustomize build:", "nope"},
	}, {
		name: "file outside the kustomization root (load restrictions)",
		fs: with(overlayRepo, files{"envs/staging/kustomization.yaml": `resources:
- ../../base/service.yaml
`}),
		dir:  "envs/staging",
		want: []string{"envs/staging render: kustomize build:", "is not in or below"},
	}, {
		name: "helm is off",
		fs: with(overlayRepo, files{"envs/staging/kustomization.yaml": `helmCharts:
- name: nginx
  repo: https://charts.example.com
`}),
		dir:  "envs/staging",
		is:   errHelm,
		want: []string{"envs/staging/kustomization.yaml: helm charts are disabled"},
	}})
}

func TestRenderRefusesEscapes(t *testing.T) {
	runErrCases(t, []errCase{{
		name: "dot-dot resource",
		fs: with(overlayRepo, files{"envs/staging/kustomization.yaml": `resources:
- ../../../etc
`}),
		dir:  "envs/staging",
		is:   errEscape,
		want: []string{`envs/staging/kustomization.yaml: resources entry "../../../etc": path escapes the repository`},
	}, {
		name: "absolute resource",
		fs: with(overlayRepo, files{"envs/staging/kustomization.yaml": `resources:
- /etc/passwd
`}),
		dir:  "envs/staging",
		is:   errEscape,
		want: []string{`resources entry "/etc/passwd": path escapes the repository`},
	}, {
		name: "symlinked resource out of the repository",
		fs: with(overlayRepo, files{
			"envs/staging/kustomization.yaml": "resources:\n- secret.yaml\n",
			"envs/staging/secret.yaml":        "-> ../../../../etc/passwd",
		}),
		dir:  "envs/staging",
		is:   errEscape,
		want: []string{`resources entry "secret.yaml": symlink envs/staging/secret.yaml -> ../../../../etc/passwd: path escapes the repository`},
	}, {
		name: "absolute symlink in a plain directory",
		fs: files{
			"envs/staging/ok.yaml":     "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n",
			"envs/staging/passwd.yaml": "-> /etc/passwd",
		},
		dir:  "envs/staging",
		is:   errEscape,
		want: []string{"envs/staging/passwd.yaml: symlink envs/staging/passwd.yaml -> /etc/passwd: path escapes the repository"},
	}, {
		name: "symlinked base directory out of the repository",
		fs: with(overlayRepo, files{
			"envs/staging/kustomization.yaml": "resources:\n- base\n",
			"envs/staging/base":               "-> ../../..",
		}),
		dir:  "envs/staging",
		is:   errEscape,
		want: []string{`resources entry "base": symlink envs/staging/base -> ../../..: path escapes the repository`},
	}, {
		name: "generator file out of the repository",
		fs: with(overlayRepo, files{"envs/staging/kustomization.yaml": `secretGenerator:
- name: creds
  files: [../../../../root/.ssh/id_rsa]
`}),
		dir:  "envs/staging",
		is:   errEscape,
		want: []string{`secretGenerator "creds" entry "../../../../root/.ssh/id_rsa": path escapes the repository`},
	}, {
		name: "directory argument with dot-dot",
		fs:   overlayRepo,
		dir:  "../../etc",
		is:   errEscape,
		want: []string{"../../etc render: path escapes the repository"},
	}, {
		name: "absolute directory argument",
		fs:   overlayRepo,
		dir:  "/etc",
		is:   errEscape,
		want: []string{"/etc render: path escapes the repository"},
	}})
}

func TestRenderFollowsSymlinksInsideTheRepository(t *testing.T) {
	fs := with(overlayRepo, files{
		// A linked base directory, and a linked patch inside the
		// kustomization root: both followed.
		"envs/staging/kustomization.yaml": `resources:
- base
patches:
- path: patch.yaml
`,
		"envs/staging/base":                  "-> ../../base",
		"envs/staging/patch.yaml":            "-> patches/replicas.yaml",
		"envs/staging/patches/replicas.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 5}\n",
	})
	res := mustRender(t, fs, "envs/staging")
	dep := find(t, res.Objects, "Deployment", "web")
	if n, _, _ := unstructured.NestedInt64(dep.Object, "spec", "replicas"); n != 5 {
		t.Errorf("replicas = %d, want 5 from the linked patch", n)
	}

	// A link inside the kustomization root to a file outside it is a load
	// from outside the root: kustomize's root-only restriction applies to
	// the target, as on disk.
	fs = with(overlayRepo, files{
		"envs/staging/kustomization.yaml": "resources:\n- svc.yaml\n",
		"envs/staging/svc.yaml":           "-> ../../base/service.yaml",
	})
	if _, err := render(t, fs, "envs/staging"); err == nil || !strings.Contains(err.Error(), "is not in or below") {
		t.Errorf("linked file outside the kustomization root: error = %v, want the load restriction", err)
	}
}

func TestRenderContext(t *testing.T) {
	r := NewRenderer(DefaultOptions())
	tree := commitFiles(t, overlayRepo)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := r.Render(ctx, tree, "envs/staging")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Render with a cancelled context: error = %v, want context.Canceled", err)
	}
	if n := r.builds.Load(); n != 0 {
		t.Errorf("builds = %d after a cancelled call, want 0", n)
	}
}
