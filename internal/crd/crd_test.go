package crd

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestNamespaced(t *testing.T) {
	def := func(kind, scope string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
			"metadata": map[string]any{"name": "x"},
			"spec":     map[string]any{"group": "example.com", "scope": scope, "names": map[string]any{"kind": kind}},
		}}
		return u
	}
	notACRD := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"spec": map[string]any{"group": "example.com", "names": map[string]any{"kind": "Gadget"}, "scope": "Namespaced"}}}
	set := []*unstructured.Unstructured{notACRD, def("Gadget", "Namespaced"), def("Cluster", "Cluster")}
	for _, tc := range []struct {
		gk                schema.GroupKind
		namespaced, found bool
	}{
		{schema.GroupKind{Group: "example.com", Kind: "Gadget"}, true, true},
		{schema.GroupKind{Group: "example.com", Kind: "Cluster"}, false, true},
		{schema.GroupKind{Group: "example.com", Kind: "Other"}, false, false},
		{schema.GroupKind{Group: "other.com", Kind: "Gadget"}, false, false},
	} {
		ns, found := Namespaced(tc.gk, set)
		if ns != tc.namespaced || found != tc.found {
			t.Errorf("%s: namespaced %v found %v, want %v %v", tc.gk, ns, found, tc.namespaced, tc.found)
		}
	}
}
