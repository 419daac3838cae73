package scope_test

import (
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"ferry.dev/ferry/scope"
)

// namespaced answers as a plain cluster's discovery does.
func namespaced(gvk schema.GroupVersionKind) (bool, error) {
	switch gvk.Kind {
	case "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition":
		return false, nil
	case "ConfigMap", "Deployment", "Role", "RoleBinding", "Secret":
		return true, nil
	}
	return false, &meta.NoKindMatchError{GroupKind: gvk.GroupKind()}
}

func obj(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		t.Fatal(err)
	}
	return u
}

var staging = scope.Scope{
	Environment:      "staging",
	Namespaces:       []string{"staging", "staging-*"},
	ClusterKinds:     []string{"Namespace"},
	DefaultNamespace: "staging",
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name  string
		scope scope.Scope
		doc   string
		want  string // the whole message; "" when in scope
	}{
		{"own namespace by default", staging, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}", ""},
		{"a glob", staging, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app, namespace: staging-eu}", ""},
		{"its own Namespace", staging, "apiVersion: v1\nkind: Namespace\nmetadata: {name: staging-eu}", ""},
		{
			"production's namespace", staging,
			"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app, namespace: production}",
			"ConfigMap/production/app (envs/staging/x.yaml) is in namespace production; staging may write only staging, staging-* (scope.namespaces)",
		},
		{
			"a cluster role binding", staging,
			"apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: mallory-admin}\nroleRef: {kind: ClusterRole, name: cluster-admin}",
			"ClusterRoleBinding/mallory-admin (envs/staging/x.yaml) is cluster-scoped; staging may create only Namespace (scope.clusterKinds)",
		},
		{
			"another environment's Namespace", staging,
			"apiVersion: v1\nkind: Namespace\nmetadata: {name: production}",
			"Namespace/production (envs/staging/x.yaml) is a namespace outside staging's scope; it may create only staging, staging-* (scope.namespaces)",
		},
		{
			"another environment's owner label", staging,
			"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app, labels: {ferry.dev/environment: production}}",
			"ConfigMap/app (envs/staging/x.yaml) carries ferry.dev/environment=production; staging may not write another environment's objects (remove the label)",
		},
		{
			"no cluster kinds at all", scope.Scope{Environment: "dev", Namespaces: []string{"dev"}, DefaultNamespace: "dev"},
			"apiVersion: v1\nkind: Namespace\nmetadata: {name: dev}",
			"Namespace/dev (envs/staging/x.yaml) is cluster-scoped; dev may create no cluster-scoped object (scope.clusterKinds)",
		},
		{
			"an unknown kind", staging,
			"apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}",
			"Widget/w (envs/staging/x.yaml) is of kind Widget.example.com, which the API server does not know, so staging's scope cannot be checked (install its CRD first, or in the same commit)",
		},
		{"cluster admin", scope.Scope{Environment: "infra", ClusterAdmin: true}, "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: x}", ""},
		{
			"cluster admin, another's label", scope.Scope{Environment: "infra", ClusterAdmin: true},
			"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: staging, labels: {ferry.dev/environment: staging}}",
			"ConfigMap/staging/x (envs/staging/x.yaml) carries ferry.dev/environment=staging; infra may not write another environment's objects (remove the label)",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := scope.Check(tc.scope, []*unstructured.Unstructured{obj(t, tc.doc)}, []string{"envs/staging/x.yaml"}, namespaced)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Check: %v; want in scope", err)
			case tc.want == "":
			case err == nil:
				t.Fatalf("Check: nil; want %q", tc.want)
			case err.Error() != tc.want:
				t.Fatalf("Check:\n%v\nwant\n%s", err, tc.want)
			case !errors.Is(err, scope.ErrOutOfScope):
				t.Fatalf("Check: %v is not ErrOutOfScope", err)
			}
		})
	}
}

func TestCheckListsEveryObjectAndUsesCRDsOfTheSet(t *testing.T) {
	crd := obj(t, "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.example.com}\nspec: {group: example.com, scope: Namespaced, names: {kind: Widget}}")
	s := staging
	s.ClusterKinds = []string{"Namespace", "CustomResourceDefinition"}
	objs := []*unstructured.Unstructured{
		crd,
		obj(t, "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}"),
		obj(t, "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w, namespace: kube-system}"),
		obj(t, "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: ferry-system}"),
	}
	err := scope.Check(s, objs, []string{"crd.yaml", "w.yaml", "w2.yaml"}, namespaced)
	var se *scope.Error
	if !errors.As(err, &se) {
		t.Fatalf("Check: %v; want a *scope.Error", err)
	}
	want := "2 objects are outside staging's scope:\n" +
		"Widget/kube-system/w (w2.yaml) is in namespace kube-system; staging may write only staging, staging-* (scope.namespaces)\n" +
		"Secret/ferry-system/s is in namespace ferry-system; staging may write only staging, staging-* (scope.namespaces)"
	if err.Error() != want {
		t.Errorf("Check:\n%v\nwant\n%s", err, want)
	}
}

func TestCheckPassesOtherDiscoveryErrors(t *testing.T) {
	down := errors.New("connection refused")
	err := scope.Check(staging, []*unstructured.Unstructured{obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}")}, nil,
		func(schema.GroupVersionKind) (bool, error) { return false, down })
	if !errors.Is(err, down) || errors.Is(err, scope.ErrOutOfScope) {
		t.Fatalf("Check: %v; want the discovery error, not a verdict", err)
	}
}

func TestCheckBoundsTheMessage(t *testing.T) {
	var objs []*unstructured.Unstructured
	for range 50 {
		objs = append(objs, obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: kube-system}"))
	}
	err := scope.Check(staging, objs, nil, namespaced)
	if lines := strings.Count(err.Error(), "\n"); lines != 21 || !strings.HasSuffix(err.Error(), "… and 30 more") {
		t.Errorf("message of %d lines:\n%v", lines, err)
	}
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		glob, name string
		want       bool
	}{
		{"staging", "staging", true},
		{"staging", "staging-a", false},
		{"staging-*", "staging-a", true},
		{"staging-*", "staging-", true},
		{"staging-*", "staging", false},
		{"*", "", true},
		{"s?g", "sag", true},
		{"s?g", "sg", false},
		{"*-eu-*", "app-eu-1", true},
		{"*-eu-*", "app-us-1", false},
		{"a*a*a*a*b", strings.Repeat("a", 60), false},
	} {
		if got := scope.Match(tc.glob, tc.name); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.glob, tc.name, got, tc.want)
		}
	}
}
