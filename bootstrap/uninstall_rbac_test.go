package bootstrap

import (
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"ferry.dev/ferry/scope"
)

// TestOfInstall: uninstall removes the environments' RBAC of its own
// install, as scope.RBAC writes it, and not another install's, nor the
// built-in roles the bindings name.
func TestOfInstall(t *testing.T) {
	var objs []*unstructured.Unstructured
	for _, g := range []scope.Grant{
		{Scope: scope.Scope{Environment: "staging", Namespaces: []string{"staging"}, ClusterKinds: []string{"Namespace"}}, Namespace: "ferry-system"},
		{Scope: scope.Scope{Environment: "infra", ClusterAdmin: true}, Namespace: "ferry-system"},
		{Scope: scope.Scope{Environment: "other", Namespaces: []string{"other"}, ClusterKinds: []string{"Namespace"}}, Namespace: "ops"},
	} {
		data, err := scope.RBAC(g)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range splitDocs(data) {
			u := &unstructured.Unstructured{}
			if err := yaml.Unmarshal(doc, &u.Object); err != nil {
				t.Fatal(err)
			}
			if u.GetKind() != "ServiceAccount" && u.Object != nil {
				objs = append(objs, u)
			}
		}
	}
	var got []string
	for _, o := range ofInstall(objs, "ferry-system") {
		got = append(got, o.GetKind()+"/"+o.GetNamespace()+"/"+o.GetName())
	}
	slices.Sort(got)
	want := []string{
		"ClusterRole//ferry-env-staging",
		"ClusterRoleBinding//ferry-env-infra-cluster-admin",
		"ClusterRoleBinding//ferry-env-staging",
		"RoleBinding/staging/ferry-env-staging",
	}
	if !slices.Equal(got, want) {
		t.Errorf("ofInstall = %q, want %q", got, want)
	}
}

func splitDocs(data []byte) [][]byte {
	var out [][]byte
	start := 0
	for i := 0; i+4 <= len(data); i++ {
		if string(data[i:i+4]) == "---\n" && (i == 0 || data[i-1] == '\n') {
			out = append(out, data[start:i])
			start = i + 4
		}
	}
	return append(out, data[start:])
}
