package scope

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

// ServiceAccountPrefix starts the name of an environment's ServiceAccount:
// ferry-env-<environment>.
const ServiceAccountPrefix = "ferry-env-"

// ResourceFunc maps a cluster-scoped kind to its API group and resource,
// such as ClusterRole → rbac.authorization.k8s.io, clusterroles; a
// RESTMapper answers it in the CLI, [BuiltinResource] in tests.
type ResourceFunc func(kind string) (schema.GroupResource, error)

// Grant is what [RBAC] writes the RBAC of: an environment's scope and the
// ServiceAccount its requests impersonate.
type Grant struct {
	// Scope is the environment's scope.
	Scope Scope
	// ServiceAccount is the ServiceAccount's name; default
	// ferry-env-<environment>.
	ServiceAccount string
	// Namespace is ferry's own namespace, where the ServiceAccount lives.
	Namespace string
	// Resource maps the scope's cluster-scoped kinds to resources; default
	// [BuiltinResource].
	Resource ResourceFunc
}

// builtin maps the cluster-scoped kinds of a plain cluster to resources.
var builtin = map[string]schema.GroupResource{
	"Namespace":                      {Resource: "namespaces"},
	"PersistentVolume":               {Resource: "persistentvolumes"},
	"ClusterRole":                    {Group: "rbac.authorization.k8s.io", Resource: "clusterroles"},
	"ClusterRoleBinding":             {Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings"},
	"CustomResourceDefinition":       {Group: "apiextensions.k8s.io", Resource: "customresourcedefinitions"},
	"StorageClass":                   {Group: "storage.k8s.io", Resource: "storageclasses"},
	"PriorityClass":                  {Group: "scheduling.k8s.io", Resource: "priorityclasses"},
	"IngressClass":                   {Group: "networking.k8s.io", Resource: "ingressclasses"},
	"RuntimeClass":                   {Group: "node.k8s.io", Resource: "runtimeclasses"},
	"ValidatingWebhookConfiguration": {Group: "admissionregistration.k8s.io", Resource: "validatingwebhookconfigurations"},
	"MutatingWebhookConfiguration":   {Group: "admissionregistration.k8s.io", Resource: "mutatingwebhookconfigurations"},
	"APIService":                     {Group: "apiregistration.k8s.io", Resource: "apiservices"},
}

// BuiltinResource maps the cluster-scoped kinds every cluster has.
func BuiltinResource(kind string) (schema.GroupResource, error) {
	if gr, ok := builtin[kind]; ok {
		return gr, nil
	}
	return schema.GroupResource{}, fmt.Errorf("kind %s: not a built-in cluster-scoped kind; ask a cluster that serves it", kind)
}

// IsGlob reports whether a scope namespace is a glob rather than a name.
func IsGlob(ns string) bool { return strings.ContainsAny(ns, "*?") }

// writeVerbs are what an environment may do to the objects of its scope.
var writeVerbs = []string{"get", "list", "watch", "create", "update", "patch", "delete"}

// RBAC returns, as a YAML stream ready to commit, the ServiceAccount of g
// and what binds it to its scope: a RoleBinding to the built-in admin
// ClusterRole in each namespace the scope names, and a ClusterRole with its
// ClusterRoleBinding for the scope's cluster-scoped kinds (Namespaces only
// by name). A clusterAdmin scope is bound to cluster-admin instead.
//
// RBAC names namespaces one by one, so a glob in the scope cannot be bound;
// the stream's header comment says so and which namespaces were bound.
func RBAC(g Grant) ([]byte, error) {
	env := g.Scope.Environment
	if env == "" || g.Namespace == "" {
		return nil, fmt.Errorf("scope RBAC: environment and ferry's namespace are required")
	}
	sa := g.ServiceAccount
	if sa == "" {
		sa = ServiceAccountPrefix + env
	}
	resource := g.Resource
	if resource == nil {
		resource = BuiltinResource
	}
	labels := map[string]string{"app.kubernetes.io/managed-by": "ferry", "ferry.dev/scope-of": env}
	meta := func(name, ns string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels}
	}
	subject := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: g.Namespace}}
	var header []string
	header = append(header,
		fmt.Sprintf("RBAC of environment %s, from its scope (ferry scope %s).", env, env),
		fmt.Sprintf("ferry impersonates ServiceAccount %s/%s for every request it makes for %s,", g.Namespace, sa, env),
		"so the API server enforces the scope too.")
	objs := []any{&corev1.ServiceAccount{TypeMeta: typeMeta("v1", "ServiceAccount"), ObjectMeta: meta(sa, g.Namespace)}}

	if g.Scope.ClusterAdmin {
		header = append(header, fmt.Sprintf("%s manages ferry's install: it is bound to cluster-admin, and may write anything.", env))
		objs = append(objs, &rbacv1.ClusterRoleBinding{
			TypeMeta:   typeMeta("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
			ObjectMeta: meta(sa+"-cluster-admin", ""),
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
			Subjects:   subject,
		})
		return encode(header, objs)
	}

	var names, globs []string
	for _, ns := range g.Scope.Namespaces {
		if IsGlob(ns) {
			globs = append(globs, ns)
		} else if !slices.Contains(names, ns) {
			names = append(names, ns)
		}
	}
	for _, glob := range globs {
		header = append(header,
			fmt.Sprintf("scope.namespaces %q is a glob, and RBAC cannot bind a glob: it names namespaces one", glob),
			"by one. Copy the RoleBinding below into each namespace it covers, or list those",
			"namespaces in scope.namespaces and run ferry scope again.")
	}
	for _, ns := range names {
		objs = append(objs, &rbacv1.RoleBinding{
			TypeMeta:   typeMeta("rbac.authorization.k8s.io/v1", "RoleBinding"),
			ObjectMeta: meta(sa, ns),
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "admin"},
			Subjects:   subject,
		})
	}
	var rules []rbacv1.PolicyRule
	for _, kind := range g.Scope.ClusterKinds {
		gr, err := resource(kind)
		if err != nil {
			return nil, fmt.Errorf("scope RBAC of %s: scope.clusterKinds: %w", env, err)
		}
		rule := rbacv1.PolicyRule{APIGroups: []string{gr.Group}, Resources: []string{gr.Resource}, Verbs: writeVerbs}
		if kind == "Namespace" && gr.Group == "" {
			if len(names) == 0 {
				continue
			}
			// Only the scope's own namespaces, by name; list and watch
			// cannot be limited to names, so they are left out.
			rule.ResourceNames = names
			rule.Verbs = []string{"get", "create", "update", "patch", "delete"}
		}
		rules = append(rules, rule)
	}
	if len(rules) > 0 {
		objs = append(objs,
			&rbacv1.ClusterRole{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "ClusterRole"), ObjectMeta: meta(sa, ""), Rules: rules},
			&rbacv1.ClusterRoleBinding{
				TypeMeta:   typeMeta("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
				ObjectMeta: meta(sa, ""),
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: sa},
				Subjects:   subject,
			})
	}
	return encode(header, objs)
}

func typeMeta(apiVersion, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
}

// encode writes header as comments, then objs as YAML documents without
// the empty creationTimestamp that the API types carry.
func encode(header []string, objs []any) ([]byte, error) {
	var b bytes.Buffer
	for _, h := range header {
		b.WriteString("# " + h + "\n")
	}
	for _, o := range objs {
		data, err := yaml.Marshal(o)
		if err != nil {
			return nil, err
		}
		b.WriteString("---\n")
		b.Write(bytes.ReplaceAll(data, []byte("  creationTimestamp: null\n"), nil))
	}
	return b.Bytes(), nil
}
