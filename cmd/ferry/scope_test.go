package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestScopeCommand: ferry scope prints the environment's RBAC from its
// scope, saying that a glob cannot be bound.
func TestScopeCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ferry.yaml")
	cfg := `environments:
  - name: staging
    source: {url: https://git.example.com/app.git, branch: main, path: envs/staging}
    scope: {namespaces: [staging, "staging-*"], clusterKinds: [Namespace]}
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"scope", "staging", "--config", path})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"kind: ServiceAccount\nmetadata:\n  labels:\n    app.kubernetes.io/managed-by: ferry\n    ferry.dev/scope-of: staging\n  name: ferry-env-staging\n  namespace: ferry-system\n",
		"kind: RoleBinding\nmetadata:\n  labels:\n    app.kubernetes.io/managed-by: ferry\n    ferry.dev/scope-of: staging\n  name: ferry-env-staging\n  namespace: staging\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: admin\n",
		`# scope.namespaces "staging-*" is a glob, and RBAC cannot bind a glob`,
		"  resourceNames:\n  - staging\n  resources:\n  - namespaces\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks\n%s\n--- output:\n%s", want, out.String())
		}
	}
	root = newRoot()
	root.SetArgs([]string{"scope", "production", "--config", path})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), `no environment "production"`) {
		t.Errorf("unknown environment: %v", err)
	}
}
