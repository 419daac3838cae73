package scope_test

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"ferry.dev/ferry/scope"
)

// documents splits a YAML stream into objects, keyed Kind/namespace/name.
func documents(t *testing.T, data []byte) map[string]*unstructured.Unstructured {
	t.Helper()
	out := map[string]*unstructured.Unstructured{}
	for _, doc := range bytes.Split(data, []byte("\n---\n")) {
		if bytes.HasPrefix(doc, []byte("#")) || len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(bytes.TrimPrefix(doc, []byte("---\n")), &u.Object); err != nil {
			t.Fatalf("%v\n%s", err, doc)
		}
		out[u.GetKind()+"/"+u.GetNamespace()+"/"+u.GetName()] = u
	}
	return out
}

func rules(t *testing.T, u *unstructured.Unstructured) []rbacv1.PolicyRule {
	t.Helper()
	var cr rbacv1.ClusterRole
	data, _ := yaml.Marshal(u.Object)
	if err := yaml.Unmarshal(data, &cr); err != nil {
		t.Fatal(err)
	}
	return cr.Rules
}

func TestRBAC(t *testing.T) {
	s := staging
	s.ClusterKinds = []string{"Namespace", "ClusterRole"}
	data, err := scope.RBAC(scope.Grant{Scope: s, Namespace: "ferry-system"})
	if err != nil {
		t.Fatal(err)
	}
	docs := documents(t, data)
	var keys []string
	for k := range docs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{
		"ClusterRole//ferry-env-staging",
		"ClusterRoleBinding//ferry-env-staging",
		"RoleBinding/staging/ferry-env-staging",
		"ServiceAccount/ferry-system/ferry-env-staging",
	}
	if !slices.Equal(keys, want) {
		t.Fatalf("objects = %q, want %q\n%s", keys, want, data)
	}
	rb := docs["RoleBinding/staging/ferry-env-staging"]
	if name, _, _ := unstructured.NestedString(rb.Object, "roleRef", "name"); name != "admin" {
		t.Errorf("RoleBinding binds %q, want the built-in admin", name)
	}
	subjects, _, _ := unstructured.NestedSlice(rb.Object, "subjects")
	if len(subjects) != 1 || subjects[0].(map[string]any)["namespace"] != "ferry-system" {
		t.Errorf("subjects = %v", subjects)
	}
	rs := rules(t, docs["ClusterRole//ferry-env-staging"])
	if len(rs) != 2 || !slices.Equal(rs[0].Resources, []string{"namespaces"}) || !slices.Equal(rs[0].ResourceNames, []string{"staging"}) ||
		slices.Contains(rs[0].Verbs, "list") || rs[1].APIGroups[0] != "rbac.authorization.k8s.io" || rs[1].Resources[0] != "clusterroles" {
		t.Errorf("rules = %+v", rs)
	}
	for _, r := range rs {
		for _, f := range [][]string{r.APIGroups, r.Resources, r.Verbs, r.ResourceNames} {
			if slices.Contains(f, "*") {
				t.Errorf("wildcard in %+v", r)
			}
		}
	}
	if !strings.Contains(string(data), `# scope.namespaces "staging-*" is a glob, and RBAC cannot bind a glob`) {
		t.Errorf("no word on the glob:\n%s", data)
	}
	if strings.Contains(string(data), "creationTimestamp") {
		t.Errorf("output carries creationTimestamp:\n%s", data)
	}
}

func TestRBACClusterAdminAndErrors(t *testing.T) {
	data, err := scope.RBAC(scope.Grant{Scope: scope.Scope{Environment: "infra", ClusterAdmin: true}, Namespace: "ferry-system", ServiceAccount: "ferry-install"})
	if err != nil {
		t.Fatal(err)
	}
	docs := documents(t, data)
	crb := docs["ClusterRoleBinding//ferry-install-cluster-admin"]
	if crb == nil || len(docs) != 2 {
		t.Fatalf("objects = %v\n%s", docs, data)
	}
	if name, _, _ := unstructured.NestedString(crb.Object, "roleRef", "name"); name != "cluster-admin" {
		t.Errorf("binds %q", name)
	}
	if _, err := scope.RBAC(scope.Grant{Scope: scope.Scope{Environment: "x", ClusterKinds: []string{"Gadget"}}, Namespace: "ferry-system"}); err == nil ||
		!strings.Contains(err.Error(), "Gadget") {
		t.Errorf("unknown kind: %v", err)
	}
	// Only globs: no namespace to bind, no Namespace rule.
	data, err = scope.RBAC(scope.Grant{Scope: scope.Scope{Environment: "x", Namespaces: []string{"x-*"}, ClusterKinds: []string{"Namespace"}}, Namespace: "ferry-system"})
	if err != nil {
		t.Fatal(err)
	}
	if docs := documents(t, data); len(docs) != 1 {
		t.Errorf("objects = %v, want the ServiceAccount alone", docs)
	}
}

func ExampleRBAC() {
	data, _ := scope.RBAC(scope.Grant{
		Scope:     scope.Scope{Environment: "staging", Namespaces: []string{"staging"}, ClusterKinds: []string{"Namespace"}},
		Namespace: "ferry-system",
	})
	os.Stdout.Write(data)
	// Output:
	// # RBAC of environment staging, from its scope (ferry scope staging).
	// # ferry impersonates ServiceAccount ferry-system/ferry-env-staging for every request it makes for staging,
	// # so the API server enforces the scope too.
	// ---
	// apiVersion: v1
	// kind: ServiceAccount
	// metadata:
	//   labels:
	//     app.kubernetes.io/managed-by: ferry
	//     ferry.dev/scope-of: staging
	//   name: ferry-env-staging
	//   namespace: ferry-system
	// ---
	// apiVersion: rbac.authorization.k8s.io/v1
	// kind: RoleBinding
	// metadata:
	//   labels:
	//     app.kubernetes.io/managed-by: ferry
	//     ferry.dev/scope-of: staging
	//   name: ferry-env-staging
	//   namespace: staging
	// roleRef:
	//   apiGroup: rbac.authorization.k8s.io
	//   kind: ClusterRole
	//   name: admin
	// subjects:
	// - kind: ServiceAccount
	//   name: ferry-env-staging
	//   namespace: ferry-system
	// ---
	// apiVersion: rbac.authorization.k8s.io/v1
	// kind: ClusterRole
	// metadata:
	//   labels:
	//     app.kubernetes.io/managed-by: ferry
	//     ferry.dev/scope-of: staging
	//   name: ferry-env-staging
	// rules:
	// - apiGroups:
	//   - ""
	//   resourceNames:
	//   - staging
	//   resources:
	//   - namespaces
	//   verbs:
	//   - get
	//   - create
	//   - update
	//   - patch
	//   - delete
	// ---
	// apiVersion: rbac.authorization.k8s.io/v1
	// kind: ClusterRoleBinding
	// metadata:
	//   labels:
	//     app.kubernetes.io/managed-by: ferry
	//     ferry.dev/scope-of: staging
	//   name: ferry-env-staging
	// roleRef:
	//   apiGroup: rbac.authorization.k8s.io
	//   kind: ClusterRole
	//   name: ferry-env-staging
	// subjects:
	// - kind: ServiceAccount
	//   name: ferry-env-staging
	//   namespace: ferry-system
}
