package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestDiff runs `ferry diff` against a converged environment: no changes
// exits 0; a branch with a changed image, a changed Secret and a removed
// file exits 1 and shows them, with Secret values masked; an unknown
// environment exits 2.
func TestDiff(t *testing.T) {
	files := appFiles("v1")
	files["envs/staging/secret.yaml"] = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  password: hunter2-old\n"
	files["envs/staging/kustomization.yaml"] = "resources:\n  - ../../base\n  - extra.yaml\n  - secret.yaml\nimages:\n  - name: registry.invalid/web\n    newTag: v1\n"
	e := newEnv(t, files)
	first := e.head(t)
	e.start(t)
	requireHealthy(t, e.waitVerdict(t, e.name, first, 2*time.Minute))

	bin := buildFerry(t)
	cfgPath := writeConfig(t, e.config())
	diff := func(args ...string) (string, int) {
		return ferryCLI(t, bin, cfgPath, append([]string{"diff"}, args...)...)
	}

	if out, code := diff(e.name); code != 0 || !strings.Contains(out, "0 to create, 0 to change, 0 to prune") {
		t.Fatalf("diff of the applied branch: exit %d\n%s", code, out)
	}

	e.git(t, "checkout", "--quiet", "-b", "preview")
	e.push(t, map[string]string{
		"envs/staging/secret.yaml":        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  password: hunter2-new\n",
		"envs/staging/kustomization.yaml": "resources:\n  - ../../base\n  - secret.yaml\nimages:\n  - name: registry.invalid/web\n    newTag: v2\n",
	}, []string{"envs/staging/extra.yaml"}, "Preview changes")
	if err := e.wc.Push(t.Context(), "preview"); err != nil {
		t.Fatal(err)
	}
	out, code := diff(e.name, "--ref", "preview")
	if code != 1 {
		t.Fatalf("diff with changes: exit %d, want 1\n%s", code, out)
	}
	for _, want := range []string{"0 to create, 2 to change, 1 to prune", "change Deployment/" + e.ns + "/web", "+      - image: registry.invalid/web:v2",
		"change Secret/" + e.ns + "/creds", "prune ConfigMap/" + e.ns + "/extra"} {
		if !strings.Contains(out, want) {
			t.Errorf("diff output lacks %q", want)
		}
	}
	if strings.Contains(out, "hunter2") || strings.Contains(out, "aHVudGVyMi") {
		t.Errorf("diff output shows a Secret value")
	}
	if t.Failed() {
		t.Logf("diff output:\n%s", out)
	}

	t.Log("a branch writing outside the environment's scope is refused, not dry-run")
	e.push(t, map[string]string{
		"envs/staging/crb.yaml":           "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: mallory\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\nsubjects: [{kind: User, name: mallory, apiGroup: rbac.authorization.k8s.io}]\n",
		"envs/staging/kustomization.yaml": "resources:\n  - ../../base\n  - secret.yaml\n  - crb.yaml\n",
	}, nil, "Bind cluster-admin")
	if err := e.wc.Push(t.Context(), "preview"); err != nil {
		t.Fatal(err)
	}
	if out, code := diff(e.name, "--ref", "preview"); code != 2 || !strings.Contains(out, "ClusterRoleBinding/mallory (envs/staging/crb.yaml) is cluster-scoped") {
		t.Fatalf("diff of an out-of-scope branch: exit %d, want 2 and the scope's refusal\n%s", code, out)
	}

	if out, code := diff("no-such-env"); code != 2 || !strings.Contains(out, "no-such-env") {
		t.Fatalf("diff of an unknown environment: exit %d\n%s", code, out)
	}
}
