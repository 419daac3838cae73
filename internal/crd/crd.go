// Package crd answers what a set of objects says about the kinds its own
// CustomResourceDefinitions define, for kinds the API server does not serve
// yet because their CRD arrives with the same rendering.
package crd

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Namespaced finds gk among the CustomResourceDefinitions of set and
// reports whether the CRD declares it namespaced; found is false when no
// CRD of set defines gk.
func Namespaced(gk schema.GroupKind, set []*unstructured.Unstructured) (namespaced, found bool) {
	for _, o := range set {
		if o.GetKind() != "CustomResourceDefinition" || o.GroupVersionKind().Group != "apiextensions.k8s.io" {
			continue
		}
		group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
		if group == gk.Group && kind == gk.Kind {
			scope, _, _ := unstructured.NestedString(o.Object, "spec", "scope")
			return scope == "Namespaced", true
		}
	}
	return false, false
}
